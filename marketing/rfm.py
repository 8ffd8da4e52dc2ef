"""RFM analysis: recency, frequency and monetary scores (1-5) per contact from DELIVERED orders.

Scores are percentile ranks among the contacts that have delivered orders:
`score = min(5, 1 + floor(5 * percent_rank()))`, ordered so that 5 is best (the most recent
last order, the most orders, the most revenue). Ties share a score, so a thousand one-order
customers all get frequency 1 instead of being split at random as NTILE would. Monetary sums
`totalCost` as sent, whatever the currency (shops send one currency in practice).

The whole table is recomputed in one INSERT ... SELECT (nightly by beat, and on demand), in a
transaction: readers see the previous scores until it commits.
"""

# The SQL below interpolates only table names from our models; values are parameters.
# ruff: noqa: S608

from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from config.core.errors import FieldError
from contacts.filters.compiler import ORDER_OPS, FilterError, list_value
from contacts.models import Contact, Segment, SegmentKind
from contacts.segment_members import segments_refresh_soon
from contacts.segments import segment_create
from marketing.models import Order, OrderStatus, RFMScore

SCORES = range(1, 6)
# Any constant unique to this job: concurrent recomputations queue instead of colliding.
RECOMPUTE_LOCK = 0x52464D  # "RFM"
# The segment filter's RFM fields (the language: contacts.filters.compiler): field → column.
RFM_FILTER_FIELDS = {
    "rfm.recency": "recency",
    "rfm.frequency": "frequency",
    "rfm.monetary": "monetary",
}


@dataclass(frozen=True)
class RFMGroup:
    """A named region of the recency x frequency grid, with its colours (text on background
    at a contrast ratio of at least 4.5:1)."""

    key: str
    label: Any
    cells: frozenset[tuple[int, int]]
    background: str
    text: str = "#1f1f1f"


def _cells(recencies: str, frequencies: str) -> frozenset[tuple[int, int]]:
    return frozenset((int(r), int(f)) for r in recencies for f in frequencies)


# The usual 11-group map over recency (R) and frequency (F) scores, best first.
RFM_GROUPS = (
    RFMGroup("champions", _("Champions"), _cells("5", "45"), "#b7e4c7"),
    RFMGroup("loyal", _("Loyal customers"), _cells("34", "45"), "#d8f3dc"),
    RFMGroup("potential", _("Potential loyalists"), _cells("45", "23"), "#caf0f8"),
    RFMGroup("new", _("New customers"), _cells("5", "1"), "#e0f2fe"),
    RFMGroup("promising", _("Promising"), _cells("4", "1"), "#ede9fe"),
    RFMGroup("attention", _("Need attention"), _cells("3", "3"), "#fef3c7"),
    RFMGroup("about_to_sleep", _("About to sleep"), _cells("3", "12"), "#fde68a"),
    RFMGroup("at_risk", _("At risk"), _cells("12", "34"), "#fed7aa"),
    RFMGroup("cant_lose", _("Can't lose them"), _cells("12", "5"), "#fecaca"),
    RFMGroup("hibernating", _("Hibernating"), _cells("12", "12") - {(1, 1)}, "#e5e7eb"),
    RFMGroup("lost", _("Lost"), frozenset({(1, 1)}), "#d1d5db"),
)


def rfm_group_of(recency: int, frequency: int) -> RFMGroup:
    for group in RFM_GROUPS:
        if (recency, frequency) in group.cells:
            return group
    raise ValueError(f"no RFM group holds R{recency}F{frequency}")


class RFMError(FieldError):
    """Bad RFM cells or segment input; `field` names it."""


def _score(order_by: str) -> str:
    return f"LEAST(5, 1 + floor(5 * percent_rank() OVER (ORDER BY {order_by})))::smallint"


@transaction.atomic
def rfm_recompute() -> int:
    """Recompute every contact's scores; returns how many contacts have scores."""
    rfm = RFMScore._meta.db_table
    orders = Order._meta.db_table
    contacts = Contact._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RECOMPUTE_LOCK])
        cursor.execute(f"DELETE FROM {rfm}")
        cursor.execute(
            f"""
            INSERT INTO {rfm} (contact_id, recency, frequency, monetary, last_order_at,
                               orders_count, revenue, computed_at)
            SELECT contact_id, {_score("last_order_at")}, {_score("orders_count")},
                   {_score("revenue")}, last_order_at, orders_count, revenue, now()
              FROM (SELECT o.contact_id, max(o.date) AS last_order_at,
                           count(*) AS orders_count, sum(o.total_cost) AS revenue
                      FROM {orders} o
                      JOIN {contacts} c ON c.id = o.contact_id AND c.deleted_at IS NULL
                     WHERE o.status = %s
                     GROUP BY o.contact_id) AS per_contact
            """,
            [OrderStatus.DELIVERED],
        )
        scored = cursor.rowcount
    # Segments on RFM scores: who entered or left them is found by a full refresh.
    segments_refresh_soon()
    return scored


