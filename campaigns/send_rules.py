"""When a marketing message may go: recipient-local send time, allowed sending windows
(quiet hours) and frequency caps — their input rules, their settings and the SQL that plans
them per contact.

Decisions:
- Times are wall-clock times in each recipient's time zone (Contact.time_zone); a contact
  without one, or with a name PostgreSQL does not know, uses the organisation's. Names are
  checked against PostgreSQL's own list (read once per process: pg_timezone_names costs
  ~30 ms a read), so an unknown one never aborts a statement.
- Local send time "10:00" is each contact's next 10:00 at or after the launch: nobody gets
  it at another hour, and a run spreads over at most a day (zones span 26 hours).
- A window {"from": "09:00", "to": "20:00", "days": [1..5]} is open from `from` (inclusive)
  to `to` (exclusive) on the ISO weekdays listed (1 = Monday), in the recipient's zone. A
  window with `from` after `to` runs over midnight (22:00 to 06:00); its day is the day it
  opens. `from` equal to `to`, or no day, is a window that never opens: refused.
- A message due outside its window waits for the window's next opening, found in SQL among
  the next eight local days (DST-safe: the opening's wall-clock time is converted with the
  zone's rules of that day).
- Frequency caps count a contact's marketing messages (campaign runs and workflow sends)
  sent on the channel in the last N days; see campaigns.delivery.rules.
"""

# Values in the SQL below are checked (times, weekdays, zone names) before they become
# literals; see SendWindow.clean, ZONE_RE and pg_time_zones.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import connection, transaction

from campaigns.models import FrequencyCap
from config.core.errors import FieldError
from config.core.models import Organisation
from contacts.models import ChannelType

logger = logging.getLogger(__name__)

TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
# A zone name as IANA spells them; anything else is never put into SQL.
ZONE_RE = re.compile(r"^[A-Za-z0-9_+\-/]{1,64}$")
ALL_DAYS = (1, 2, 3, 4, 5, 6, 7)
MAX_CAP = 1000
MAX_PERIOD_DAYS = 365
# How a skip reason names a channel's messages.
CHANNEL_NOUNS: dict[str, str] = {
    ChannelType.EMAIL.value: "emails",
    ChannelType.SMS.value: "SMS messages",
}


# --- input ---------------------------------------------------------------------------------


def _time(value: Any, field: str) -> str:
    if not isinstance(value, str) or not TIME_RE.match(value.strip()):
        raise FieldError(field, f"must be a time of day HH:MM (24-hour), not {value!r}")
    return value.strip()


