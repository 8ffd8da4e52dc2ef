"""Subscription forms: the form's rules, a submission, and the counters behind its statistics.

Decisions
- A submission subscribes through contacts.services.contact_subscribe, the rule behind the
  eSputnik v1 API's subscribe call, with the form's key as `formType`: the same upsert, the
  same unconfirmed new contacts and confirmation email, the same `subscribeFromApi-<key>` /
  `subscribeUpdateFromApi-<key>` events. A form with double opt-in off confirms the contact
  in the same transaction, so the queued confirmation email finds it confirmed and sends
  nothing.
- Tags are added to the contact's own (the subscribe rule would replace them).
- Counters are one UPSERT per bump on a (form, day) row: a page view costs one statement and
  two processes counting at once cannot lose an increment.
- The rate limit counts every attempt (spam or not) per form and address in fixed windows,
  in PostgreSQL: the cache is per process and would let N processes allow N times the limit.
"""

# The SQL below interpolates only table names of this app; every value is a parameter.
# ruff: noqa: S608

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from config.core.errors import FieldError
from contacts.models import Contact, CustomField, Segment, SegmentKind
from contacts.optin import contact_confirm
from contacts.segment_members import contacts_mark_changed
from contacts.services import contact_subscribe
from marketing.signup.models import (
    BUILTIN_FIELDS,
    CUSTOM_PREFIX,
    KEY_MAX,
    SignupDailyStat,
    SignupForm,
    SignupRateWindow,
    SignupSubmission,
)

KEY_RE = re.compile(r"\A[-a-zA-Z0-9_]+\Z")
COLOUR_RE = re.compile(r"\A#[0-9a-fA-F]{6}\Z")
STATS_DAYS = 30
# Counters a caller may bump (column names of SignupDailyStat).
COUNTERS = frozenset({"views", "submissions", "new_contacts", "updated_contacts", "spam"})


class Problem(NamedTuple):
    field: str  # the model attribute (or `fields[0].key`) it is about
    code: str  # what pages translate
    message: str  # English, as the API answers it


class SignupFormError(FieldError):
    """A form definition the rules refuse: every problem found, the first as `field`."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(problems[0].field, problems[0].message)


# --- the form's rules ------------------------------------------------------------------------


def _custom_fields() -> dict[int, CustomField]:
    return {field.pk: field for field in CustomField.objects.all()}


def signup_fields_clean(fields: Any) -> list[dict[str, Any]]:
    """The form's field list, checked: known keys, once each, email present and required."""
    if not isinstance(fields, list):
        raise SignupFormError(
            [Problem("fields", "fields", "must be a list of {key, label, required} objects")]
        )
    custom = _custom_fields()
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, item in enumerate(fields):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise SignupFormError(
                [
                    Problem(
                        f"fields[{position}]", "fields", "must be an object {key, label, required}"
                    )
                ]
            )
        key = item["key"]
        if key.startswith(CUSTOM_PREFIX):
            try:
                field_id = int(key.removeprefix(CUSTOM_PREFIX))
            except ValueError:
                field_id = 0
            if field_id not in custom:
                raise SignupFormError(
                    [Problem(f"fields[{position}].key", "fields", f"no custom field '{key}'")]
                )
        elif key not in BUILTIN_FIELDS:
            raise SignupFormError(
                [
                    Problem(
                        f"fields[{position}].key",
                        "fields",
                        f"'{key}' is not email, phone, first_name, last_name or field:<id>",
                    )
                ]
            )
        if key in seen:
            raise SignupFormError(
                [Problem(f"fields[{position}].key", "fields", f"'{key}' is listed twice")]
            )
        seen.add(key)
        label = item.get("label") or ""
        if not isinstance(label, str) or len(label) > 200:
            raise SignupFormError(
                [Problem(f"fields[{position}].label", "fields", "must be at most 200 characters")]
            )
        cleaned.append({"key": key, "label": label.strip(), "required": bool(item.get("required"))})
    email = next((item for item in cleaned if item["key"] == "email"), None)
    if email is None:
        raise SignupFormError([Problem("fields", "email_missing", "a form needs the email field")])
    email["required"] = True
    return cleaned


