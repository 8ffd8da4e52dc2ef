"""Keyset paging and capped counts for lists that may hold a million rows.

OFFSET paging makes page 10 000 read 500 000 rows and an exact COUNT(*) over a filtered
million-row table costs a sequential scan on every page view; both are avoided here.
"""

import json
from dataclasses import dataclass, field

from django.db import connections
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


# --- numbered pages (the contact list) -------------------------------------------------------

PAGE_SIZES = (25, 50, 100)
# Counted exactly up to here (an index-only scan of this many rows, a few tens of
# milliseconds); past it the planner's estimate is shown as "about".
EXACT_COUNT_MAX = 100_000


@dataclass
class NumberedPage:
    rows: list
    number: int
    size: int
    count: int
    exact: bool

    @property
    def last(self) -> int:
        return max(1, -(-self.count // self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.last

    @property
    def window(self) -> list[int]:
        """Page numbers around this one (two each side), within the known pages."""
        return list(range(max(1, self.number - 2), min(self.last, self.number + 2) + 1))

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.size + 1 if self.rows else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * self.size + len(self.rows)


def estimated_count(queryset: QuerySet) -> int:
    """The planner's row estimate for a queryset (EXPLAIN, no execution)."""
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def list_count(queryset: QuerySet, *, exact_max: int | None = None) -> tuple[int, bool]:
    """(count, exact): exact up to exact_max, else the planner's estimate (at least the cap)."""
    exact_max = exact_max or EXACT_COUNT_MAX
    counted, exact = capped_count(queryset, cap=exact_max)
    if exact:
        return counted, True
    return max(estimated_count(queryset), exact_max + 1), False


def page_size(params) -> int:
    try:
        size = int(params.get("size", PAGE_SIZE))
    except (TypeError, ValueError):
        return PAGE_SIZE
    return size if size in PAGE_SIZES else PAGE_SIZE


def numbered_page(queryset: QuerySet, params, *, size: int) -> NumberedPage:
    """OFFSET paging with page numbers, for a list sorted by a column the marketer picks.

    OFFSET reads the rows it skips: page 2 000 of 50 reads 100 000 index entries (tens of
    milliseconds); the index of the sort column keeps each page a range scan."""
    count, exact = list_count(queryset)
    try:
        number = max(1, int(params.get("page", 1)))
    except (TypeError, ValueError):
        number = 1
    last = max(1, -(-count // size))
    if exact:
        number = min(number, last)
    offset = (number - 1) * size
    rows = list(queryset[offset : offset + size])
    return NumberedPage(rows=rows, number=number, size=size, count=count, exact=exact)