@dataclass(frozen=True)
class SendWindow:
    """An allowed sending window, checked. `start`/`end` are "HH:MM"."""

    start: str
    end: str
    days: tuple[int, ...] = ALL_DAYS

    @classmethod
    def clean(cls, value: Any, *, field: str = "sendWindow") -> SendWindow | None:
        """A window from its API shape ({"from", "to", "days"}); None/{} means no window.
        Raises FieldError naming `field.from`, `field.to` or `field.days`."""
        if value in (None, {}):
            return None
        if not isinstance(value, dict):
            raise FieldError(field, 'must be {"from": "09:00", "to": "20:00", "days": [1, 2]}')
        start = _time(value.get("from"), f"{field}.from")
        end = _time(value.get("to"), f"{field}.to")
        if start == end:
            raise FieldError(f"{field}.to", "must differ from `from`: this window never opens")
        raw_days = value.get("days")
        if raw_days is None:
            days = ALL_DAYS
        else:
            if not isinstance(raw_days, list) or not raw_days:
                raise FieldError(
                    f"{field}.days",
                    "must list at least one ISO weekday (1 = Monday … 7 = Sunday): "
                    "with none the window never opens",
                )
            for day in raw_days:
                if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7:
                    raise FieldError(
                        f"{field}.days", f"{day!r} is not an ISO weekday (1 = Monday … 7 = Sunday)"
                    )
            days = tuple(sorted(set(raw_days)))
        return cls(start=start, end=end, days=days)

    @classmethod
    def of(cls, stored: dict | None) -> SendWindow | None:
        """A window as stored on a campaign, request or workflow step (already checked)."""
        if not stored:
            return None
        try:
            return cls.clean(stored, field="window")
        except FieldError as exc:
            # Every way in checks windows; one written to the database by other means must
            # not stop the sender that reads it.
            logger.error("ignoring a stored sending window %r: %s", stored, exc)
            return None

    def as_json(self) -> dict:
        return {"from": self.start, "to": self.end, "days": list(self.days)}

    def describe(self) -> str:
        names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        days = "" if self.days == ALL_DAYS else " on " + ", ".join(names[d - 1] for d in self.days)
        return f"{self.start} to {self.end}{days}"

    # -- SQL (every value is checked above, so it may be a literal) --

    def _inside(self, local: str) -> str:
        """Whether the local timestamp expression `local` lies in the window."""
        days = f"ARRAY[{','.join(str(d) for d in self.days)}]"
        dow = f"extract(isodow FROM {local})::int"
        start, end = f"'{self.start}'::time", f"'{self.end}'::time"
        if self.start < self.end:
            return f"({local})::time >= {start} AND ({local})::time < {end} AND {dow} = ANY({days})"
        before = f"extract(isodow FROM ({local}) - interval '1 day')::int"
        return (
            f"((({local})::time >= {start} AND {dow} = ANY({days})) "
            f"OR (({local})::time < {end} AND {before} = ANY({days})))"
        )

    def opening_sql(self, at: str, zone: str) -> str:
        """SQL for the first instant at or after `at` (a timestamptz expression) at which the
        window is open in time zone `zone` (a text expression)."""
        local = f"(({at}) AT TIME ZONE {zone})"
        days = f"ARRAY[{','.join(str(d) for d in self.days)}]"
        start = f"'{self.start}'::time"
        return f"""(CASE WHEN {self._inside(local)} THEN ({at}) ELSE (
                SELECT min((o.day::date + {start}) AT TIME ZONE {zone})
                  FROM generate_series(({local})::date, ({local})::date + 7,
                                       interval '1 day') AS o(day)
                 WHERE extract(isodow FROM o.day)::int = ANY({days})
                   AND o.day::date + {start} > {local}) END)"""


def local_time_clean(value: Any, *, field: str = "sendTime") -> str | None:
    """The campaign body's `sendTime` ({"localTime": "10:00"}); None/{} clears it."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        raise FieldError(field, 'must be {"localTime": "10:00"}')
    return _time(value.get("localTime"), f"{field}.localTime")


# --- time zones ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def pg_time_zones() -> tuple[str, ...]:
    """PostgreSQL's time zone names (they only change with a server upgrade)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_timezone_names")
        return tuple(sorted(row[0] for row in cursor.fetchall()))


def organisation_zone() -> str:
    """The organisation's time zone as a SQL-safe literal PostgreSQL knows (else UTC)."""
    zone = Organisation.load().time_zone or "UTC"
    if not ZONE_RE.match(zone) or zone not in pg_time_zones():
        return "UTC"
    return zone


def zone_join(contact: str = "c", alias: str = "tz") -> tuple[str, str, list]:
    """(LEFT JOIN clause, zone expression, join parameters): each contact's zone when
    PostgreSQL knows it, else the organisation's. A hash join against the list of names, so
    a million contacts cost one pass."""
    join = f"LEFT JOIN unnest(%s::text[]) AS {alias}(name) ON {alias}.name = {contact}.time_zone"
    return join, f"COALESCE({alias}.name, '{organisation_zone()}')", [list(pg_time_zones())]


def local_time_sql(local_time: str | dt.time, zone: str, *, at: str = "now()") -> str:
    """SQL for each contact's next `local_time` (HH:MM) at or after `at` in `zone`."""
    text = local_time.strftime("%H:%M") if isinstance(local_time, dt.time) else local_time
    if not TIME_RE.match(text):
        raise ValueError(f"not a time of day: {text!r}")
    local = f"(({at}) AT TIME ZONE {zone})"
    today = f"((({local})::date + '{text}'::time) AT TIME ZONE {zone})"
    tomorrow = f"((({local})::date + 1 + '{text}'::time) AT TIME ZONE {zone})"
    return f"(CASE WHEN {today} >= ({at}) THEN {today} ELSE {tomorrow} END)"


