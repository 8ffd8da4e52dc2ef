"""The "Contact" group of workflow blocks, and the contact block itself.

The contact block creates or updates the run's contact from what the event brought:

    {"id": "s1", "kind": "contact", "create": true, "key_as": "auto",
     "fields": [{"field": "firstName", "param": "name"}, {"field": "fields.12", "value": "x"}],
     "tags_add": ["new"], "tags_remove": ["lead"], "segment_ids": [3], "next": "s2"}

Each `fields` row takes an event parameter (`param`) or a fixed `value`. When a workflow
started by an event begins with a block whose `create` is on, an event whose keyValue matches
no contact still starts it: the contact is created first (`contact_for_event`), keyValue read
as an email, a phone or an external id (by what it looks like, or as `key_as` says). A
contact deleted before is not created again, as the eSputnik v1 API does for new-contact
events. The block then writes the fields, tags and static segments like on any contact.

The other blocks of the group (update a field, add to or remove from a static segment, issue
a promo code) live in the engine; `CONTACT_GROUP` lists the group for the editor.
"""

import re
from typing import Any

from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

from contacts.errors import ContactError
from contacts.models import Contact, ContactSource, CustomField, Segment, SegmentKind
from contacts.segments import SegmentError, segment_attach
from contacts.services import contact_create_or_update, contact_update
from contacts.validation import email_normalise, phone_normalise
from marketing.workflows import engine as wf_engine
from marketing.workflows import graph as wf_graph

# The step kinds the editor shows together as "Contact".
CONTACT_GROUP = ("contact", "update_field", "segment_add", "segment_remove", "promo_issue")
KEY_KINDS = {
    "auto": _("by what it looks like"),
    "email": _("an email address"),
    "phone": _("a phone number"),
    "externalId": _("an external customer id"),
}
MAX_FIELD_ROWS = 50
MAX_TAGS = 50
TAG_MAX = 100
_PHONE_RE = re.compile(r"[+0-9 ()\-]+")


def mappable_fields() -> dict[str, str]:
    """Contact columns a contact block may write (tags have their own add/remove lists)."""
    return {key: label for key, label in wf_graph.UPDATABLE_FIELDS.items() if key != "tags"}


def creates_contact(graph: dict) -> bool:
    """Whether a run of this graph may start for a contact that does not exist yet."""
    first = wf_graph.steps_by_id(graph or {}).get((graph or {}).get("start") or "")
    return bool(first and first.get("kind") == "contact" and first.get("create"))


def key_channel(key_value: str, key_as: str = "auto") -> tuple[str, str] | None:
    """(column, normalised value) that keyValue names, or None when it names nothing usable."""
    key = str(key_value or "").strip()
    if not key:
        return None
    if key_as == "auto":
        if "@" in key:
            key_as = "email"
        elif sum(ch.isdigit() for ch in key) >= 7 and _PHONE_RE.fullmatch(key):
            key_as = "phone"
        else:
            key_as = "externalId"
    if key_as == "email":
        email, problem = email_normalise(key)
        return None if problem or not email else ("email", email)
    if key_as == "phone":
        phone, problem = phone_normalise(key)
        return None if problem or not phone else ("phone", phone)
    return ("external_customer_id", key[:255])


def _new_contact_body(column: str, value: str) -> dict:
    if column == "email":
        return {"channels": [{"type": "email", "value": value}]}
    if column == "phone":
        return {"channels": [{"type": "sms", "value": value}]}
    return {"externalCustomerId": value}


@transaction.atomic
def contact_for_key(*, key_value: str, key_as: str = "auto") -> int | None:
    """The live contact keyValue names, created when there is none; None when keyValue names
    nothing usable or only a deleted contact (which is not brought back)."""
    found = key_channel(key_value, key_as)
    if found is None:
        return None
    column, value = found
    # Two events of one new address processed side by side must create one contact.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{column}:{value}"]
        )
    contacts = Contact.objects.filter(**{column: value})
    alive = contacts.filter(deleted_at__isnull=True).order_by("pk").first()
    if alive is not None:
        return alive.pk
    if contacts.exists():
        return None
    try:
        contact, _created = contact_create_or_update(
            data=_new_contact_body(column, value), source=ContactSource.API
        )
    except ContactError:
        return None
    return contact.pk


def _value(row: dict, params: dict) -> Any:
    if row.get("param"):
        return params.get(row["param"])
    return row.get("value")


def _update_body(step: dict, contact: Contact, params: dict) -> dict:
    """One eSputnik v1 contact body with every field row and the tag changes."""
    body: dict[str, Any] = {}
    for row in step.get("fields") or []:
        value = _value(row, params)
        if value is None:
            continue  # a parameter the event did not bring leaves the field as it is
        part = wf_engine.update_data(row["field"], value)
        for key, item in part.items():
            if key == "fields":
                body.setdefault("fields", []).extend(item)
            elif key == "address":
                body.setdefault("address", {}).update(item)
            else:
                body[key] = item
    adding = [tag for tag in step.get("tags_add") or [] if tag]
    removing = set(step.get("tags_remove") or [])
    if adding or removing:
        tags = [tag for tag in contact.tags or [] if tag not in removing]
        body["tags"] = tags + [tag for tag in adding if tag not in tags]
    return body


