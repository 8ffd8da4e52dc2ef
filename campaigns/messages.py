"""Single messages (the eSputnik v1 message API): prepared message (smartsend), email, SMS,
status; and template test sends.

Each call stores one SendRequest and one queued Delivery per accepted recipient in a single
transaction, answers at once, and leaves sending to the delivery engine (campaigns.delivery),
whose task is enqueued on commit. A recipient Herald does not know becomes a contact with only that
channel (source "single_message"). A bad recipient fails alone: its result says why and the
others are queued. A recipient whose address is on the suppression list (a hard bounce, a
complaint, repeated soft bounces, a marketer's decision) is not sent: its delivery is stored
skipped with the reason, and its result is an ERROR saying so, with the requestId to ask the
status with. Single messages are transactional: the unsubscribed list does not stop them.
"""

# Table and column names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from celery import signature
from django.db import connection, transaction
from django.utils import timezone

from campaigns.delivery import policy
from campaigns.delivery.providers import channel_integrations
from campaigns.models import (
    Campaign,
    CampaignType,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    SendKind,
    SendRequest,
)
from campaigns.pipeline import audience_reachable
from config.core.errors import HeraldError
from config.core.external_keys import by_id_or_key
from config.core.parsers import json_text_load
from config.core.partitions import period_of
from contacts.address_locks import contact_addresses_lock
from contacts.channels import email_normalise, phone_normalise
from contacts.filters.compiler import segment_contacts
from contacts.models import MESSENGER_CHANNELS, ChannelType, Contact, ContactSource, Segment
from contacts.suppression import suppression_explain, suppression_sql, suppressions_active
from templates.models import MessageTemplate, TemplateVersion

RECIPIENTS_MAX = 1000
STATUS_IDS_MAX = 1000
# Parallel sending tasks per request: enough to spread 1000 recipients over a few workers,
# few enough that one big request cannot occupy every worker of the deployment.
SEND_TASKS_MAX = 4
# Messengers address a chat, not a person: the locator is the chat id a contact's
# extra_channels entry holds (set when the contact subscribed to the bot), and a message to a
# chat no contact holds creates no contact.
SENDABLE_CHANNELS = (ChannelType.EMAIL, ChannelType.SMS, *MESSENGER_CHANNELS)
# A Telegram chat: a numeric id (negative for groups), or @username of a public channel.
_CHAT_ID = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}")
# The task that sends a request (campaigns.tasks.send_request_task), enqueued by name: the
# tasks module imports the engine, which must not depend on its producers.
SEND_REQUEST_TASK = "campaigns.send_request"

FieldError = tuple[str, str]