def local_time_join(
    local_time: str | dt.time, contact: str = "c", alias: str = "lt"
) -> tuple[str, str, list]:
    """(LEFT JOIN clause, planned-time expression, join parameters): each contact's next
    `local_time` after now, in its zone or else the organisation's.

    Computed once per zone PostgreSQL knows (~1,200) and hash-joined by name, not once per
    contact: converting wall-clock times between zones is what a million rows would pay
    for. The organisation's time is one InitPlan (a scalar subquery, evaluated once)."""
    per_zone = local_time_sql(local_time, f"{alias}_z.name")
    join = (
        f"LEFT JOIN (SELECT {alias}_z.name, {per_zone} AS at "
        f"FROM unnest(%s::text[]) AS {alias}_z(name)) {alias} ON {alias}.name = {contact}.time_zone"
    )
    fallback = local_time_sql(local_time, f"'{organisation_zone()}'")
    return join, f"COALESCE({alias}.at, (SELECT {fallback}))", [list(pg_time_zones())]


def window_opening(window: SendWindow, *, zone: str, at: dt.datetime) -> dt.datetime:
    """The window's first open instant at or after `at` in `zone` (for pages and checks)."""
    safe = zone if ZONE_RE.match(zone) and zone in pg_time_zones() else organisation_zone()
    sql = "SELECT " + window.opening_sql("%(at)s::timestamptz", f"'{safe}'")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"at": at})
        return cursor.fetchone()[0]


# --- frequency caps ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cap:
    channel: str
    limit: int
    period_days: int

    def as_json(self) -> dict:
        return {"channel": self.channel, "limit": self.limit, "periodDays": self.period_days}

    def reason(self) -> str:
        noun = CHANNEL_NOUNS.get(self.channel, f"{self.channel} messages")
        period = "1 day" if self.period_days == 1 else f"{self.period_days} days"
        return f"frequency cap: {self.limit} {noun} in {period}"


def _positive(value: Any, field: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(field, f"must be a whole number, not {value!r}")
    if not 1 <= value <= maximum:
        raise FieldError(field, f"must be between 1 and {maximum}, not {value}")
    return value


def caps_clean(value: Any) -> list[Cap]:
    """The caps list of PUT /api/herald/settings/frequency-caps (and the settings page):
    [{"channel": "email", "limit": 3, "periodDays": 7}], one entry per channel."""
    if not isinstance(value, list):
        raise FieldError("caps", 'must be a list of {"channel", "limit", "periodDays"}')
    caps: list[Cap] = []
    seen: set[str] = set()
    for position, raw in enumerate(value):
        prefix = f"{position}"
        if not isinstance(raw, dict):
            raise FieldError(prefix, 'must be {"channel": "email", "limit": 3, "periodDays": 7}')
        channel = raw.get("channel")
        if channel not in ChannelType.values:
            raise FieldError(
                f"{prefix}.channel",
                f"unknown channel {channel!r}; one of {', '.join(ChannelType.values)}",
            )
        if channel in seen:
            raise FieldError(f"{prefix}.channel", f"{channel} is listed twice")
        seen.add(channel)
        limit = _positive(raw.get("limit"), f"{prefix}.limit", MAX_CAP)
        period = _positive(raw.get("periodDays"), f"{prefix}.periodDays", MAX_PERIOD_DAYS)
        caps.append(Cap(channel=channel, limit=limit, period_days=period))
    return caps


def frequency_caps() -> list[Cap]:
    return [
        Cap(channel=cap.channel, limit=cap.limit, period_days=cap.period_days)
        for cap in FrequencyCap.objects.order_by("channel")
    ]


def frequency_cap_for(channel: str) -> Cap | None:
    cap = FrequencyCap.objects.filter(channel=channel).first()
    return Cap(cap.channel, cap.limit, cap.period_days) if cap else None


@transaction.atomic
def frequency_caps_replace(*, caps: list[Cap]) -> list[Cap]:
    """Make `caps` the organisation's frequency caps: channels not listed have none."""
    FrequencyCap.objects.exclude(channel__in=[cap.channel for cap in caps]).delete()
    for cap in caps:
        FrequencyCap.objects.update_or_create(
            channel=cap.channel, defaults={"limit": cap.limit, "period_days": cap.period_days}
        )
    return frequency_caps()
