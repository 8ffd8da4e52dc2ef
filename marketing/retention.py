"""What marketing does when retention drops a month of the delivery ledger
(config.core.partitions, campaigns.retention): its links into those rows have no database
foreign key (the ledger is partitioned), so they are cleared here, in the drop's transaction.

- an order keeps its attribution (`attribution`, `attributed_campaign`) and the run's
  conversions stay in the frozen rollup; only the link to the delivery goes;
- a workflow run's message links to deliveries of that month go (the run and its steps stay).
"""

from __future__ import annotations

from datetime import date

from campaigns.models import Delivery
from marketing.models import Order
from marketing.workflows.models import WorkflowMessage


def ledger_links_clear(sender, *, table: str, start: date, end: date, **kwargs) -> None:
    if table != Delivery._meta.db_table:
        return
    month = Delivery.objects.filter(period__gte=start, period__lt=end).values("pk")
    Order.objects.filter(attributed_delivery_id__in=month).update(attributed_delivery=None)
    WorkflowMessage.objects.filter(delivery_id__in=month).delete()
