"""RFM scores from DELIVERED orders, the grid, and grid cells saved as dynamic segments."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from contacts.filters.compiler import FilterError, compile_filter, filter_reach, segment_reach
from contacts.models import Segment, SegmentKind
from marketing import rfm
from marketing.models import Order, OrderStatus, RFMScore
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def _order(contact, n: int, *, days_ago: int, cost: str, status=OrderStatus.DELIVERED):
    return Order.objects.create(
        external_order_id=f"{contact.pk}-{n}-{status}",
        external_customer_id=str(contact.pk),
        contact=contact,
        status=status,
        total_cost=Decimal(cost),
        currency="USD",
        date=NOW - dt.timedelta(days=days_ago),
    )


@pytest.fixture
def five_customers():
    """a..e: a is the oldest, rarest and cheapest buyer, e the most recent, frequent, rich."""
    customers = {}
    for rank, name in enumerate("abcde"):
        contact = ContactFactory(email=f"{name}@example.com")
        for n in range(rank + 1):
            _order(contact, n, days_ago=100 - 20 * rank + n, cost=str(10 * (rank + 1)))
        customers[name] = contact
    return customers


def scores(contact) -> tuple[int, int, int]:
    row = RFMScore.objects.get(contact=contact)
    return row.recency, row.frequency, row.monetary


def test_scores_rank_customers_from_1_to_5(five_customers):
    assert rfm.rfm_recompute() == 5
    assert [scores(five_customers[n]) for n in "abcde"] == [
        (1, 1, 1),
        (2, 2, 2),
        (3, 3, 3),
        (4, 4, 4),
        (5, 5, 5),
    ]
    e = RFMScore.objects.get(contact=five_customers["e"])
    assert e.orders_count == 5 and e.revenue == Decimal("250.00")
    assert e.last_order_at == NOW - dt.timedelta(days=20)


def test_only_delivered_orders_count(five_customers):
    a = five_customers["a"]
    # Many recent, expensive orders in other statuses change nothing.
    for status in (
        OrderStatus.INITIALIZED,
        OrderStatus.IN_PROGRESS,
        OrderStatus.CANCELLED,
        OrderStatus.ABANDONED_SHOPPING_CART,
    ):
        _order(a, 99, days_ago=0, cost="100000", status=status)
    rfm.rfm_recompute()
    assert scores(a) == (1, 1, 1)
    undelivered_only = ContactFactory()
    _order(undelivered_only, 1, days_ago=1, cost="5", status=OrderStatus.IN_PROGRESS)
    rfm.rfm_recompute()
    assert not RFMScore.objects.filter(contact=undelivered_only).exists()


def test_ties_share_the_lowest_score():
    contacts = [ContactFactory() for _ in range(4)]
    for contact in contacts:
        _order(contact, 0, days_ago=10, cost="10")
    rfm.rfm_recompute()
    assert {scores(c) for c in contacts} == {(1, 1, 1)}


def test_recompute_replaces_scores_and_drops_deleted_contacts(five_customers):
    rfm.rfm_recompute()
    five_customers["e"].deleted_at = timezone.now()
    five_customers["e"].save()
    _order(five_customers["a"], 50, days_ago=0, cost="1")
    assert rfm.rfm_recompute() == 4
    assert scores(five_customers["a"])[0] == 5
    assert not RFMScore.objects.filter(contact=five_customers["e"]).exists()


def test_grid_counts_contacts_and_revenue_per_cell(five_customers):
    rfm.rfm_recompute()
    grid = rfm.rfm_grid()
    assert [row["recency"] for row in grid["rows"]] == [5, 4, 3, 2, 1]
    cells = {(c["recency"], c["frequency"]): c for row in grid["rows"] for c in row["cells"]}
    assert len(cells) == 25
    assert cells[(5, 5)]["contacts"] == 1 and cells[(5, 5)]["revenue"] == Decimal("250.00")
    assert cells[(5, 1)]["contacts"] == 0
    assert grid["contacts"] == 5 and grid["revenue"] == Decimal("550.00")


def test_filter_language_rfm_fields(five_customers):
    rfm.rfm_recompute()
    ContactFactory()  # no orders: no scores
    assert filter_reach({"rfm.recency": 5}) == 1
    assert filter_reach({"rfm.recency": {"$gte": 4}, "rfm.frequency": {"$gte": 4}}) == 2
    assert filter_reach({"rfm.monetary": {"$in": [1, "2"]}}) == 2
    assert filter_reach({"rfm.monetary": {"$nin": [1, 2]}}) == 4  # 3 scored + 1 unscored
    assert filter_reach({"rfm.recency": {"$ne": 5}}) == 5
    assert filter_reach({"rfm.recency": {"$exists": False}}) == 1
    assert filter_reach({"rfm.recency": {"$exists": True}}) == 5


@pytest.mark.parametrize(
    ("filter", "path"),
    [
        ({"rfm.recency": 6}, "rfm.recency.$eq"),
        ({"rfm.recency": "x"}, "rfm.recency.$eq"),
        ({"rfm.frequency": {"$contains": 1}}, "rfm.frequency.$contains"),
        ({"rfm.monetary": {"$in": [0]}}, "rfm.monetary.$in.0"),
        ({"rfm.nothing": 1}, "rfm.nothing"),
    ],
)
def test_bad_rfm_filters_name_the_path(filter, path):
    with pytest.raises(FilterError) as caught:
        compile_filter(filter)
    assert caught.value.path == path


def test_grid_cells_saved_as_a_segment_reach_the_cell_size(five_customers):
    extra = ContactFactory()
    _order(extra, 1, days_ago=16, cost="1000")
    rfm.rfm_recompute()
    grid = rfm.rfm_grid()
    cells = {
        (c["recency"], c["frequency"]): c["contacts"] for r in grid["rows"] for c in r["cells"]
    }
    one = rfm.rfm_segment_create(name="Champions", cells=[(5, 5)])
    assert one.kind == SegmentKind.DYNAMIC
    assert segment_reach(one) == cells[(5, 5)]
    chosen = [(5, 5), (5, 1), (1, 1), (2, 2)]
    group = rfm.rfm_segment_create(
        name="Mixed", cells=rfm.cells_parse(["5-5", "5-1", [1, 1], {"recency": 2, "frequency": 2}])
    )
    assert segment_reach(group) == sum(cells[c] for c in chosen)
    assert Segment.objects.get(pk=group.pk).description.startswith("RFM cells")


@pytest.mark.parametrize("raw", [[], None, ["6-1"], ["a-b"], [[1]], "5-5"])
def test_bad_cells_are_refused(raw):
    with pytest.raises(rfm.RFMError):
        rfm.cells_parse(raw)
