"""A cheaper database flush after each transactional test, with the same outcome.

Django empties the database after a test that commits (`transaction=True`, `live_server`, a
Celery worker) with one `TRUNCATE` of all tables, then replays `post_migrate`, which
re-creates the content types, the permissions and the role groups. On the CI machine (two
cores, PostgreSQL's disk shared with the suite) that took about ten seconds per test:
TRUNCATE gives every table and index a new file and syncs them at commit, and the replay
inserts some six hundred rows and runs the role sync once per app.

Here the flush `DELETE`s the rows instead (the foreign keys Django creates are deferred to
the commit, so the order does not matter; an empty table costs nothing) and leaves alone the
four tables that only `post_migrate` writes; the replay is then skipped, since it would find
everything it creates already there. When a `post_migrate` receiver other than the three
known ones appears, the replay runs as before, so a new one is never silently skipped.
"""

import weakref

from django.core.management.commands import flush as flush_command
from django.db.backends.postgresql.operations import DatabaseOperations
from django.db.models.signals import post_migrate

# What post_migrate writes (content types, permissions, the role groups and their
# permissions): deterministic from the models, written by nothing else in Herald or its tests.
KEPT_TABLES = frozenset(
    {"django_content_type", "auth_permission", "auth_group", "auth_group_permissions"}
)
# The receivers whose work the kept tables already hold (django.contrib.contenttypes,
# django.contrib.auth, config.core.roles), or that a DELETE leaves in place (the month
# partitions of config.core.partitions: rows go, partitions stay).
KNOWN_RECEIVERS = frozenset(
    {"create_contenttypes", "create_permissions", "sync_role_groups", "partitions_ensure_all"}
)

_truncate = DatabaseOperations.sql_flush
_emit_post_migrate = flush_command.emit_post_migrate_signal


def _sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    if not _replay_is_redundant():
        return _truncate(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
    emptied = [table for table in tables if table not in KEPT_TABLES]
    if reset_sequences:
        return _truncate(self, style, emptied, reset_sequences=True, allow_cascade=allow_cascade)
    # Table names come from the models (Django's introspection), quoted by the backend.
    return [f"DELETE FROM {self.quote_name(table)};" for table in emptied]  # noqa: S608


def _replay_is_redundant() -> bool:
    names = set()
    for entry in post_migrate.receivers:
        ref = entry[1]  # a weak reference, or the receiver itself when connected weak=False
        receiver = ref() if isinstance(ref, weakref.ReferenceType) else ref
        names.add(getattr(receiver, "__name__", repr(receiver)))
    return names <= KNOWN_RECEIVERS


def _emit_post_migrate_signal(verbosity, interactive, db, **kwargs):
    if not _replay_is_redundant():
        _emit_post_migrate(verbosity, interactive, db, **kwargs)


def install() -> None:
    """Replace Django's flush SQL and its post_migrate replay for this test process."""
    DatabaseOperations.sql_flush = _sql_flush
    flush_command.emit_post_migrate_signal = _emit_post_migrate_signal
