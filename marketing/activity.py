"""A contact's activity timeline: one chronological list, newest first, of the messages it
received (with their status), its opens, clicks (with the link), unsubscribes, bounces and
complaints, its orders, its events and its workflow runs.

Opens and clicks are people's only (machine hits, campaigns.engagement, are left out). Events
Herald derives from the ledger (marketing.engagement: emailOpened, linkClicked, ...) are not
listed again: the ledger rows they come from already are.

Read with one UNION ALL: each kind is a branch that takes at most a page of the contact's
rows through its own contact index, newest first, and the union keeps the newest page. Pages
follow a keyset cursor (time, kind, id), so a "load older" link never skips or repeats an
item, however many share a timestamp.
"""

# Table names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime

from campaigns.models import Campaign, CampaignRun, Delivery, DeliveryEvent, SendRequest
from marketing.models import Event, EventType, Order
from marketing.workflows.models import Workflow, WorkflowRun

KINDS = ("message", "open", "click", "unsubscribe", "bounce", "order", "event", "workflow")
PAGE_DEFAULT = 50
PAGE_MAX = 200

_D = Delivery._meta.db_table
_E = DeliveryEvent._meta.db_table
_RUN = CampaignRun._meta.db_table
_CAMPAIGN = Campaign._meta.db_table
_REQUEST = SendRequest._meta.db_table

# Each branch: at, kind, id, ref (the delivery / workflow a row belongs to), title, status,
# url, detail (jsonb). `{cursor}` becomes the keyset condition or TRUE.
_MESSAGE_TITLE = "COALESCE(c.name, 'Message (' || COALESCE(q.kind, 'single') || ')')"
_BRANCHES: dict[str, str] = {
    "message": f"""
        SELECT COALESCE(d.sent_at, d.created_at) AS at, 'message'::text AS kind, d.id,
               d.id AS ref, {_MESSAGE_TITLE} AS title, d.status::text AS status,
               ''::text AS url,
               jsonb_build_object('channel', d.channel, 'address', d.locator,
                                  'campaignId', c.id, 'runId', d.run_id,
                                  'requestId', d.request_id::text) AS detail
          FROM {_D} d
          LEFT JOIN {_RUN} r ON r.id = d.run_id
          LEFT JOIN {_CAMPAIGN} c ON c.id = r.campaign_id
          LEFT JOIN {_REQUEST} q ON q.id = d.send_request_id
         WHERE d.contact_id = %s AND {{cursor}}
         ORDER BY 1 DESC, 3 DESC LIMIT %s""",
    "ledger": f"""
        SELECT e.at, CASE e.status WHEN 'opened' THEN 'open' WHEN 'clicked' THEN 'click'
                                   WHEN 'unsubscribed' THEN 'unsubscribe' ELSE 'bounce' END,
               e.id, d.id, {_MESSAGE_TITLE}, e.status::text, e.url,
               jsonb_build_object('channel', d.channel, 'campaignId', c.id,
                                  'requestId', d.request_id::text,
                                  'detail', left(e.detail, 300))
          FROM {_D} d
          JOIN {_E} e ON e.delivery_id = d.id
          LEFT JOIN {_RUN} r ON r.id = d.run_id
          LEFT JOIN {_CAMPAIGN} c ON c.id = r.campaign_id
          LEFT JOIN {_REQUEST} q ON q.id = d.send_request_id
         WHERE d.contact_id = %s AND NOT e.machine AND e.status = ANY(%s)
           AND {{cursor}}
         ORDER BY 1 DESC, 3 DESC LIMIT %s""",
    "order": f"""
        SELECT o.date, 'order'::text, o.id, o.id, o.external_order_id::text, o.status::text,
               ''::text, jsonb_build_object('total', o.total_cost, 'currency', o.currency)
          FROM {Order._meta.db_table} o
         WHERE o.contact_id = %s AND {{cursor}}
         ORDER BY 1 DESC, 3 DESC LIMIT %s""",
    "event": f"""
        SELECT v.created_at, 'event'::text, v.id, v.id, t.key::text, ''::text, ''::text,
               v.params::jsonb
          FROM {Event._meta.db_table} v
          JOIN {EventType._meta.db_table} t ON t.id = v.event_type_id
         WHERE v.contact_id = %s AND v.source_key = '' AND {{cursor}}
         ORDER BY 1 DESC, 3 DESC LIMIT %s""",
    "workflow": f"""
        SELECT w.started_at, 'workflow'::text, w.id, w.workflow_id, f.name::text,
               w.status::text, ''::text, jsonb_build_object('finishedAt', w.finished_at)
          FROM {WorkflowRun._meta.db_table} w
          JOIN {Workflow._meta.db_table} f ON f.id = w.workflow_id
         WHERE w.contact_id = %s AND {{cursor}}
         ORDER BY 1 DESC, 3 DESC LIMIT %s""",
}
# The time column of each branch, for its cursor condition.
_AT = {
    "message": "COALESCE(d.sent_at, d.created_at)",
    "ledger": "e.at",
    "order": "o.date",
    "event": "v.created_at",
    "workflow": "w.started_at",
}
_ID = {"message": "d.id", "ledger": "e.id", "order": "o.id", "event": "v.id", "workflow": "w.id"}
_LEDGER_STATUSES = {
    "open": ["opened"],
    "click": ["clicked"],
    "unsubscribe": ["unsubscribed"],
    "bounce": ["bounced", "complained"],
}