def rfm_grid() -> dict:
    """The 5 x 5 recency x frequency grid over live contacts: contacts and revenue per cell.

    `rows` go from recency 5 (recent) down to 1; each row's cells from frequency 1 to 5.
    """
    rfm = RFMScore._meta.db_table
    contacts = Contact._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT r.recency, r.frequency, count(*), coalesce(sum(r.revenue), 0),
                       max(r.computed_at)
                  FROM {rfm} r JOIN {contacts} c ON c.id = r.contact_id AND c.deleted_at IS NULL
                 GROUP BY r.recency, r.frequency"""
        )
        found = {(r, f): (n, revenue, at) for r, f, n, revenue, at in cursor.fetchall()}
    computed = [at for _, _, at in found.values()]
    total = sum(n for n, _, _ in found.values())
    rows = []
    for recency in reversed(SCORES):
        cells = []
        for frequency in SCORES:
            contacts_count, revenue, _at = found.get((recency, frequency), (0, 0, None))
            cells.append(
                {
                    "recency": recency,
                    "frequency": frequency,
                    "contacts": contacts_count,
                    "revenue": revenue,
                    "group": rfm_group_of(recency, frequency),
                }
            )
        rows.append({"recency": recency, "cells": cells})
    groups = []
    for group in RFM_GROUPS:
        count = sum(found.get(cell, (0, 0, None))[0] for cell in group.cells)
        groups.append(
            {
                "group": group,
                "contacts": count,
                "share": round(100 * count / total, 1) if total else 0,
                "cells": [f"{r}-{f}" for r, f in sorted(group.cells, reverse=True)],
                "segment": Segment.objects.filter(
                    name=str(group.label), kind=SegmentKind.DYNAMIC
                ).first(),
            }
        )
    return {
        "rows": rows,
        "groups": groups,
        "contacts": total,
        "revenue": sum((revenue for _, revenue, _ in found.values()), 0),
        "computed_at": max(computed) if computed else None,
    }


def cells_parse(raw) -> list[tuple[int, int]]:
    """Cells as `"R-F"` strings (the grid's checkboxes) or `[r, f]` / `{recency, frequency}`."""
    if not isinstance(raw, list) or not raw:
        raise RFMError("cells", "choose at least one cell of the grid")
    cells = []
    for index, cell in enumerate(raw):
        if isinstance(cell, str) and "-" in cell:
            cell = cell.split("-", 1)
        if isinstance(cell, dict):
            cell = [cell.get("recency"), cell.get("frequency")]
        try:
            recency, frequency = (int(part) for part in cell)
        except (TypeError, ValueError):
            raise RFMError(f"cells[{index}]", "expected recency and frequency (1-5)") from None
        if recency not in SCORES or frequency not in SCORES:
            raise RFMError(f"cells[{index}]", "recency and frequency are scores from 1 to 5")
        if (recency, frequency) not in cells:
            cells.append((recency, frequency))
    return sorted(cells, reverse=True)


def cells_filter(cells: list[tuple[int, int]]) -> dict:
    """The dynamic-segment filter matching contacts in these grid cells."""
    parts = [{"rfm.recency": r, "rfm.frequency": f} for r, f in cells]
    return parts[0] if len(parts) == 1 else {"$or": parts}


def rfm_segment_create(*, name: str, cells: list[tuple[int, int]]) -> Segment:
    """Save grid cells as a dynamic segment: it follows the scores as they are recomputed."""
    cells_text = ", ".join(f"R{r}F{f}" for r, f in cells)
    return segment_create(
        name=name,
        kind=SegmentKind.DYNAMIC,
        filter=cells_filter(cells),
        description=f"RFM cells {cells_text}",
    )


def rfm_filter(column: str):
    """The segment filter predicate for one RFM score column (installed by marketing.apps)."""

    def has(**lookup) -> Q:
        # RFMScore's primary key is the contact id: one index probe per contact.
        return Q(Exists(RFMScore.objects.filter(contact_id=OuterRef("pk"), **lookup)))

    def predicate(op: str, value: Any, path: str) -> Q:
        if op == "$exists":
            return has() if value else ~has()
        if op in ("$in", "$nin"):
            scores = [
                _filter_score(v, f"{path}.{i}") for i, v in enumerate(list_value(value, path))
            ]
            q = has(**{f"{column}__in": scores})
            return q if op == "$in" else ~q
        if op in ("$contains", "$all"):
            raise FilterError(path, f"operator {op!r} does not apply to an RFM score")
        score = _filter_score(value, path)
        if op == "$eq":
            return has(**{column: score})
        if op == "$ne":
            return ~has(**{column: score})
        return has(**{f"{column}__{ORDER_OPS[op].lookup_name}": score})

    return predicate


def _filter_score(value: Any, path: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise FilterError(path, "expected an RFM score, a whole number from 1 to 5")
    return value