def contact_step_run(step: dict, run) -> "wf_engine.Outcome":
    """The engine's contact block: write the fields and tags, join the segments."""
    body = _update_body(step, run.contact, run.params or {})
    done = []
    if body:
        try:
            contact_update(contact=run.contact, data=body)
        except ContactError as exc:
            raise wf_engine.StepError(f"cannot update the contact: {exc}", permanent=True) from None
        done.append(", ".join(sorted(body)) + " set")
    for segment in Segment.objects.filter(pk__in=step.get("segment_ids") or []).order_by("pk"):
        try:
            segment_attach(segment=segment, contact_ids=[run.contact_id])
        except SegmentError as exc:
            raise wf_engine.StepError(str(exc), permanent=True) from None
        done.append(f"added to {segment.name}")
    return wf_engine.Outcome(
        next_step=step.get("next") or "", note="; ".join(done) or "nothing to change"
    )


def contact_step_describe(step: dict, params: dict) -> str:
    """What the simulator says the block would do."""
    parts = []
    for row in step.get("fields") or []:
        if row.get("param"):
            value = params.get(row["param"])
            shown = f"parameter {row['param']}" + ("" if value is None else f" ({value})")
        else:
            shown = repr(row.get("value"))
        parts.append(f"{row.get('field')} ← {shown}")
    if step.get("tags_add"):
        parts.append("add tags " + ", ".join(step["tags_add"]))
    if step.get("tags_remove"):
        parts.append("remove tags " + ", ".join(step["tags_remove"]))
    if step.get("segment_ids"):
        parts.append("join segments " + ", ".join(str(i) for i in step["segment_ids"]))
    verb = "would create or update the contact" if step.get("create") else "would update"
    return f"{verb}: " + ("; ".join(parts) or "nothing to change")


def step_problems(step: dict, name: str) -> list[str]:
    """What a contact block misses, each naming the block and the setting."""
    problems = []
    key_as = step.get("key_as", "auto")
    if not isinstance(key_as, str) or key_as not in KEY_KINDS:
        problems.append(f"{name}: keyValue must be read as one of {', '.join(KEY_KINDS)}")
    rows = step.get("fields") or []
    if not isinstance(rows, list) or len(rows) > MAX_FIELD_ROWS:
        problems.append(f"{name}: fields must be a list of at most {MAX_FIELD_ROWS} rows")
        rows = []
    allowed = mappable_fields()
    for position, row in enumerate(rows, 1):
        field = row.get("field") if isinstance(row, dict) else None
        if not isinstance(field, str) or (
            field not in allowed and not wf_graph.CUSTOM_FIELD_RE.match(field)
        ):
            problems.append(f"{name}: field row {position}: {field!r} is not a contact field")
        elif not (row.get("param") or "value" in row):
            problems.append(f"{name}: field row {position}: name the event parameter or a value")
    for key in ("tags_add", "tags_remove"):
        tags = step.get(key) or []
        if not isinstance(tags, list) or len(tags) > MAX_TAGS:
            problems.append(f"{name}: {key} must be a list of at most {MAX_TAGS} tags")
        elif any(not isinstance(tag, str) or len(tag) > TAG_MAX for tag in tags):
            problems.append(f"{name}: {key}: each tag is text of at most {TAG_MAX} characters")
    ids = step.get("segment_ids") or []
    if not isinstance(ids, list) or any(not isinstance(i, int) for i in ids):
        problems.append(f"{name}: segment_ids must be a list of static segment ids")
    elif not (rows or step.get("tags_add") or step.get("tags_remove") or ids or step.get("create")):
        problems.append(f"{name}: choose what to write (fields, tags or segments)")
    return problems


def reference_problems(step: dict, name: str) -> list[str]:
    """Segments and custom fields the block names that are gone or unfit (database reads)."""
    problems: list[str] = []
    # A graph edited as JSON (admin) may hold anything: step_problems names what is malformed.
    listed = step.get("segment_ids")
    ids = [i for i in listed if isinstance(i, int)] if isinstance(listed, list) else []
    segments = {s.pk: s for s in Segment.objects.filter(pk__in=ids)}
    for segment_id in ids:
        segment = segments.get(segment_id)
        if segment is None:
            problems.append(f"{name}: segment {segment_id} no longer exists")
        elif segment.kind != SegmentKind.STATIC:
            problems.append(f"{name}: segment “{segment.name}” is dynamic; choose a static one")
    rows = step.get("fields")
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        match = wf_graph.CUSTOM_FIELD_RE.match(str(row.get("field") or ""))
        if match and not CustomField.objects.filter(pk=int(match.group(1))).exists():
            problems.append(f"{name}: custom field {match.group(1)} no longer exists")
    return problems


def step_groups() -> list[tuple[Any, list[tuple[str, Any]]]]:
    """The editor's "add a step" choices in the block groups marketers know: messages, the
    contact, conditions, time, then every other kind."""
    kinds = wf_graph.STEP_KINDS
    named = [
        (_("Messages"), ("send", "send_one_of", "send_group")),
        (_("Contact"), CONTACT_GROUP),
        (_("Conditions"), ("condition", "split")),
        (_("Time"), ("wait",)),
    ]
    grouped = {kind for _group, members in named for kind in members}
    groups = [
        (group, [(kind, kinds[kind]) for kind in members if kind in kinds])
        for group, members in named
    ]
    others = [(kind, label) for kind, label in kinds.items() if kind not in grouped]
    return [*groups, (_("Other blocks"), others)]