class CursorError(ValueError):
    """`before` is neither a time nor a cursor this list gave."""


@dataclass(frozen=True)
class Cursor:
    at: datetime
    kind: str = "~"  # after every kind: a bare time takes everything before it
    id: int = 0

    def encode(self) -> str:
        return f"{self.at.isoformat()}~{self.kind}~{self.id}"

    @classmethod
    def decode(cls, value: str) -> Cursor:
        at_text, _, rest = value.strip().partition("~")
        try:
            at = parse_datetime(at_text)
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            raise CursorError("an ISO 8601 date-time with its offset, or the `next` of a page")
        if not rest:
            return cls(at=at)
        kind, _, id_text = rest.partition("~")
        if kind not in KINDS or not id_text.isdigit() or len(id_text) > 18:
            raise CursorError("not a cursor of this list; start without it")
        return cls(at=at, kind=kind, id=int(id_text))


@dataclass(frozen=True)
class ActivityPage:
    items: list[dict[str, Any]]
    next: str | None


def _json(value: Any) -> dict[str, Any]:
    # Django's PostgreSQL backend hands raw jsonb back as text.
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _kind_expr(branch: str) -> str:
    if branch == "ledger":
        return (
            "CASE e.status WHEN 'opened' THEN 'open' WHEN 'clicked' THEN 'click' "
            "WHEN 'unsubscribed' THEN 'unsubscribe' ELSE 'bounce' END"
        )
    return f"'{branch}'::text"


def contact_activity(
    *,
    contact_id: int,
    before: Cursor | None = None,
    kinds: set[str] | frozenset[str] | None = None,
    limit: int = PAGE_DEFAULT,
) -> ActivityPage:
    """One page of the contact's timeline, newest first, older than `before`, of `kinds`
    (all when None); `next` is the cursor of the following page, None at the end."""
    wanted = set(KINDS) if not kinds else set(kinds) & set(KINDS)
    statuses = [s for kind, group in _LEDGER_STATUSES.items() if kind in wanted for s in group]
    parts: list[str] = []
    params: list[Any] = []
    for branch, sql in _BRANCHES.items():
        if branch == "ledger":
            if not statuses:
                continue
        elif branch not in wanted:
            continue
        cursor_params: list[Any]
        if before is None:
            cursor_sql, cursor_params = "TRUE", []
        elif before.kind == "~":  # a bare time: everything before it
            cursor_sql, cursor_params = f"{_AT[branch]} < %s", [before.at]
        else:
            cursor_sql = f"({_AT[branch]}, {_kind_expr(branch)}, {_ID[branch]}) < (%s, %s, %s)"
            cursor_params = [before.at, before.kind, before.id]
        parts.append(f"({sql.format(cursor=cursor_sql)})")
        params += [contact_id]
        if branch == "ledger":
            params.append(statuses)
        params += [*cursor_params, limit + 1]
    if not parts:
        return ActivityPage(items=[], next=None)
    sql = (
        "SELECT * FROM (" + " UNION ALL ".join(parts) + ") a(at, kind, id, ref, title, status,"
        " url, detail) ORDER BY at DESC, kind DESC, id DESC LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit + 1])
        rows = cursor.fetchall()
    items = [
        {
            "at": at,
            "kind": kind,
            "id": row_id,
            "ref": ref,
            "title": title,
            "status": status,
            "url": url,
            "detail": _json(detail),
        }
        for at, kind, row_id, ref, title, status, url, detail in rows[:limit]
    ]
    more = len(rows) > limit
    last = items[-1] if items else None
    next_cursor = (
        Cursor(at=last["at"], kind=last["kind"], id=last["id"]).encode() if more and last else None
    )
    return ActivityPage(items=items, next=next_cursor)
