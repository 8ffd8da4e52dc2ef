"""One beat at a time: a second `celery beat` started by mistake (or as a standby) does not
double the schedule.

LeaderScheduler (settings.CELERY_BEAT_SCHEDULER) is django-celery-beat's DatabaseScheduler
that ticks only while it holds a PostgreSQL advisory lock, taken with pg_try_advisory_lock on
a connection of its own. The lock belongs to that session: when the leader dies, or its
connection does, PostgreSQL releases it and a waiting beat takes it within FOLLOWER_WAIT
seconds. Advisory locks are per database, so deployments sharing a PostgreSQL server do not
elect one leader between them.

Taking over, a beat reads the schedule again from the database, where the leader saved each
entry's last run right after sending it (sync_every_tasks = 1): an entry the old leader sent
is not sent again by the new one.
"""

import contextlib
import logging

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

# pg_advisory_lock keys are one bigint; this one is "herald-beat" read as ASCII.
LEADER_LOCK_KEY = int.from_bytes(b"heraldbt", "big") >> 1
# How long a waiting beat sleeps between attempts at the lock: how late a takeover is.
FOLLOWER_WAIT = 1.0


class LeaderScheduler(DatabaseScheduler):
    """DatabaseScheduler that ticks only as the leader (see the module's docstring)."""

    def __init__(self, *args, **kwargs) -> None:
        self._lock_db: BaseDatabaseWrapper | None = None
        self.is_leader = False
        # Every entry's last run is in the database as soon as it is sent, for a successor.
        kwargs["sync_every_tasks"] = 1
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        if not self._leading():
            return FOLLOWER_WAIT
        return super().tick(*args, **kwargs)

    def _leading(self) -> bool:
        """Whether this beat holds the lock now; takes it when it is free."""
        try:
            if self.is_leader:
                self._query("SELECT 1")  # the lock lives as long as this session does
                return True
            if self._query("SELECT pg_try_advisory_lock(%s)", [LEADER_LOCK_KEY]):
                self._take_over()
                return True
        except DatabaseError:
            if self.is_leader:
                logger.warning("beat lost its database session: no longer the leader")
            self._lock_connection_drop()
        return False

    def _take_over(self) -> None:
        logger.info("beat is the leader now: reading the schedule again")
        self.is_leader = True
        # Forget what was read before: the previous leader has run entries since.
        self._initial_read = True
        self._heap = None

    def _query(self, sql: str, params: list | None = None):
        if self._lock_db is None:
            # A connection Django's request and task cleanup never closes (it is not in
            # django.db.connections), kept for the life of this beat.
            self._lock_db = connections.create_connection("default")
        with self._lock_db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def _lock_connection_drop(self) -> None:
        self.is_leader = False
        if self._lock_db is not None:
            with contextlib.suppress(DatabaseError):
                self._lock_db.close()
            self._lock_db = None

    def close(self) -> None:
        super().close()
        self._lock_connection_drop()  # the lock goes with the session: a follower takes over
