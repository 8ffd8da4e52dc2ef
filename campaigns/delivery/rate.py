"""The adaptive send rate of each provider, shared by every worker through PostgreSQL.

A provider's key is its integration's label ("smtp#3"; ceiling: the integration's
`rate_limit`) or the environment's transport of a channel ("env:email", "env:sms"; ceiling:
HERALD_RATE_LIMIT_EMAIL / HERALD_RATE_LIMIT_SMS). Its campaigns.models.ProviderRate row is a
token bucket refilled at `rate` messages a second (0 = unlimited):

- Before a chunk a sender takes a token per message (`rate_take`: one INSERT … ON CONFLICT
  DO UPDATE … RETURNING, so the row is locked for one statement) and waits out the deficit.
  Tokens may fall below zero: takers queue up in the order they came, each waiting its turn,
  so all workers together keep to the rate. A full bucket holds a second's worth (at least
  one chunk), so an idle provider's first chunk goes at once.
- A chunk with a throttling answer (Outcome.throttled: SMTP 421/454, HTTP 429, SES
  Throttling) cuts the rate (`rate_throttled`) to CUT of the lower of the current rate and
  the throughput the sender saw, never below FLOOR. Throttling within CUT_HOLD of a cut only
  counts: the workers sending at that moment all hear it, and one cut answers them all.
- Without throttling the rate grows back by GROWTH every GROWTH_EVERY seconds (smoothly) up
  to the ceiling. A provider with no configured limit takes the throughput at which it
  throttled as its ceiling and is unlimited again once it grows back there.

Cost: a provider that is unlimited and never throttled has no limited row, and then costs no
statement per chunk: each process looks at the row at most every RECHECK_EVERY seconds (to
notice another worker's cut). A limited provider costs one statement per chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.delivery.providers import integration_for, provider_label
from campaigns.models import ProviderRate
from config.core.models import Integration

# The rate after a throttling answer: this share of what was being sent.
CUT = 0.5
# Never slower than this many messages a second (a throttled provider still gets mail).
FLOOR = 0.5
# Without a configured limit or an observed throughput, a throttled provider's rate is cut
# from this many messages a second.
START_RATE = 20.0
# Throttling this many seconds after a cut does not cut again: it answers what was sent
# before the cut took effect.
CUT_HOLD = 2.0
# The rate grows back by this factor every GROWTH_EVERY seconds without a cut.
GROWTH = 1.25
GROWTH_EVERY = 30.0
# A full bucket: this many seconds of the rate (and at least the chunk being taken).
BURST_SECONDS = 1.0
# An unlimited provider's row is looked at (to notice a cut made by another worker) at most
# this often per process.
RECHECK_EVERY = 5.0
# A pacer waiting for its turn looks at `stopped()` (a paused run) this often.
PACE_STEP = 0.5
# Growth exponents are capped (a row untouched for a month must not overflow a double).
_MAX_GROWTH_STEPS = 100.0

_TABLE = ProviderRate._meta.db_table


# --- keys and ceilings ---------------------------------------------------------------------


def rate_key(channel: str, integration: Integration | None) -> str:
    """The key of the provider a message on `channel` goes through."""
    return provider_label(integration) if integration is not None else f"env:{channel}"


def rate_ceiling_env(channel: str) -> float:
    """The configured limit of the environment's transport of a channel (0 = none)."""
    name = {"email": "HERALD_RATE_LIMIT_EMAIL", "sms": "HERALD_RATE_LIMIT_SMS"}.get(channel, "")
    return float(getattr(settings, name, 0) or 0) if name else 0.0


def rate_provider(channel: str, integration: Integration | None) -> tuple[str, float]:
    """(key, configured ceiling) of the provider a message on `channel` goes through."""
    if integration is not None:
        return rate_key(channel, integration), float(integration.rate_limit or 0)
    return rate_key(channel, None), rate_ceiling_env(channel)


def rate_provider_for(channel: str, integration_id: int | None) -> tuple[str, float]:
    """rate_provider of the integration a send naming `integration_id` goes through."""
    return rate_provider(channel, integration_for(channel, integration_id))


def rate_ceiling(key: str) -> float:
    """The configured limit behind a key (0 = none, also for an integration since deleted)."""
    if key.startswith("env:"):
        return rate_ceiling_env(key.removeprefix("env:"))
    _, _, pk = key.rpartition("#")
    if not pk.isdigit():
        return 0.0
    limit = Integration.objects.filter(pk=int(pk)).values_list("rate_limit", flat=True).first()
    return float(limit or 0)


# --- the shared bucket ---------------------------------------------------------------------

# The row's rate as of EXCLUDED.refilled_at (the statement's clock): grown since the later of
# the last take and the last cut, capped by the configured ceiling %(ceiling)s; with none, 0
# (unlimited) once it is back at the level it throttled at.
_GROWN = f"""(p.rate * power({GROWTH}, LEAST({_MAX_GROWTH_STEPS}, GREATEST(0, EXTRACT(EPOCH FROM
    EXCLUDED.refilled_at - COALESCE(GREATEST(p.refilled_at, p.throttled_at),
                                    EXCLUDED.refilled_at))) / {GROWTH_EVERY})))"""
