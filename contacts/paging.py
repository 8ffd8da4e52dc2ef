"""Keyset paging and capped counts for lists that may hold a million rows, and the eSputnik
v1 API's own paging.

OFFSET paging makes page 10 000 read 500 000 rows and an exact COUNT(*) over a filtered
million-row table costs a sequential scan on every page view; both are avoided here. The
eSputnik v1 API pages by position (`startindex`, `maxrows`), so its lists keep OFFSET.
"""

from dataclasses import dataclass, field

from django.db.models import QuerySet

from integrations.api_params import POSITION_MAX, IntParam, read_all

PAGE_SIZE = 50
# Counting stops here: "more than 10,000" is as useful to a marketer as the exact figure and
# bounds the count query to an index range of that many rows.
COUNT_CAP = 10_000

# The eSputnik v1 API: rows from a 1-based position, at most 500 per call.
SEED_MAX_ROWS = 500
STARTINDEX = IntParam(
    "startindex", 1, 1, POSITION_MAX, "1-based position of the first row to return."
)
MAXROWS = IntParam(
    "maxrows", SEED_MAX_ROWS, 1, SEED_MAX_ROWS, f"Rows to return (at most {SEED_MAX_ROWS})."
)
SEED_PAGING_PARAMETERS = [STARTINDEX.openapi(), MAXROWS.openapi()]


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


def seed_paging(params) -> tuple[int, int]:
    """(offset, limit) from `startindex` and `maxrows`; a 400 naming either when it is out of
    its range."""
    start, rows = read_all(params, STARTINDEX, MAXROWS)
    return start - 1, rows