class MessageError(HeraldError):
    """The request as a whole is refused; `errors` name the fields (HTTP 400)."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {problem}" for field, problem in errors))


class MessageNotFound(MessageError):
    """The message (template) or group named by the request does not exist (HTTP 404)."""

    status = 404


class ChannelNotConnected(MessageError):
    """No enabled integration connects the channel the request sends on (HTTP 409)."""

    status = 409


@dataclass
class RecipientResult:
    """One recipient's answer: OK with the requestId to ask the status with, or ERROR with
    why. `contact_id` is the contact the message goes to."""

    locator: str
    ok: bool
    request_id: uuid.UUID | None = None
    contact_id: int | None = None
    message: str = ""

    def as_api(self) -> dict[str, Any]:
        """The eSputnik v1 API's result item: ids as strings, as its answers write them;
        `message` only when there is something to say (an ERROR's reason)."""
        item: dict[str, Any] = {
            "id": str(self.contact_id) if self.contact_id is not None else None,
            "locator": self.locator,
            "status": "OK" if self.ok else "ERROR",
            "requestId": str(self.request_id) if self.request_id else None,
        }
        if self.message:
            item["message"] = self.message
        return item


@dataclass
class _Planned:
    """A recipient that passed validation, waiting for its contact and delivery."""

    result: RecipientResult
    request_id: uuid.UUID
    address: str
    contact_id: int | None = None
    params: dict | None = None
    language_code: str = ""


def _normalise(channel: str, value: Any) -> tuple[str | None, str | None]:
    if channel == ChannelType.EMAIL:
        return email_normalise(value)
    if channel in MESSENGER_CHANNELS:
        text = str(value).strip() if isinstance(value, str | int) else ""
        valid = (
            _CHAT_ID.fullmatch(text)
            if channel == ChannelType.TELEGRAM
            else 0 < len(text) <= 254 and not any(c.isspace() for c in text)
        )
        if valid:
            return text, None
        return None, f"must be a {ChannelType(channel).label} chat id"
    return phone_normalise(value)


def messenger_chat(extra_channels: Any, channel: str) -> str:
    """The contact's chat on a messenger channel ('' when it has none)."""
    for entry in extra_channels if isinstance(extra_channels, list) else []:
        if isinstance(entry, dict) and entry.get("type") == channel and entry.get("value"):
            return str(entry["value"])
    return ""


def _messenger_contacts(channel: str, chats: list[str]) -> dict[str, int]:
    """The oldest live contact holding each chat, in one query; chats no contact holds are
    left out."""
    wanted = sorted(set(chats))
    if not wanted:
        return {}
    table = Contact._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT DISTINCT ON (e->>'value') e->>'value', c.id
                  FROM {table} c CROSS JOIN LATERAL jsonb_array_elements(c.extra_channels) e
                 WHERE c.deleted_at IS NULL AND e->>'type' = %s AND e->>'value' = ANY(%s)
                 ORDER BY e->>'value', c.id""",
            [channel, wanted],
        )
        return dict(cursor.fetchall())


def _contact_column(channel: str) -> str:
    return "email" if channel == ChannelType.EMAIL else "phone"


def contacts_for_addresses(*, channel: str, addresses: Iterable[str]) -> dict[str, int]:
    """The contact id for each (normalised) address: the oldest live contact with it, else a
    new contact holding only that channel, source single_message. Must run in a transaction.
    """
    column = _contact_column(channel)
    wanted = sorted(set(addresses))
    if not wanted:
        return {}
    table = Contact._meta.db_table
    lookup = f"""SELECT DISTINCT ON ({column}) {column}, id FROM {table}
                  WHERE {column} = ANY(%s) AND deleted_at IS NULL ORDER BY {column}, id"""
    with connection.cursor() as cursor:
        cursor.execute(lookup, [wanted])
        found = dict(cursor.fetchall())
        missing = [address for address in wanted if address not in found]
        if missing:
            # The address locks every contact creator takes: a concurrent subscribe or
            # message of a new address waits for this one and then finds its contact instead
            # of a twin.
            contact_addresses_lock(cursor, missing)
            cursor.execute(lookup, [missing])
            found.update(cursor.fetchall())
    missing = [address for address in wanted if address not in found]
    if missing:
        now = timezone.now()
        created = Contact.objects.bulk_create(
            [
                Contact(
                    **{column: address},
                    source=ContactSource.SINGLE_MESSAGE,
                    confirmed=True,
                    confirmed_at=now,
                )
                for address in missing
            ]
        )
        found.update({getattr(contact, column): contact.pk for contact in created})
    return found


def _queue(
    send_request: SendRequest,
    channel: str,
    planned: list[_Planned],
    version: TemplateVersion | None = None,
) -> int:
    """Give each planned recipient its contact and one delivery (one bulk insert): queued, or
    skipped with the reason when its address is suppressed; enqueue the sending task for
    after the commit. Returns how many were queued."""
    unknown = [p.address for p in planned if p.contact_id is None]
    if channel in MESSENGER_CHANNELS:
        contact_ids: Mapping[str, int | None] = _messenger_contacts(channel, unknown)
    else:
        contact_ids = contacts_for_addresses(channel=channel, addresses=unknown)
    blocked = suppressions_active(channel, [p.address for p in planned])
    now = timezone.now()
    rows = []
    for plan in planned:
        plan.result.contact_id = plan.contact_id or contact_ids.get(plan.address)
        row = Delivery(
            request_id=plan.request_id,
            send_request=send_request,
            contact_id=plan.result.contact_id,
            channel=channel,
            locator=plan.address,
            template_version=version,
            params=plan.params or {},
            language_code=plan.language_code,
            status=DeliveryStatus.QUEUED,
        )
        suppression = blocked.get(plan.address)
        if suppression is not None:
            reason = suppression_explain(suppression)
            plan.result.ok = False
            plan.result.message = reason
            row.status, row.error, row.failed_at = DeliveryStatus.SKIPPED, reason, now
        rows.append(row)
    Delivery.objects.bulk_create(rows, batch_size=1000)
    skipped = [row for row in rows if row.status == DeliveryStatus.SKIPPED]
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(delivery=row, status=DeliveryStatus.SKIPPED, detail=row.error)
        for row in skipped
    )
    queued = len(rows) - len(skipped)
    if queued:
        send_request_enqueue(send_request_id=send_request.pk, deliveries=queued)
    return queued


def send_request_enqueue(*, send_request_id: int, deliveries: int) -> None:
    """Enqueue the sending, after the commit, as one task per batch of deliveries (at most
    SEND_TASKS_MAX): with several workers a large request is sent in parallel, and the tasks
    never collide because each claims its own rows (SKIP LOCKED)."""
    tasks = min(SEND_TASKS_MAX, max(1, -(-deliveries // policy.BATCH_SIZE)))

    def enqueue() -> None:
        for _ in range(tasks):
            signature(SEND_REQUEST_TASK, args=(send_request_id,)).delay()

    transaction.on_commit(enqueue)


# Send requests woken by beat at most this many at a time (each a task that claims its rows).
WAKE_BATCH = 500


def send_requests_wake_due() -> int:
    """Start the sending of send requests whose rows waited for a sending window that has
    opened (the beat's work): their own tasks stop rather than sleep for hours in the broker
    (campaigns.delivery.engine.RequestScope). Returns how many were woken."""
    table = Delivery._meta.db_table
    requests = SendRequest._meta.db_table
    with connection.cursor() as cursor:
        # delivery_request_queued holds only queued rows of send requests: a short walk.
        cursor.execute(
            f"""SELECT DISTINCT d.send_request_id FROM {table} d
                  JOIN {requests} q ON q.id = d.send_request_id
                 WHERE d.send_request_id IS NOT NULL AND d.status = 'queued'
                   AND d.claimed_at IS NULL AND d.next_attempt_at <= now()
                   AND q.send_window IS NOT NULL
                 LIMIT %s""",
            [WAKE_BATCH],
        )
        ids = [row[0] for row in cursor.fetchall()]
    for send_request_id in ids:
        signature(SEND_REQUEST_TASK, args=(send_request_id,)).delay()
    return len(ids)


# --- prepared message ----------------------------------------------------------------------


def _json_param(raw: Any) -> tuple[dict | None, str | None]:
    """jsonParam: a JSON *string* per the eSputnik v1 API (also an object, as many clients send)."""
    if raw is None or raw == "":
        return {}, None
    if isinstance(raw, dict):
        return raw, None
    if not isinstance(raw, str):
        return None, "jsonParam must be a JSON object or a string holding one"
    try:
        value = json_text_load(raw)
    except json.JSONDecodeError as exc:  # the only error json_text_load raises
        return None, f"jsonParam is not valid JSON ({exc.msg} at position {exc.pos})"
    if not isinstance(value, dict):
        return None, "jsonParam must hold a JSON object"
    return value, None


def _contact_id(raw: Any) -> tuple[int | None, str | None]:
    if raw is None or raw == "":
        return None, None
    if isinstance(raw, bool):
        return None, "contactId must be a contact id"
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None, "contactId must be a contact id"
    return (value, None) if value > 0 else (None, "contactId must be a contact id")


def _latest_version(template_id: int | str) -> tuple[MessageTemplate, TemplateVersion]:
    """The message (template) a numeric id or its external key names, at its latest version."""
    template = by_id_or_key(MessageTemplate.objects.all(), template_id)
    if template is None:
        raise MessageNotFound([("id", f"no message with id or external key {template_id}")])
    version = template.versions.order_by("-number").first()
    if version is None:
        raise MessageError(
            [("id", f"message {template_id} has no published version; publish it first")]
        )
    if version.channel not in SENDABLE_CHANNELS:
        raise MessageError(
            [
                (
                    "id",
                    f"message {template_id} is a {version.get_channel_display()} message; "
                    "single messages are sent by email, SMS, Telegram or Viber",
                )
            ]
        )
    return template, version


@transaction.atomic
def smartsend_start(
    *,
    template_id: int | str,
    recipients: list[dict],
    email: bool | None = None,
    from_name: str = "",
    external_request_id: str = "",
    api_key: Any = None,
    kind: str = SendKind.SMARTSEND,
    send_window: dict | None = None,
) -> tuple[SendRequest, list[RecipientResult]]:
    """POST /v1/message/{id}/smartsend: the latest published version of message `id` to
    each recipient, personalised with its jsonParam as $data, in the language version its
    languageCode (else its contact's language) picks (templates.languages). A workflow's send
    step passes kind WORKFLOW (a marketing message: frequency caps apply) and its sending
    window."""
    _template, version = _latest_version(template_id)
    channel = version.channel
    if email is not None and email != (channel == ChannelType.EMAIL):
        raise MessageError(
            [("email", f"is {str(email).lower()} but message {template_id} is sent by {channel}")]
        )
    send_request = SendRequest.objects.create(
        kind=kind,
        send_window=send_window,
        template_version=version,
        from_name=from_name,
        external_request_id=external_request_id,
        api_key=api_key,
    )
    column = _contact_column(channel)
    given_ids: dict[int, None] = {}
    for raw in recipients:
        contact_id, _ = _contact_id(raw.get("contactId"))
        if contact_id:
            given_ids[contact_id] = None
    alive = Contact.objects.alive().filter(pk__in=list(given_ids))
    # A recipient without a languageCode gets its contact's language version.
    languages: dict[int, str] = {}
    if channel in MESSENGER_CHANNELS:
        column = f"{channel} chat"
        known = {}
        for contact in alive.only("pk", "extra_channels", "language_code"):
            known[contact.pk] = messenger_chat(contact.extra_channels, channel)
            languages[contact.pk] = contact.language_code
    else:
        known = {}
        for contact in alive.only("pk", column, "language_code"):
            known[contact.pk] = getattr(contact, column)
            languages[contact.pk] = contact.language_code
    results: list[RecipientResult] = []
    planned: list[_Planned] = []
    for raw in recipients:
        locator = raw.get("locator")
        result = RecipientResult(locator=locator if isinstance(locator, str) else "", ok=False)
        results.append(result)
        contact_id, problem = _contact_id(raw.get("contactId"))
        params, json_problem = _json_param(raw.get("jsonParam"))
        problem = problem or json_problem
        language = raw.get("languageCode") or ""
        if not problem and (not isinstance(language, str) or len(language) > 10):
            problem = "languageCode must be a language code of at most 10 characters"
        if not problem and contact_id is not None and contact_id not in known:
            problem = f"no contact with id {contact_id}"
        address = None
        if not problem:
            if locator not in (None, ""):
                address, problem = _normalise(channel, locator)
                if problem:
                    problem = f"locator {problem}"
            elif contact_id is not None:
                address = known[contact_id] or None
                if address is None:
                    problem = f"contact {contact_id} has no {column}"
                result.locator = address or ""
            else:
                problem = "locator (or contactId) is required"
        if problem:
            result.message = problem
            continue
        if address is None:  # each branch above finds an address or names a problem
            raise AssertionError("a valid recipient without an address")
        result.ok = True
        result.request_id = request_id = uuid.uuid4()
        planned.append(
            _Planned(
                result=result,
                request_id=request_id,
                address=address,
                contact_id=contact_id,
                params=params,
                language_code=language or languages.get(contact_id or 0, ""),
            )
        )
    _queue(send_request, channel, planned, version)
    return send_request, results


# --- email and SMS with inline content ------------------------------------------------------


def _plan_addresses(
    channel: str, values: list[Any]
) -> tuple[list[RecipientResult], list[_Planned]]:
    results: list[RecipientResult] = []
    planned: list[_Planned] = []
    for value in values:
        result = RecipientResult(locator=value if isinstance(value, str) else str(value), ok=False)
        results.append(result)
        address, problem = _normalise(channel, value)
        if problem:
            result.message = problem
            continue
        if address is None:  # validation gives an address or a problem
            raise AssertionError("a valid recipient without an address")
        result.ok = True
        result.request_id = request_id = uuid.uuid4()
        planned.append(_Planned(result=result, request_id=request_id, address=address))
    return results, planned


@transaction.atomic
def email_send_start(
    *,
    from_email: str,
    from_name: str,
    subject: str,
    html: str,
    text: str,
    emails: list[Any],
    tags: list[str],
    external_request_id: str = "",
    skip_personalisation: bool = False,
    api_key: Any = None,
) -> tuple[SendRequest, list[RecipientResult]]:
    """POST /v1/message/email: the same content (Velocity unless skip_personalisation) to
    each address. Content is checked by the caller (the API view)."""
    send_request = SendRequest.objects.create(
        kind=SendKind.EMAIL,
        subject=subject,
        html=html,
        text=text,
        from_email=from_email,
        from_name=from_name,
        skip_personalisation=skip_personalisation,
        tags=tags,
        external_request_id=external_request_id,
        api_key=api_key,
    )
    results, planned = _plan_addresses(ChannelType.EMAIL, emails)
    _queue(send_request, ChannelType.EMAIL, planned)
    return send_request, results


@transaction.atomic
def sms_send_start(
    *,
    sender: str,
    text: str,
    phone_numbers: list[Any],
    group_id: int | None = None,
    tags: list[str],
    api_key: Any = None,
) -> tuple[SendRequest, list[RecipientResult], int]:
    """POST /v1/message/sms: one text to phone numbers, or to every contact with a phone in
    a segment (group). Returns the request, per-number results and the number queued."""
    segment = None
    if group_id is not None:
        segment = Segment.objects.filter(pk=group_id).first()
        if segment is None:
            raise MessageNotFound([("groupId", f"no group with id {group_id}")])
    send_request = SendRequest.objects.create(
        kind=SendKind.SMS, text=text, from_name=sender, tags=tags, api_key=api_key
    )
    results, planned = _plan_addresses(ChannelType.SMS, phone_numbers)
    queued = _queue(send_request, ChannelType.SMS, planned)
    if segment is not None:
        queued += _queue_segment_sms(send_request, segment)
    return send_request, results, queued


def _viber_users(phones: list[str]) -> dict[str, tuple[int, str]]:
    """(contact id, Viber user id) for each phone: the oldest live contact with that phone
    holding a Viber channel, in one query; phones no such contact has are left out."""
    wanted = sorted(set(phones))
    if not wanted:
        return {}
    table = Contact._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT DISTINCT ON (c.phone) c.phone, c.id, e->>'value'
                  FROM {table} c CROSS JOIN LATERAL jsonb_array_elements(c.extra_channels) e
                 WHERE c.deleted_at IS NULL AND c.phone = ANY(%s)
                   AND e->>'type' = %s AND coalesce(e->>'value', '') <> ''
                 ORDER BY c.phone, c.id""",
            [wanted, str(ChannelType.VIBER)],
        )
        return {phone: (contact_id, user) for phone, contact_id, user in cursor.fetchall()}


@transaction.atomic
def viber_send_start(
    *,
    sender: str,
    text: str,
    phone_numbers: list[Any],
    tags: list[str],
    external_request_id: str = "",
    api_key: Any = None,
) -> tuple[SendRequest, list[RecipientResult]]:
    """POST /v1/message/viber: one text to the Viber users of the contacts with these phone
    numbers, through the integration connecting Viber. A number whose contacts have no Viber
    channel (nobody subscribed to the bot with it) fails alone; no contact is created, since
    a Viber user id cannot be made up from a phone number. Raises ChannelNotConnected when
    no enabled integration connects Viber."""
    if not channel_integrations(ChannelType.VIBER):
        raise ChannelNotConnected(
            [
                (
                    "channel",
                    "viber is not connected: no enabled integration connects Viber "
                    "(connect a Viber bot on the Integrations page)",
                )
            ]
        )
    send_request = SendRequest.objects.create(
        # An inline text message, as an SMS is, on the Viber channel.
        kind=SendKind.VIBER,
        text=text,
        from_name=sender,
        tags=tags,
        external_request_id=external_request_id,
        api_key=api_key,
    )
    results, planned_phones = _plan_addresses(ChannelType.SMS, phone_numbers)
    users = _viber_users([plan.address for plan in planned_phones])
    planned: list[_Planned] = []
    for plan in planned_phones:
        found = users.get(plan.address)
        if found is None:
            plan.result.ok, plan.result.request_id = False, None
            plan.result.message = "no contact with this phone number has a Viber channel"
            continue
        plan.result.contact_id, plan.address = found
        plan.contact_id = found[0]
        planned.append(plan)
    _queue(send_request, ChannelType.VIBER, planned)
    return send_request, results


def _queue_segment_sms(send_request: SendRequest, segment: Segment) -> int:
    """Every contact of the segment with a phone, in one INSERT ... SELECT (a segment may
    hold millions; none of them passes through Python). Like a campaign audience, it leaves
    suppressed numbers out."""
    members = segment_contacts(segment).exclude(phone="").values("id", "phone")
    members_sql, members_params = members.query.sql_with_params()
    given: dict[str, tuple[str, list[Any]]] = {
        "request_id": ("gen_random_uuid()", []),
        "send_request_id": ("%s", [send_request.pk]),
        "contact_id": ("m.id", []),
        "channel": ("%s", [ChannelType.SMS]),
        "locator": ("m.phone", []),
        "status": ("%s", [DeliveryStatus.QUEUED]),
        "created_at": ("now()", []),
        "period": ("%s", [period_of(send_request.created_at)]),
    }
    columns, values, params = _delivery_columns(given)
    table = Delivery._meta.db_table
    not_suppressed = suppression_sql("%s", "m.phone")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} FROM ({members_sql}) m WHERE {not_suppressed}",
            [*params, *members_params, str(ChannelType.SMS)],
        )
        count = cursor.rowcount
    if count:
        send_request_enqueue(send_request_id=send_request.pk, deliveries=count)
    return count