def signup_form_check(form: SignupForm, groups: list[Segment] | None) -> None:
    """Raise SignupFormError naming every rule `form` (unsaved changes included) breaks;
    normalises its field list and tags in place."""
    problems: list[Problem] = []

    def refuse(field: str, code: str, message: str) -> None:
        problems.append(Problem(field, code, message))

    if not form.name.strip():
        refuse("name", "required", "is required")
    if not form.key or len(form.key) > KEY_MAX or not KEY_RE.match(form.key):
        refuse("key", "key", f"use 1 to {KEY_MAX} letters, digits, hyphens or underscores")
    elif SignupForm.objects.filter(key=form.key).exclude(pk=form.pk).exists():
        refuse("key", "key_taken", f"another form already uses the key '{form.key}'")
    try:
        form.fields = signup_fields_clean(form.fields)
    except SignupFormError as exc:
        problems.extend(exc.problems)
    if form.redirect_url:
        parts = urlsplit(form.redirect_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            refuse("redirect_url", "redirect_url", "must be an http:// or https:// address")
    if not COLOUR_RE.match(form.accent_color or ""):
        refuse("accent_color", "accent_color", "must be a colour like #1d4ed8")
    if form.consent_enabled and not form.consent_text.strip():
        refuse("consent_text", "consent_text", "write the consent text people agree to")
    if form.language not in {code for code, _name in settings.LANGUAGES}:
        refuse("language", "language", f"'{form.language}' is not a language of Herald")
    form.tags = list(dict.fromkeys(t.strip() for t in form.tags if t and t.strip()))
    if any(len(t) > 100 for t in form.tags):
        refuse("tags", "tags", "each tag must be at most 100 characters")
    if groups is not None:
        dynamic = [g.name for g in groups if g.kind != SegmentKind.STATIC]
        if dynamic:
            refuse("groups", "groups", f"contacts join static segments only: {', '.join(dynamic)}")
    if problems:
        raise SignupFormError(problems)


_FIELDS = (
    "name",
    "key",
    "fields",
    "consent_enabled",
    "consent_text",
    "tags",
    "double_optin",
    "thank_you_message",
    "redirect_url",
    "language",
    "accent_color",
    "button_text",
    "enabled",
)


@transaction.atomic
def signup_form_create(*, groups: list[Segment] | None = None, **values: Any) -> SignupForm:
    form = SignupForm(**{k: v for k, v in values.items() if k in _FIELDS})
    signup_form_check(form, groups)
    form.save()
    if groups:
        form.groups.set(groups)
    return form


@transaction.atomic
def signup_form_update(
    *, form: SignupForm, groups: list[Segment] | None = None, **changes: Any
) -> SignupForm:
    form = SignupForm.objects.select_for_update().get(pk=form.pk)
    for name, value in changes.items():
        if name in _FIELDS:
            setattr(form, name, value)
    signup_form_check(form, groups)
    form.save()
    if groups is not None:
        form.groups.set(groups)
    return form


def signup_form_delete(*, form: SignupForm) -> None:
    form.delete()


# --- submissions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    contact: Contact
    created: bool


def _contact_data(form: SignupForm, values: dict[str, Any]) -> dict[str, Any]:
    """The eSputnik v1 Contact object the subscribe rule reads, from the form's answers."""
    channels = [{"type": "email", "value": values["email"]}]
    if values.get("phone"):
        channels.append({"type": "sms", "value": values["phone"]})
    data: dict[str, Any] = {"channels": channels}
    for key, column in (("first_name", "firstName"), ("last_name", "lastName")):
        if values.get(key):
            data[column] = values[key]
    custom = [
        {"id": int(item["key"].removeprefix(CUSTOM_PREFIX)), "value": values.get(item["key"])}
        for item in form.fields
        if item["key"].startswith(CUSTOM_PREFIX) and values.get(item["key"]) not in (None, "")
    ]
    if custom:
        data["fields"] = custom
    return data


@transaction.atomic
def signup_submit(
    *,
    form: SignupForm,
    values: dict[str, Any],
    consent_text: str = "",
    ip: str | None = None,
    user_agent: str = "",
) -> Submitted:
    """Subscribe the person who filled `form` and record what they consented to.

    `values` are the answers by field key (custom fields as `field:<id>`), already typed;
    `consent_text` is the text they ticked ('' when the form asks for no consent). Raises
    the subscribe rule's errors (contacts.errors.ContactError, SubscribeRepeated)."""
    contact, created = contact_subscribe(
        data=_contact_data(form, values),
        groups=[group.name for group in form.groups.all()],
        form_type=form.key,
    )
    if form.tags:
        merged = list(dict.fromkeys([*contact.tags, *form.tags]))
        if merged != contact.tags:
            contact.tags = merged
            # save(): the audit log records the change; the row is locked by the subscribe.
            contact.save(update_fields=["tags", "updated_at"])
            contacts_mark_changed(contact_ids=[contact.pk])
    if not form.double_optin and not contact.confirmed:
        contact = contact_confirm(contact_id=contact.pk)
    now = timezone.now()
    SignupSubmission.objects.create(
        form=form,
        contact=contact,
        created_contact=created,
        consent_text=consent_text,
        consented_at=now if consent_text else None,
        ip=ip or None,
        user_agent=user_agent[:500],
    )
    signup_count(form=form, submissions=1, **{"new_contacts" if created else "updated_contacts": 1})
    return Submitted(contact=contact, created=created)


# --- counters and the rate limit -------------------------------------------------------------


def signup_count(*, form: SignupForm, **bumps: int) -> None:
    """Add to today's counters of `form` (views=1, spam=1, …) in one statement."""
    columns = sorted(bumps)
    if not columns or not set(columns) <= COUNTERS:
        raise ValueError(f"unknown counters: {columns}")
    table = SignupDailyStat._meta.db_table
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns)
    zero = [c for c in sorted(COUNTERS) if c not in bumps]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} (form_id, day, {names}{"".join(", " + c for c in zero)})
                VALUES (%s, %s{", %s" * len(columns)}{", 0" * len(zero)})
                ON CONFLICT (form_id, day) DO UPDATE SET {updates}""",
            [form.pk, timezone.localdate(), *(bumps[c] for c in columns)],
        )


def signup_rate_allow(*, form: SignupForm, ip: str, now: datetime | None = None) -> bool:
    """Count an attempt from `ip`; False once it is past the limit of its window."""
    limit = settings.HERALD_SIGNUP_RATE_LIMIT
    window = settings.HERALD_SIGNUP_RATE_WINDOW_SECONDS
    if limit <= 0 or not ip:
        return True
    now = now or timezone.now()
    start = datetime.fromtimestamp(now.timestamp() // window * window, tz=now.tzinfo)
    table = SignupRateWindow._meta.db_table
    with connection.cursor() as cursor:
        # One statement: two processes counting the same window cannot both read "9 of 10".
        cursor.execute(
            f"""INSERT INTO {table} (form_id, ip, window_start, hits) VALUES (%s, %s, %s, 1)
                ON CONFLICT (form_id, ip, window_start)
                DO UPDATE SET hits = {table}.hits + 1
                RETURNING hits, (xmax = 0)""",
            [form.pk, ip, start],
        )
        hits, inserted = cursor.fetchone()
        if inserted:
            # A new window: sweep the ones no check reads any more (the index keeps it cheap).
            cursor.execute(
                f"DELETE FROM {table} WHERE window_start < %s",
                [start - timedelta(seconds=window)],
            )
    return hits <= limit


# --- statistics ------------------------------------------------------------------------------


@dataclass
class DayStats:
    day: date
    views: int = 0
    submissions: int = 0
    new_contacts: int = 0
    updated_contacts: int = 0
    confirmed: int = 0
    spam: int = 0

    @property
    def conversion(self) -> float | None:
        """Submissions per view, in per cent; None before the first view."""
        return round(100 * self.submissions / self.views, 1) if self.views else None


@dataclass
class FormStats:
    days: list[DayStats]
    totals: DayStats


def signup_form_stats(*, form: SignupForm, days: int = STATS_DAYS) -> FormStats:
    """The form's counters per day for the last `days` days (today included), newest last,
    and over all time. `confirmed`: contacts this form created who confirmed since."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    rows = {row.day: row for row in SignupDailyStat.objects.filter(form=form, day__gte=first)}
    confirmed = dict(
        SignupSubmission.objects.filter(
            form=form, created_at__date__gte=first, created_contact=True, contact__confirmed=True
        )
        .annotate(day=TruncDate("created_at"))
        .values_list("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = rows.get(day)
        stats = DayStats(day=day, confirmed=confirmed.get(day, 0))
        if row is not None:
            for counter in COUNTERS:
                setattr(stats, counter, getattr(row, counter))
        series.append(stats)
    sums = SignupDailyStat.objects.filter(form=form).aggregate(
        **{counter: Sum(counter) for counter in COUNTERS}
    )
    totals = DayStats(day=today, **{k: v or 0 for k, v in sums.items()})
    totals.confirmed = SignupSubmission.objects.filter(
        Q(form=form, created_contact=True, contact__confirmed=True)
    ).count()
    return FormStats(days=series, totals=totals)
