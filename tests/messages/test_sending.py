"""Sending outcomes through a real SMTP server: refusals (4xx retried with the same
Message-ID, 5xx failed), lost connections, DKIM; and the ledger's transition rules."""

import base64
import subprocess
from datetime import timedelta

import dkim
import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from campaigns.delivery import email, engine, policy
from campaigns.delivery.engine import send_request_process
from campaigns.ledger import InvalidTransition, delivery_transition
from campaigns.models import Delivery, DeliveryEvent
from tests.support.api import results_list

pytestmark = pytest.mark.django_db


def send(api, key, template, *addresses):
    answer = api.post(
        f"/api/v1/message/{template.pk}/smartsend",
        key=key,
        body={"recipients": [{"locator": a, "jsonParam": '{"orderId": "9"}'} for a in addresses]},
    ).json()
    return answer["id"], [
        Delivery.objects.get(request_id=r["requestId"]) for r in results_list(answer["results"])
    ]


def make_due(delivery_ids):
    Delivery.objects.filter(pk__in=delivery_ids).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_temporary_refusal_is_retried_later_with_the_same_message_id(
    api, full_key, email_template, mail_to_sink
):
    mail_to_sink.refuse("busy@example.com", "451 4.3.0 Mailbox busy, try later", once=True)
    request_id, [ok, busy] = send(
        api, full_key, email_template, "ok@example.com", "busy@example.com"
    )

    wait = send_request_process(send_request_id=request_id)
    assert wait is not None and 0 < wait <= django_settings.HERALD_RETRY_BASE + 1
    ok.refresh_from_db()
    assert ok.status == "sent"
    busy.refresh_from_db()
    assert busy.status == "queued" and busy.claimed_at is None
    assert "451" in busy.error and busy.attempts == 1
    first_message_id = busy.message_id
    history = DeliveryEvent.objects.get(delivery=busy)
    assert (
        history.status == "queued" and "attempt 1 failed: recipient refused: 451" in history.detail
    )
    assert [m["To"] for m in mail_to_sink.messages] == ["ok@example.com"]

    assert send_request_process(send_request_id=request_id) == pytest.approx(wait, abs=2)
    assert len(mail_to_sink.messages) == 1, "not due yet: nothing sent"

    make_due([busy.pk])
    assert send_request_process(send_request_id=request_id) is None
    busy.refresh_from_db()
    assert busy.status == "sent" and busy.attempts == 2
    assert busy.message_id == first_message_id
    assert mail_to_sink.messages[-1]["Message-ID"] == first_message_id


def test_permanent_refusal_fails_with_the_servers_reason(
    api, full_key, email_template, mail_to_sink
):
    mail_to_sink.refuse("ghost@example.com", "550 5.1.1 No such user here")
    request_id, [ghost] = send(api, full_key, email_template, "ghost@example.com")
    assert send_request_process(send_request_id=request_id) is None
    ghost.refresh_from_db()
    assert ghost.status == "failed" and ghost.failed_at is not None
    assert "550" in ghost.error and "No such user" in ghost.error


def test_transient_failures_give_up_after_max_attempts(
    api, full_key, email_template, mail_to_sink, monkeypatch
):
    monkeypatch.setattr(policy, "MAX_ATTEMPTS", 2)
    mail_to_sink.refuse("full@example.com", "452 4.2.2 Mailbox full")
    request_id, [full] = send(api, full_key, email_template, "full@example.com")
    send_request_process(send_request_id=request_id)
    make_due([full.pk])
    assert send_request_process(send_request_id=request_id) is None
    full.refresh_from_db()
    assert full.status == "failed"
    assert full.error.startswith("gave up after 2 attempts: recipient refused: 452")