def _delivery_columns(
    given: dict[str, tuple[str, list[Any]]],
) -> tuple[list[str], list[str], list[Any]]:
    """(columns, SQL expressions, parameters) of a Delivery INSERT ... SELECT: the `given`
    expressions, and every other column its model default, so columns added to Delivery
    later need no change in the statements that use this."""
    columns: list[str] = []
    values: list[str] = []
    params: list[Any] = []
    for model_field in Delivery._meta.concrete_fields:
        if model_field.primary_key:
            continue
        column = model_field.column
        if column is None:  # a concrete field has a column by definition
            raise AssertionError(f"concrete field {model_field.name} without a column")
        expression, args = given.get(column) or (
            "%s",
            [model_field.get_db_prep_save(model_field.get_default(), connection)],
        )
        columns.append(column)
        values.append(expression)
        params += args
    return columns, values, params


@transaction.atomic
def segment_message_start(
    *,
    template_id: int,
    segment: Segment,
    params: dict | None = None,
    kind: str = SendKind.WORKFLOW,
) -> tuple[SendRequest, int]:
    """The latest published version of message `template_id` to every contact of the
    segment that a campaign on its channel would reach (confirmed, with an address on the
    channel, not suppressed, for email not unsubscribed: campaigns.pipeline), each with
    `params` as $data and its own language. One INSERT ... SELECT: a segment may hold
    millions, none of them passes through Python. Returns the request and how many rows
    were queued."""
    _template, version = _latest_version(template_id)
    channel = version.channel
    send_request = SendRequest.objects.create(kind=kind, template_version=version)
    members_sql, members_params = segment_contacts(segment).values("id").query.sql_with_params()
    join, locator, where = audience_reachable(channel)
    columns, values, insert_params = _delivery_columns(
        {
            "request_id": ("gen_random_uuid()", []),
            "send_request_id": ("%s", [send_request.pk]),
            "contact_id": ("c.id", []),
            "channel": ("%s", [channel]),
            "locator": (locator, []),
            "params": ("%s::jsonb", [json.dumps(params or {}, default=str)]),
            "language_code": ("c.language_code", []),
            "status": ("%s", [DeliveryStatus.QUEUED]),
            "created_at": ("now()", []),
            "period": ("%s", [period_of(send_request.created_at)]),
        }
    )
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} FROM {Contact._meta.db_table} c {join} "
            f"WHERE c.id IN ({members_sql}) AND {' AND '.join(where)}",
            [*insert_params, *members_params],
        )
        count = cursor.rowcount
    if count:
        send_request_enqueue(send_request_id=send_request.pk, deliveries=count)
    return send_request, count