_RATE = f"""(CASE WHEN %(ceiling)s > 0 THEN
                  CASE WHEN p.rate <= 0 THEN %(ceiling)s ELSE LEAST(%(ceiling)s, {_GROWN}) END
             WHEN p.rate <= 0 OR {_GROWN} >= p.ceiling THEN 0
             ELSE {_GROWN} END)"""
_REFILL = """GREATEST(0, EXTRACT(EPOCH FROM
    EXCLUDED.refilled_at - COALESCE(p.refilled_at, EXCLUDED.refilled_at)))"""

_TAKE = f"""
INSERT INTO {_TABLE} AS p
       (key, rate, ceiling, tokens, refilled_at, throttled_at, throttles, updated_at)
VALUES (%(key)s, %(ceiling)s, %(ceiling)s, %(fresh)s, clock_timestamp(), NULL, 0,
        clock_timestamp())
ON CONFLICT (key) DO UPDATE SET
    rate = {_RATE},
    ceiling = CASE WHEN %(ceiling)s > 0 THEN %(ceiling)s
                   WHEN {_RATE} <= 0 THEN 0 ELSE p.ceiling END,
    tokens = CASE WHEN {_RATE} <= 0 THEN 0
                  WHEN p.rate <= 0 THEN GREATEST({_RATE} * {BURST_SECONDS}, %(count)s)
                  ELSE LEAST(p.tokens + p.rate * {_REFILL},
                             GREATEST({_RATE} * {BURST_SECONDS}, %(count)s))
             END - CASE WHEN {_RATE} <= 0 THEN 0 ELSE %(count)s END,
    refilled_at = EXCLUDED.refilled_at,
    updated_at = EXCLUDED.updated_at
RETURNING p.tokens, p.rate
"""  # noqa: S608 (constants only)

# The rate being sent at before a throttling answer: the current rate (the ceiling when the
# row was unlimited; with neither, %(start)s: what the sender saw, else START_RATE), or what
# the sender saw if lower (LEAST skips a NULL %(observed)s).
_BASE = """LEAST(CASE WHEN p.rate > 0 AND %(ceiling)s > 0 THEN LEAST(p.rate, %(ceiling)s)
                      WHEN p.rate > 0 THEN p.rate
                      WHEN %(ceiling)s > 0 THEN %(ceiling)s
                      ELSE %(start)s END, %(observed)s)"""
_HOLD = f"""(p.rate > 0 AND p.throttled_at IS NOT NULL
             AND p.throttled_at > EXCLUDED.throttled_at - interval '{CUT_HOLD} seconds')"""

_THROTTLE = f"""
INSERT INTO {_TABLE} AS p
       (key, rate, ceiling, tokens, refilled_at, throttled_at, throttles, updated_at)
VALUES (%(key)s, %(cut)s, %(level)s, 0, clock_timestamp(), clock_timestamp(), 1,
        clock_timestamp())
ON CONFLICT (key) DO UPDATE SET
    throttles = p.throttles + 1,
    rate = CASE WHEN {_HOLD} THEN p.rate ELSE GREATEST({FLOOR}, {CUT} * {_BASE}) END,
    ceiling = CASE WHEN %(ceiling)s > 0 THEN %(ceiling)s
                   WHEN p.rate > 0 AND p.ceiling > 0 THEN p.ceiling
                   ELSE {_BASE} END,
    tokens = CASE WHEN {_HOLD} THEN p.tokens ELSE LEAST(p.tokens, 0) END,
    refilled_at = CASE WHEN p.rate > 0 THEN p.refilled_at ELSE EXCLUDED.refilled_at END,
    throttled_at = CASE WHEN {_HOLD} THEN p.throttled_at ELSE EXCLUDED.throttled_at END,
    updated_at = EXCLUDED.updated_at
RETURNING p.rate
"""  # noqa: S608 (constants only)

# key → (monotonic time of the last look, limited?): what this process knows of each row.
_known: dict[str, tuple[float, bool]] = {}


def _remember(key: str, limited: bool) -> None:
    _known[key] = (time.monotonic(), limited)


def rate_limited(key: str) -> bool:
    """Whether the provider's row holds a rate (it was throttled or is limited), as this
    process last saw it; looked up again when older than RECHECK_EVERY."""
    seen = _known.get(key)
    if seen is not None and time.monotonic() - seen[0] < RECHECK_EVERY:
        return seen[1]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT rate FROM {_TABLE} WHERE key = %s", [key])  # noqa: S608
        row = cursor.fetchone()
    limited = bool(row and row[0] > 0)
    _remember(key, limited)
    return limited


