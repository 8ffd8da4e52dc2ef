"""The adaptive rate per provider: throttling answers are recognised, retried rather than
failed and cut the provider's rate, which grows back when they stop; the budget lives in
PostgreSQL, shared by every worker; an unlimited provider costs no statement per chunk."""

import smtplib
import threading
import time

import pytest
import requests
from anymail.exceptions import AnymailAPIError, AnymailRequestsAPIError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import pipeline
from campaigns.delivery import engine, rate
from campaigns.delivery.policy import error_classify, http_error
from campaigns.delivery.rate import (
    RatePacer,
    rate_current,
    rate_take,
    rate_throttled,
)
from campaigns.models import CampaignRun, Delivery, DeliveryStatus, ProviderRate, RunStatus
from config.core.models import Integration
from contacts.models import ChannelType
from tests.campaigns.test_pipeline import make_campaign, make_run, make_template, send_all
from tests.contacts.factories import ContactFactory
from tests.messages.test_sms_gateway import Gateway
from tests.support.smtp import SMTPSink

THROTTLE_REPLY = "421 4.7.0 Too many messages from your IP, slow down"


@pytest.fixture(autouse=True)
def _fresh_process_view():
    """What this process remembers of each provider's row must not leak between tests."""
    rate._known.clear()
    yield
    rate._known.clear()


class ThrottlingSink(SMTPSink):
    """Answers MAIL FROM of the first `throttle` messages with a 421 (as Gmail or Outlook do
    to a sender over its rate), then accepts; notes when each message arrived."""

    def __init__(self, throttle: int = 0) -> None:
        super().__init__()
        self.throttle = throttle
        self.arrivals: list[float] = []

    def answer(self, at: str, address: str) -> str | None:
        if at == "MAIL" and self.throttle > 0:
            self.throttle -= 1
            return THROTTLE_REPLY
        if at == "DATA":
            self.arrivals.append(time.monotonic())
        return super().answer(at, address)


def smtp_integration(name: str, port: int, rate_limit: float = 0) -> Integration:
    return Integration.objects.create(
        kind="smtp",
        name=name,
        channels=["email"],
        settings={"host": "127.0.0.1", "port": port, "security": "none", "timeout": 5},
        rate_limit=rate_limit,
    )


def materialised_run(tag: str, count: int, integration: Integration | None = None):
    for _ in range(count):
        ContactFactory(tags=[tag])
    run = make_run(
        make_campaign(
            name=f"Sale {tag}", integration=integration, audience_filter={"tags": {"$in": [tag]}}
        )
    )
    pipeline.run_materialise(run=run)
    return run


def backdate(key: str, seconds: float) -> None:
    """Move the row's clock back, as if `seconds` had passed without a take or a cut."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_providerrate SET refilled_at = refilled_at - %s * interval '1 s',"
            " throttled_at = throttled_at - %s * interval '1 s' WHERE key = %s",
            [seconds, seconds, key],
        )


# --- recognising throttling ----------------------------------------------------------------


def esp_answer(status: int, body: bytes) -> AnymailRequestsAPIError:
    """What Anymail raises for an ESP's HTTP error answer."""
    response = requests.Response()
    response.status_code, response.reason, response._content = status, "", body
    return AnymailRequestsAPIError("ESP API response", response=response)