# --- status --------------------------------------------------------------------------------

# A message that reached the recipient: the provider said so, or the recipient acted on it
# (a complaint or an unsubscribe comes from the message itself).
DELIVERED_STATUSES = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.OPENED,
        DeliveryStatus.CLICKED,
        DeliveryStatus.COMPLAINED,
        DeliveryStatus.UNSUBSCRIBED,
    }
)
FAILED_STATUSES = frozenset({DeliveryStatus.FAILED, DeliveryStatus.BOUNCED, DeliveryStatus.SKIPPED})


def _outcome(row: Mapping[str, Any]) -> tuple[bool, bool]:
    """(failed, delivered) of a ledger row, from its status and stamps: a complaint about a
    bounced message (failed_at set) is still a failure; a message opened or clicked was
    delivered even when the provider never said so."""
    status = row["status"]
    failed = status in FAILED_STATUSES or (
        status == DeliveryStatus.COMPLAINED and row["failed_at"] is not None
    )
    reached = (
        status in DELIVERED_STATUSES
        or row["delivered_at"] is not None
        or row["opened_at"] is not None
        or row["clicked_at"] is not None
    )
    return failed, reached and not failed


def message_statuses(*, request_ids: list[str]) -> list[dict[str, Any]]:
    """Status of single messages by requestId, in the order asked; unknown ids are reported
    with status NOT_FOUND. `status` is the ledger's (provider feedback included: DELIVERED,
    BOUNCED, COMPLAINED, …); `failed` and `delivered` say how it ended, `message` why it
    failed (the bounce, the suppression)."""
    parsed: dict[str, uuid.UUID | None] = {}
    for raw in request_ids:
        try:
            parsed[raw] = uuid.UUID(raw)
        except ValueError:
            parsed[raw] = None
    rows = {
        row["request_id"]: row
        for row in Delivery.objects.filter(
            request_id__in=[value for value in parsed.values() if value]
        ).values(
            "request_id",
            "contact_id",
            "status",
            "error",
            "delivered_at",
            "opened_at",
            "clicked_at",
            "failed_at",
        )
    }
    items: list[dict[str, Any]] = []
    for raw, value in parsed.items():
        row = rows.get(value) if value else None
        if row is None:
            items.append(
                {
                    "id": None,
                    "requestId": raw,
                    "status": "NOT_FOUND",
                    "failed": False,
                    "delivered": False,
                    "message": "no message with this requestId",
                }
            )
            continue
        failed, delivered = _outcome(row)
        items.append(
            {
                "id": row["contact_id"],
                "requestId": raw,
                "status": row["status"].upper(),
                "failed": failed,
                "delivered": delivered,
                "message": row["error"] or None,
            }
        )
    return items


