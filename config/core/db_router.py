"""Reports and exports read from a PostgreSQL read replica when there is one.

DATABASE_REPLICA_URL adds the database alias "replica" (settings.DATABASES). Reads go there
only where the code asks, never by default: a replica lags the primary, and a page that
shows what its own request just wrote must read the primary. Reports and CSV exports read
many rows and can stand a second of lag, so their views run under `replica_reads`:

    @replica_reading          # a view or task: its ORM reads, and a streamed body's
    def campaign_report(request, pk): ...

    with replica_reads():     # a block
        rows = list(queryset)

Writes always go to "default", also inside those blocks. Without DATABASE_REPLICA_URL the
same code reads "default".
"""

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse

REPLICA = "replica"

_reading_replica: ContextVar[bool] = ContextVar("herald_reading_replica", default=False)


@contextmanager
def replica_reads() -> Iterator[None]:
    """ORM reads in this block go to the replica (when one is configured)."""
    token = _reading_replica.set(True)
    try:
        yield
    finally:
        _reading_replica.reset(token)


def _replica_iterated(iterable: Any) -> Iterator:
    """A streamed body is produced after its view returned: each item is read under
    replica_reads too."""
    iterator = iter(iterable)
    while True:
        with replica_reads():
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


def replica_reading(func: Callable) -> Callable:
    """A view or task whose reads go to the replica, a streamed response's included."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with replica_reads():
            result = func(*args, **kwargs)
        if isinstance(result, StreamingHttpResponse):
            result.streaming_content = _replica_iterated(result.streaming_content)
        return result

    return wrapper


class ReplicaRouter:
    """settings.DATABASE_ROUTERS: the replica inside replica_reads, "default" otherwise."""

    def db_for_read(self, model, **hints) -> str | None:
        if _reading_replica.get() and REPLICA in settings.DATABASES:
            return REPLICA
        return None

    def db_for_write(self, model, **hints) -> str:
        return "default"

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # one database, two ways in

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool:
        return db != REPLICA  # the replica follows the primary's schema by replication