def test_unreachable_server_requeues_the_whole_batch(api, full_key, email_template, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 9  # discard port: nothing listens there
    settings.EMAIL_TIMEOUT = 2
    request_id, deliveries = send(api, full_key, email_template, "a@example.com", "b@example.com")
    assert send_request_process(send_request_id=request_id) > 0
    for delivery in deliveries:
        delivery.refresh_from_db()
        assert delivery.status == "queued"
        assert delivery.error.startswith("connection error")


def test_a_claim_held_by_another_worker_is_left_alone_until_its_lease_ends(
    api, full_key, email_template, mail_to_sink
):
    request_id, [delivery] = send(api, full_key, email_template, "held@example.com")
    Delivery.objects.filter(pk=delivery.pk).update(claimed_at=timezone.now())
    wait = send_request_process(send_request_id=request_id)
    assert mail_to_sink.messages == []
    assert wait == pytest.approx(policy.claim_lease().total_seconds(), abs=5)
    Delivery.objects.filter(pk=delivery.pk).update(
        claimed_at=timezone.now() - policy.claim_lease() - timedelta(seconds=1)
    )
    assert send_request_process(send_request_id=request_id) is None
    assert len(mail_to_sink.messages) == 1


@pytest.fixture
def dkim_key(tmp_path):
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_dkim_signature_verifies_against_the_published_key(
    api, full_key, email_template, mail_to_sink, settings, dkim_key
):
    key_path, txt_record = dkim_key
    settings.HERALD_DKIM_PRIVATE_KEY = str(key_path)
    settings.HERALD_DKIM_SELECTOR = "herald"
    settings.HERALD_DKIM_DOMAIN = "shop.example"
    request_id, _ = send(api, full_key, email_template, "signed@example.com")
    send_request_process(send_request_id=request_id)
    [received] = mail_to_sink.received
    assert b"DKIM-Signature:" in received.raw
    assert b"d=shop.example" in received.raw and b"s=herald" in received.raw

    def dns(name, timeout=5):
        assert name == b"herald._domainkey.shop.example."
        return txt_record

    assert dkim.verify(received.raw, dnsfunc=dns)
    tampered = received.raw.replace(b"Order 9", b"Order 1")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_no_dkim_header_without_configuration(api, full_key, email_template, mail_to_sink):
    request_id, _ = send(api, full_key, email_template, "plain@example.com")
    send_request_process(send_request_id=request_id)
    assert b"DKIM-Signature" not in mail_to_sink.received[0].raw


# --- ledger ----------------------------------------------------------------------------------


def test_transitions_follow_the_table_and_write_history(api, full_key, email_template):
    _, [delivery] = send(api, full_key, email_template, "l@example.com")
    with pytest.raises(InvalidTransition, match="from queued to delivered"):
        delivery_transition(delivery=delivery, status="delivered")
    delivery_transition(delivery=delivery, status="sent", detail="accepted")
    assert delivery.status == "sent" and delivery.sent_at is not None
    delivery_transition(delivery=delivery, status="opened")
    delivery_transition(delivery=delivery, status="opened")
    delivery_transition(delivery=delivery, status="clicked", url="https://shop.example/x")
    assert delivery.open_count == 2 and delivery.click_count == 1
    opened_at = delivery.opened_at
    # A late open after a click is not a step back.
    assert delivery_transition(delivery_ids=[delivery.pk], status="opened") == []
    delivery.refresh_from_db()
    assert delivery.status == "clicked" and delivery.opened_at == opened_at
    events = list(delivery.events.values_list("status", "detail", "url"))
    assert events == [
        ("sent", "accepted", ""),
        ("opened", "", ""),
        ("opened", "", ""),
        ("clicked", "", "https://shop.example/x"),
    ]


def test_bulk_transition_moves_only_rows_allowed_to_move(api, full_key, email_template):
    _, deliveries = send(api, full_key, email_template, "x@example.com", "y@example.com")
    first, second = deliveries
    delivery_transition(delivery_ids=[first.pk], status="failed", error="rejected")
    moved = delivery_transition(delivery_ids=[first.pk, second.pk], status="sent")
    assert moved == [second.pk]
    first.refresh_from_db()
    assert first.status == "failed" and first.error == "rejected"
    assert first.events.get().detail == "rejected"


def test_a_row_whose_worker_died_every_time_is_failed_not_retried_for_ever(
    api, full_key, email_template, mail_to_sink
):
    request_id, [poison, _fine] = send(
        api, full_key, email_template, "poison@example.com", "fine@example.com"
    )
    Delivery.objects.filter(pk=poison.pk).update(
        attempts=policy.MAX_ATTEMPTS,
        claimed_at=timezone.now() - policy.claim_lease() - timedelta(seconds=1),
    )
    assert send_request_process(send_request_id=request_id) is None
    poison.refresh_from_db()
    assert poison.status == "failed" and "without an outcome" in poison.error
    assert [m["To"] for m in mail_to_sink.messages] == ["fine@example.com"]


def test_a_bug_building_one_message_fails_only_that_one(
    api, full_key, email_template, mail_to_sink, monkeypatch
):
    real_build = email.email_build

    def build(*, delivery, **kwargs):
        if delivery.locator == "bug@example.com":
            raise KeyError("simulated bug")
        return real_build(delivery=delivery, **kwargs)

    monkeypatch.setattr(email, "email_build", build)
    request_id, [bug, fine] = send(
        api, full_key, email_template, "bug@example.com", "ok@example.com"
    )
    assert send_request_process(send_request_id=request_id) is None
    bug.refresh_from_db()
    fine.refresh_from_db()
    assert bug.status == "failed" and bug.error == "internal error while building the message"
    assert fine.status == "sent"


def test_a_run_stops_when_its_time_budget_is_spent_and_leaves_the_rest_claimable(
    api, full_key, email_template, mail_to_sink, monkeypatch
):
    monkeypatch.setattr(policy, "BATCH_SIZE", 2)
    request_id, _ = send(api, full_key, email_template, *(f"b{n}@example.com" for n in range(5)))
    # A zero budget still sends the first batch, then stops.
    assert send_request_process(send_request_id=request_id, time_budget=timedelta(0)) == 0
    assert len(mail_to_sink.messages) == 2
    left = Delivery.objects.filter(send_request_id=request_id, status="queued")
    assert left.count() == 3
    assert set(left.values_list("attempts", flat=True)) == {0}
    assert not left.filter(claimed_at__isnull=False).exists()
    assert send_request_process(send_request_id=request_id) is None
    assert sorted(m["To"] for m in mail_to_sink.messages) == [f"b{n}@example.com" for n in range(5)]


def test_a_run_that_sent_leaves_rows_claimed_by_a_sibling_to_it(
    api, full_key, email_template, mail_to_sink
):
    request_id, [held, free] = send(api, full_key, email_template, "h@example.com", "f@example.com")
    Delivery.objects.filter(pk=held.pk).update(claimed_at=timezone.now())
    assert send_request_process(send_request_id=request_id) is None
    free.refresh_from_db()
    assert free.status == "sent"
    assert [m["To"] for m in mail_to_sink.messages] == ["f@example.com"]


def test_earliest_retry_wins_over_a_later_claim_expiry(api, full_key, email_template):
    request_id, [held, waiting] = send(
        api, full_key, email_template, "h@example.com", "w@example.com"
    )
    Delivery.objects.filter(pk=held.pk).update(claimed_at=timezone.now())
    Delivery.objects.filter(pk=waiting.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=30)
    )
    assert engine.next_wake(request_id) == pytest.approx(30, abs=3)
    assert engine.next_wake(request_id, include_claims=False) == pytest.approx(30, abs=3)
    Delivery.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now())
    assert engine.next_wake(request_id) == 0