def ses_throttling() -> AnymailAPIError:
    # What Anymail raises for botocore's ClientError: the parsed error as `response`.
    return AnymailAPIError(
        "An error occurred (Throttling) when calling the SendRawEmail operation: "
        "Maximum sending rate exceeded.",
        response={"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}},
    )


@pytest.mark.parametrize(
    ("error", "throttled", "permanent"),
    [
        (smtplib.SMTPSenderRefused(421, b"4.7.0 Try again later", "a@b.c"), True, False),
        (smtplib.SMTPDataError(454, b"4.7.0 Temporary authentication failure"), True, False),
        (smtplib.SMTPRecipientsRefused({"x@y.z": (421, b"4.7.28 unusual rate")}), True, False),
        (smtplib.SMTPDataError(451, b"4.7.1 Rate limit exceeded, slow down"), True, False),
        (smtplib.SMTPRecipientsRefused({"x@y.z": (451, b"4.7.1 Greylisted")}), False, False),
        (smtplib.SMTPRecipientsRefused({"x@y.z": (550, b"5.1.1 No such user")}), False, True),
        (http_error(429, "gateway answered 429: too many requests"), True, False),
        (http_error(503, "gateway answered 503"), False, False),
        (esp_answer(429, b'{"errors": [{"message": "too many requests"}]}'), True, False),
        (ses_throttling(), True, False),
        (
            AnymailAPIError(
                "TooManyRequestsException",
                response={
                    "Error": {"Code": "TooManyRequestsException"},
                    "ResponseMetadata": {"HTTPStatusCode": 429},
                },
            ),
            True,
            False,
        ),
        (esp_answer(422, b'{"ErrorCode": 300, "Message": "Invalid email"}'), False, True),
        (esp_answer(502, b"Bad gateway"), False, False),
    ],
)
def test_throttling_answers_are_transient_and_throttled(error, throttled, permanent):
    classified = error_classify(error)
    assert (classified.throttled, classified.permanent) == (throttled, permanent)


# --- throttling end to end -----------------------------------------------------------------


@pytest.mark.django_db
def test_421_answers_are_retried_and_cut_the_integrations_rate_which_later_grows_back(settings):
    settings.HERALD_RETRY_BASE = 0  # retries due at once: the test needs no clock
    with ThrottlingSink(throttle=2) as server:
        relay = smtp_integration("Bulk relay", server.port)
        run = materialised_run("vip", 5, relay)

        send_all(run)

    # Retried, not failed: everyone got the message once, on the third attempt.
    deliveries = list(Delivery.objects.filter(run=run))
    assert {d.status for d in deliveries} == {DeliveryStatus.SENT}
    assert {d.attempts for d in deliveries} == {3}
    assert sorted(m["To"] for m in server.messages) == sorted(d.locator for d in deliveries)
    for delivery in deliveries:
        assert delivery.events.filter(detail__contains="SMTP 421: 4.7.0 Too many").exists()

    # The integration had no limit: its rate was cut from the default start, once for the
    # two throttled chunks (the second came within the hold after the cut).
    key = f"smtp#{relay.pk}"
    row = ProviderRate.objects.get(key=key)
    assert row.throttles == 2
    assert row.rate == pytest.approx(rate.START_RATE * rate.CUT, rel=0.05)  # grown a little
    assert row.ceiling == rate.START_RATE
    assert rate_current(key) == pytest.approx(row.rate, rel=0.05)

    # Thirty seconds without throttling: a quarter faster.
    backdate(key, 30)
    assert rate_current(key) == pytest.approx(row.rate * rate.GROWTH, rel=0.05)
    # Ten minutes: back where it throttled, so unlimited again; the next chunk says so.
    backdate(key, 600)
    assert rate_current(key) is None
    assert RatePacer(key, 0).reserve(25) == 0.0
    assert ProviderRate.objects.get(key=key).rate == 0


@pytest.mark.django_db
def test_a_limited_providers_rate_is_halved_once_per_burst_of_throttling_and_regrows_to_its_limit(
    settings,
):
    settings.HERALD_RATE_LIMIT_EMAIL = 40
    key = "env:email"

    assert rate_take(key, 10, ceiling=40) == (0.0, 40.0)
    assert rate_throttled(key) == 20.0  # the ceiling is looked up by key
    assert rate_throttled(key, ceiling=40) == 20.0  # within CUT_HOLD: counted, not cut
    assert ProviderRate.objects.get(key=key).throttles == 2
    backdate(key, rate.CUT_HOLD + 1)
    assert rate_throttled(key, ceiling=40) == pytest.approx(10.0, rel=0.05)

    backdate(key, 30)
    _, now = rate_take(key, 1, ceiling=40)
    assert now == pytest.approx(12.5, rel=0.05)
    backdate(key, 600)
    # Back at its limit, and limited still (it has one).
    assert rate_current(key) == 40.0
    assert rate_take(key, 1, ceiling=40)[1] == 40.0


@pytest.mark.django_db
def test_a_first_cut_starts_from_the_limit_or_the_throughput_seen_whichever_is_lower():
    assert rate_throttled("smtp#999997", ceiling=100) == 50.0
    assert rate_throttled("smtp#999998", ceiling=100, observed=60.0) == 30.0
    assert rate_throttled("smtp#999996", ceiling=0) == rate.START_RATE * rate.CUT
    assert ProviderRate.objects.get(key="smtp#999998").ceiling == 100.0


@pytest.mark.django_db
def test_the_cut_starts_from_the_throughput_seen_and_never_goes_below_the_floor():
    key = "smtp#999999"
    assert rate_throttled(key, ceiling=0, observed=30.0) == 15.0
    assert ProviderRate.objects.get(key=key).ceiling == 30.0  # where it grows back to
    for _ in range(8):
        backdate(key, rate.CUT_HOLD + 1)
        rate_throttled(key, ceiling=0, observed=30.0)
    assert ProviderRate.objects.get(key=key).rate == rate.FLOOR


@pytest.mark.django_db
def test_a_limited_bucket_makes_a_chunk_wait_for_its_tokens():
    key = "env:sms"
    assert rate_take(key, 25, ceiling=10) == (0.0, 10.0)  # a full bucket: the first chunk
    wait, _ = rate_take(key, 20, ceiling=10)
    assert wait == pytest.approx(2.0, abs=0.1)  # 20 tokens at 10/s
    # The next taker queues behind: its wait includes the first one's.
    wait, _ = rate_take(key, 10, ceiling=10)
    assert wait == pytest.approx(3.0, abs=0.1)


# --- cost ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unlimited_provider_that_never_throttled_costs_no_statement_per_chunk(settings):
    settings.HERALD_RATE_LIMIT_EMAIL = 0
    with SMTPSink() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        run = materialised_run("vip", 80, None)  # four chunks

        with CaptureQueriesContext(connection) as queries:
            send_all(run)

    assert len(server.received) == 80
    looks = [q["sql"] for q in queries.captured_queries if "campaigns_providerrate" in q["sql"]]
    # One look at the row per process and RECHECK_EVERY seconds, none per chunk.
    assert len(looks) == 1
    assert looks[0].startswith("SELECT")
    assert not ProviderRate.objects.exists()


@pytest.mark.django_db
def test_a_cut_made_by_another_worker_reaches_an_unlimited_sender_within_the_recheck():
    key = "env:email"
    pacer = RatePacer(key, 0)
    assert pacer.reserve(25) == 0.0
    # Another worker is throttled meanwhile; this process has not looked since.
    rate_throttled(key, ceiling=0, observed=None)
    rate._known[key] = (time.monotonic(), False)
    assert pacer.reserve(25) == 0.0  # still trusting its last look
    rate._known[key] = (time.monotonic() - rate.RECHECK_EVERY - 1, False)
    assert pacer.reserve(25) > 0  # looked again: now it takes tokens, and waits


# --- shared by workers ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_through_one_integration_share_its_rate():
    with ThrottlingSink() as server:
        relay = smtp_integration("Shared relay", server.port, rate_limit=10)
        runs = [materialised_run(tag, 25, relay) for tag in ("north", "south")]
        errors: list[BaseException] = []

        def worker(run) -> None:
            try:
                send_all(run)
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker, args=(run,)) for run in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert not errors
    assert len(server.received) == 50
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    # One bucket of 10/s for both: the first chunk of 25 went at once, the other waited
    # for its 25 tokens (two buckets would have let both go at once).
    assert max(server.arrivals) - min(server.arrivals) >= 2.0
    row = ProviderRate.objects.get(key=f"smtp#{relay.pk}")
    assert (row.rate, row.ceiling, row.throttles) == (10.0, 10.0, 0)