@transaction.atomic
def template_test_send(
    *,
    template: MessageTemplate,
    email: str,
    data: dict | None = None,
    contact: Contact | None = None,
) -> Delivery:
    """Send a template's saved draft to one address, marked as a test. The address does
    not become a contact; `contact` and `data` personalise the message as $contact and $data.
    The delivery is in the ledger (kind TEST) like any other message."""
    address = _test_address(template, email)
    send_request = SendRequest.objects.create(
        kind=SendKind.TEST,
        # The engine marks the message as a test ("[Test] " subject, X-Herald-Test header).
        subject=template.subject,
        preheader=template.preheader,
        html=template.html,
        text=template.text,
        from_email=template.from_email,
        from_name=template.from_name,
    )
    delivery = Delivery.objects.create(
        send_request=send_request,
        contact=contact,
        channel=ChannelType.EMAIL,
        locator=address,
        params=data or {},
        status=DeliveryStatus.QUEUED,
    )
    send_request_enqueue(send_request_id=send_request.pk, deliveries=1)
    return delivery


def _test_address(template: MessageTemplate, email: str) -> str:
    """The address a test send of the template goes to, or the MessageError that says why not."""
    if template.channel != ChannelType.EMAIL:
        raise MessageError([("template", "only email templates can be test-sent to an address")])
    address, problem = _normalise(ChannelType.EMAIL, email)
    if problem:
        raise MessageError([("email", problem)])
    if address is None:  # validation gives an address or a problem
        raise AssertionError("a valid address that is None")
    return address