def rate_take(key: str, count: int, *, ceiling: float) -> tuple[float, float]:
    """Take `count` tokens from the provider's bucket: (seconds to wait before sending them,
    the rate now; 0 = unlimited, nothing taken and no wait). `ceiling`: the configured
    limit (0 = none)."""
    fresh = max(ceiling * BURST_SECONDS, count) - count if ceiling > 0 else 0.0
    params: dict[str, str | float | None] = {
        "key": key,
        "ceiling": float(ceiling),
        "count": float(count),
        "fresh": fresh,
    }
    with connection.cursor() as cursor:
        cursor.execute(_TAKE, params)
        tokens, rate = cursor.fetchone()
    _remember(key, rate > 0)
    if rate <= 0 or tokens >= 0:
        return 0.0, rate
    return -tokens / rate, rate


def rate_refund(key: str, count: int) -> None:
    """Give back tokens taken for messages that were not sent (the scope stopped)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_TABLE} SET tokens = tokens + %s WHERE key = %s AND rate > 0",  # noqa: S608
            [float(count), key],
        )


def rate_throttled(
    key: str, *, ceiling: float | None = None, observed: float | None = None
) -> float:
    """The provider throttled: cut its rate (see the module docstring); returns the rate
    now. `ceiling`: the configured limit (looked up by key when None); `observed`: the
    messages a second the sender was achieving, when it knows."""
    if ceiling is None:
        ceiling = rate_ceiling(key)
    observed = observed if observed and observed > 0 else None
    start = observed if observed is not None else START_RATE
    # What _BASE computes for a provider without a row yet.
    base = ceiling if ceiling > 0 else start
    if observed is not None:
        base = min(base, observed)
    params: dict[str, str | float | None] = {
        "key": key,
        "ceiling": float(ceiling),
        "observed": observed,
        "start": start,
        "cut": max(FLOOR, CUT * base),
        "level": float(ceiling if ceiling > 0 else base),
    }
    with connection.cursor() as cursor:
        cursor.execute(_THROTTLE, params)
        (rate,) = cursor.fetchone()
    _remember(key, True)
    return rate


def _grown(row: ProviderRate, ceiling: float, now: datetime) -> float | None:
    """What `_RATE` computes, in Python: the row's rate as of `now` (None = unlimited)."""
    if row.rate <= 0:
        return ceiling or None
    since = max((t for t in (row.refilled_at, row.throttled_at) if t is not None), default=now)
    steps = min(_MAX_GROWTH_STEPS, max(0.0, (now - since).total_seconds()) / GROWTH_EVERY)
    grown = row.rate * GROWTH**steps
    if ceiling > 0:
        return min(ceiling, grown)
    return None if grown >= row.ceiling else grown


def rate_current(key: str) -> float | None:
    """The provider's send rate now, in messages a second (None = unlimited): for pages."""
    ceiling = rate_ceiling(key)
    row = ProviderRate.objects.filter(key=key).first()
    if row is None:
        return ceiling or None
    return _grown(row, ceiling, timezone.now())


def rate_estimate(key: str, ceiling: float) -> float | None:
    """rate_current for a sender that knows its ceiling: no statement for a provider this
    process saw unlimited within RECHECK_EVERY."""
    if ceiling <= 0 and not rate_limited(key):
        return None
    row = ProviderRate.objects.filter(key=key).first()
    if row is None:
        return ceiling or None
    return _grown(row, ceiling, timezone.now())


# --- a sender's side -----------------------------------------------------------------------


class RatePacer:
    """One sender task's view of a provider's rate: takes tokens before each chunk, reports
    throttling with the throughput it saw."""

    def __init__(self, key: str, ceiling: float) -> None:
        self.key = key
        self.ceiling = ceiling
        self.sent = 0
        self.started: float | None = None

    def reserve(self, count: int) -> float:
        """Take tokens for `count` messages; the seconds to wait before sending them."""
        if self.started is None:
            self.started = time.monotonic()
        if self.ceiling <= 0 and not rate_limited(self.key):
            return 0.0
        return rate_take(self.key, count, ceiling=self.ceiling)[0]

    def refund(self, count: int) -> None:
        if self.ceiling > 0 or rate_limited(self.key):
            rate_refund(self.key, count)

    def throughput(self) -> float | None:
        """Messages a second this task sent since its first chunk (None: too early to say)."""
        if self.started is None or not self.sent:
            return None
        elapsed = time.monotonic() - self.started
        return self.sent / elapsed if elapsed >= 1.0 else None

    def record(self, accepted: int, throttled: bool) -> None:
        """After a chunk: `accepted` messages went out; `throttled`: some answer asked us to
        slow down."""
        self.sent += accepted
        if throttled:
            rate_throttled(self.key, ceiling=self.ceiling, observed=self.throughput())

    def wait(self, count: int, *, stopped: Callable[[], bool], deadline: float) -> bool:
        """Wait for the provider's rate before sending `count` messages. False, with the
        tokens given back, when `stopped()` turns true meanwhile or the wait would end after
        `deadline` (time.monotonic())."""
        delay = self.reserve(count)
        if delay <= 0:
            return True
        until = time.monotonic() + delay
        if until > deadline:
            self.refund(count)
            return False
        while (left := until - time.monotonic()) > 0:
            if stopped():
                self.refund(count)
                return False
            time.sleep(min(left, PACE_STEP))
        return True