class ThrottlingGateway(Gateway):
    """The local SMS service, answering 429 Too Many Requests to its first `throttle` calls."""

    def __init__(self, throttle: int) -> None:
        self.throttle = throttle
        super().__init__()

    @property
    def status(self) -> int:  # read by the handler once per request
        if self.throttle > 0:
            self.throttle -= 1
            return 429
        return 200

    @status.setter
    def status(self, value: int) -> None:
        pass


@pytest.mark.django_db
def test_an_sms_gateways_429_is_retried_and_cuts_the_sms_transports_rate(settings):
    settings.HERALD_RETRY_BASE = 0
    with ThrottlingGateway(throttle=1) as gateway:
        settings.HERALD_SMS_URL = gateway.url
        for n in range(3):
            ContactFactory(tags=["sms"], phone=f"+38050123450{n}")
        run = make_run(
            make_campaign(
                channels=[ChannelType.SMS],
                template=make_template("Text", ChannelType.SMS),
                audience_filter={"tags": {"$in": ["sms"]}},
            )
        )
        pipeline.run_materialise(run=run)

        send_all(run)

    deliveries = list(Delivery.objects.filter(run=run))
    assert {d.status for d in deliveries} == {DeliveryStatus.SENT}
    assert sorted(d.attempts for d in deliveries) == [1, 1, 2]
    assert len(gateway.requests) == 4
    row = ProviderRate.objects.get(key="env:sms")
    assert row.throttles == 1
    assert 0 < row.rate <= rate.START_RATE * rate.CUT * 1.05


@pytest.mark.django_db(transaction=True)
def test_a_run_paused_while_waiting_for_its_rate_gives_its_rows_and_tokens_back(settings):
    settings.HERALD_RATE_LIMIT_EMAIL = 1  # a slow relay: every chunk after the first waits
    with SMTPSink() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        run = materialised_run("vip", 20, None)
        # 1/s over SENDER_TASKS senders: claims of 7 (about half a minute's share each).

        def pause_soon() -> None:
            time.sleep(1.5)
            CampaignRun.objects.filter(pk=run.pk).update(status=RunStatus.PAUSED)
            connection.close()

        pauser = threading.Thread(target=pause_soon)
        pauser.start()
        began = time.monotonic()
        again = engine.run_send(run_id=run.pk)
        waited = time.monotonic() - began
        pauser.join()

    # The first chunk went at once; the next would have waited 7 s for its tokens.
    assert len(server.received) == 7
    assert again is None
    assert waited < 6
    queued = Delivery.objects.filter(run=run, status=DeliveryStatus.QUEUED)
    assert queued.count() == 13
    assert not queued.filter(claimed_at__isnull=False).exists()
    # The 7 tokens taken for the chunk that never went are back (less than one token of debt,
    # what refilled meanwhile aside).
    assert ProviderRate.objects.get(key="env:email").tokens > -1
