"""The eSputnik v1 API's paging: rows from a 1-based `startindex`, at most 500 (`maxrows`) per
call. Its lists page by position, so they keep OFFSET (contacts.paging pages the marketer's
lists by keyset)."""

from drf_spectacular.utils import OpenApiParameter

from config.core.api_params import POSITION_MAX, IntParam, read_all

MAX_ROWS = 500
STARTINDEX = IntParam(
    "startindex", 1, 1, POSITION_MAX, "1-based position of the first row to return."
)
MAXROWS = IntParam("maxrows", MAX_ROWS, 1, MAX_ROWS, f"Rows to return (at most {MAX_ROWS}).")
# The family's convention, declared on each of its lists: `startindex` and `maxrows` in, the
# total of matching rows in the `TotalCount` header out (the body is the bare list).
TOTAL_COUNT = OpenApiParameter(
    "TotalCount",
    int,
    OpenApiParameter.HEADER,
    response=[200],
    description="How many rows match in all (page through them with startindex).",
)
PAGING_PARAMETERS = [STARTINDEX.openapi(), MAXROWS.openapi(), TOTAL_COUNT]


def position_paging(params) -> tuple[int, int]:
    """(offset, limit) from `startindex` and `maxrows`; a 400 naming either when it is out of
    its range."""
    start, rows = read_all(params, STARTINDEX, MAXROWS)
    return start - 1, rows
