"""Keyset paging and capped counts for lists that may hold a million rows.

OFFSET paging makes page 10 000 read 500 000 rows and an exact COUNT(*) over a filtered
million-row table costs a sequential scan on every page view; both are avoided here.
"""

from dataclasses import dataclass, field

from django.db.models import QuerySet

PAGE_SIZE = 50
# Counting stops here: "more than 10,000" is as useful to a marketer as the exact figure and
# bounds the count query to an index range of that many rows.
COUNT_CAP = 10_000


@dataclass
class KeysetPage:
    rows: list = field(default_factory=list)
    has_next: bool = False
    has_previous: bool = False

    @property
    def next_cursor(self):
        return self.rows[-1].pk if self.rows and self.has_next else None

    @property
    def previous_cursor(self):
        return self.rows[0].pk if self.rows and self.has_previous else None


def _cursor(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def keyset_page(queryset: QuerySet, params, *, size: int | None = None) -> KeysetPage:
    """Newest first by primary key; `?after=<pk>` pages forward, `?before=<pk>` back."""
    size = size or PAGE_SIZE
    after, before = _cursor(params.get("after")), _cursor(params.get("before"))
    if before:
        rows = list(queryset.filter(pk__gt=before).order_by("pk")[: size + 1])
        has_previous = len(rows) > size
        return KeysetPage(rows=rows[:size][::-1], has_next=True, has_previous=has_previous)
    if after:
        queryset = queryset.filter(pk__lt=after)
    rows = list(queryset.order_by("-pk")[: size + 1])
    return KeysetPage(rows=rows[:size], has_next=len(rows) > size, has_previous=bool(after))


def capped_count(queryset: QuerySet, *, cap: int | None = None) -> tuple[int, bool]:
    """(count, exact): counts at most cap + 1 rows; exact is False past the cap."""
    cap = cap or COUNT_CAP
    counted = queryset.order_by().values("pk")[: cap + 1].count()
    return min(counted, cap), counted <= cap


def page_count(queryset: QuerySet, page: KeysetPage, *, cap: int | None = None) -> tuple[int, bool]:
    """The count for a list header. A first page that holds every match is its own count,
    which spares a second scan for searches that match few rows."""
    if not page.has_next and not page.has_previous:
        return len(page.rows), True
    return capped_count(queryset, cap=cap)