def _campaign_template(campaign: Campaign) -> MessageTemplate | None:
    """The template a run of the campaign sends first: a drip's first step's, else its own."""
    if campaign.type == CampaignType.DRIP:
        step = campaign.steps.order_by("position").select_related("template").first()
        return step.template if step is not None else None
    return campaign.template


@transaction.atomic
def campaign_test_send(*, campaign: Campaign, email: str) -> Delivery:
    """Send one address the message a run of the campaign would send it, marked as a test.

    The same path as a run's rows: the template's latest published version (the draft, when
    none is published yet: a launch would publish it), the language version for the address's
    contact, the campaign's email service and UTM tags, the delivery engine's rendering, CSS
    inlining, tracking and headers. What differs is documented in campaigns.delivery: the
    "[Test] " subject, an X-Herald-Test header, sample promo codes, and the delivery being a
    test send's (outside the campaign's runs, so its opens and clicks are not the campaign's).
    """
    if ChannelType.EMAIL not in campaign.channels:
        raise MessageError([("email", "this campaign sends no email")])
    template = _campaign_template(campaign)
    if template is None:
        raise MessageError([("template", "choose the campaign's template first")])
    address = _test_address(template, email)
    version = template.versions.order_by("-number").first()
    draft: dict[str, str] = {}
    if version is None:
        draft = {
            "subject": template.subject,
            "preheader": template.preheader,
            "html": template.html,
            "text": template.text,
            "from_email": template.from_email,
            "from_name": template.from_name,
        }
    send_request = SendRequest.objects.create(
        kind=SendKind.TEST,
        template_version=version,
        campaign=campaign,
        tags=[f"campaign-{campaign.pk}", "test"],
        **draft,
    )
    contact = (
        Contact.objects.filter(email__iexact=address, deleted_at__isnull=True)
        .order_by("pk")
        .first()
    )
    delivery = Delivery.objects.create(
        send_request=send_request,
        contact=contact,
        channel=ChannelType.EMAIL,
        locator=address,
        language_code=contact.language_code if contact is not None else "",
        status=DeliveryStatus.QUEUED,
    )
    send_request_enqueue(send_request_id=send_request.pk, deliveries=1)
    return delivery
