"""The bounce intake: real-world-shaped DSNs (Postfix, Exim, Google, Microsoft, qmail) and
ARF complaint reports (RFC 5965's example, Yahoo, Microsoft JMRP) bounce or complain the
right delivery and suppress the right address, once however often they arrive; mail to the
List-Unsubscribe address unsubscribes; bounce mailboxes are polled over real IMAP and POP3
sessions (tests/support/fake_mailbox.py) and lose nothing when applying fails; the SMTP
receiver (`manage.py bounce_receiver`, run as a process) takes the same mail and refuses
other recipients."""

import os
import smtplib
import socket
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from campaigns.delivery.providers import ProviderError, provider_of
from campaigns.models import Delivery, DeliveryEvent
from campaigns.tracking import unsubscribe_mailto
from config.core.models import Integration
from config.core.secrets import secrets_seal
from contacts.models import Suppression, Unsubscribed
from integrations import bounces
from integrations.bounces import InboundMail, mail_process, mail_read, mails_process
from integrations.providers.bounce_mailbox import bounce_mailbox_poll
from integrations.tasks import bounce_mailboxes_poll_task
from tests.conftest import wait_for
from tests.support import worker
from tests.support.fake_mailbox import FakeIMAPServer, FakeMailbox, FakePOP3Server

MAIL = Path(__file__).parent / "mail"
USER = "bounces@herald.example"
PASSWORD = "correct horse"

# fixture → (request id of the delivery it is about, the address, ledger status, suppression)
REPORTS = {
    "postfix_user_unknown": (
        "3bd35733d0464e7aa31237612ceac7d7",
        "nobody@example.org",
        "bounced",
        "hard_bounce",
    ),
    "exim_user_unknown": (
        "0fc677add5934ad39e83df47f0672365",
        "old.customer@example.net",
        "bounced",
        "hard_bounce",
    ),
    "gmail_no_such_user": (
        "dec39b19cb4f4ead8f833c5838e925c6",
        "no.such.person@gmail.com",
        "bounced",
        "hard_bounce",
    ),
    "microsoft_recipient_not_found": (
        "f4d87b77302145dcbd095f2c314ab6f9",
        "former.employee@contoso.com",
        "bounced",
        "hard_bounce",
    ),
    "qmail_failure_notice": (
        "0bdaf6f2a5354235ada03a7646afddbb",
        "gone@oldhost.example",
        "bounced",
        "hard_bounce",
    ),
    "arf_rfc5965": (
        "a0be535a9567400b992b0d06aa4e3e32",
        "user@example.com",
        "complained",
        "complaint",
    ),
    "arf_yahoo": (
        "80767a9b8e6f4ab1b5d296e9d31e9fed",
        "reader@yahoo.com",
        "complained",
        "complaint",
    ),
    "arf_microsoft_jmrp": (
        "e4fee130da68442387cfc1d7ca4d02a2",
        "someone@hotmail.com",
        "complained",
        "complaint",
    ),
    "arf_recipient_only": (
        "6be4902f17d0419c93c1869d8034e169",
        "fan@example.net",
        "complained",
        "complaint",
    ),
}
IGNORED = {
    "postfix_delayed": ("925ef77dd52f4b85939570c028bb7833", "slow@example.com"),
    "out_of_office": ("0bdaf6f2a5354235ada03a7646afddbb", "gone@oldhost.example"),
    "arf_not_spam": ("c0d60b62a6064e55847372355d847e34", "happy@example.net"),
}


def raw(name: str) -> bytes:
    """A fixture as it travels: CRLF line ends."""
    return (MAIL / f"{name}.eml").read_bytes().replace(b"\n", b"\r\n")


def sent(request_hex: str, address: str) -> Delivery:
    """A campaign email Herald sent: its Message-ID carries the request id, as the engine's."""
    return Delivery.objects.create(
        request_id=uuid.UUID(request_hex),
        channel="email",
        locator=address,
        status="sent",
        message_id=f"<{request_hex}@herald.example>",
        sent_at=timezone.now(),
    )


def unsubscribe_mail(delivery: Delivery) -> bytes:
    """What a mail client sends to the List-Unsubscribe mailto of a delivery."""
    address = unsubscribe_mailto(delivery.pk).removeprefix("mailto:").partition("?")[0]
    message = EmailMessage()
    message["From"] = delivery.locator
    message["To"] = address
    message["Subject"] = "unsubscribe"
    message["Message-ID"] = f"<unsub-{delivery.pk}@mail.example>"
    message.set_content("Please remove me.")
    return message.as_bytes()


# --- reading and applying reports ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(REPORTS))
def test_a_report_marks_its_delivery_and_suppresses_the_address_once(name):
    request_hex, address, status, reason = REPORTS[name]
    delivery = sent(request_hex, address)
    other = sent(uuid.uuid4().hex, "bystander@example.com")

    first = mail_process(raw(name), source="test mailbox")
    again = mail_process(raw(name), source="test mailbox")

    delivery.refresh_from_db()
    assert delivery.status == status
    assert DeliveryEvent.objects.filter(delivery=delivery, status=status).count() == 1
    suppression = Suppression.objects.get(address=address)
    assert suppression.reason == reason
    assert suppression.source == "test mailbox"
    assert first.applied.changes["suppressed"] == 1
    assert again.applied.total == 0
    other.refresh_from_db()
    assert other.status == "sent"
    assert Suppression.objects.count() == 1


@pytest.mark.django_db
def test_a_hard_bounce_keeps_the_status_code_and_the_servers_words():
    delivery = sent(*REPORTS["postfix_user_unknown"][:2])
    mail_process(raw("postfix_user_unknown"), source="test mailbox")
    delivery.refresh_from_db()
    assert delivery.error.startswith("hard bounce: 5.1.1 550 5.1.1 <nobody@example.org>")
    assert "User unknown in virtual mailbox table" in delivery.error
    assert "5.1.1" in Suppression.objects.get().detail


@pytest.mark.django_db
def test_a_failed_4xx_report_is_a_soft_bounce_that_suppresses_only_at_the_limit(settings):
    settings.HERALD_SOFT_BOUNCE_LIMIT = 2
    first = sent("83420e7b845145bda8a8ea95a958be0f", "full.box@example.com")
    report = mail_process(raw("postfix_mailbox_full"), source="test mailbox")
    first.refresh_from_db()
    assert report.applied.changes["soft_bounced"] == 1
    assert first.status == "bounced"
    assert first.error.startswith("soft bounce: 4.2.2")
    assert not Suppression.objects.exists()

    # The next campaign's message to the same full mailbox bounces too: now it is the limit.
    second = sent(uuid.uuid4().hex, "full.box@example.com")
    next_report = raw("postfix_mailbox_full").replace(
        b"83420e7b845145bda8a8ea95a958be0f", second.request_id.hex.encode()
    )
    next_report = next_report.replace(b"4Rm8Lw2Qs5z9s0Q", b"4Rn1Aa2Bb3z9s0Z")  # its own id
    mail_process(next_report, source="test mailbox")
    suppression = Suppression.objects.get(address="full.box@example.com")
    assert suppression.reason == "soft_bounces"


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(IGNORED))
def test_delay_warnings_auto_replies_and_not_spam_reports_change_nothing(name):
    request_hex, address = IGNORED[name]
    delivery = sent(request_hex, address)
    report = mail_process(raw(name), source="test mailbox")
    assert report.kinds == {"ignored": 1}
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    assert not DeliveryEvent.objects.exists()
    assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_a_report_about_a_message_herald_never_sent_is_unmatched():
    report = mail_process(raw("postfix_user_unknown"), source="test mailbox")
    assert report.kinds == {"dsn": 1}
    assert report.applied.unmatched == 1
    assert not Suppression.objects.exists()


def test_a_dsn_names_its_delivery_by_verp_then_by_the_returned_message_id():
    by_verp = mail_read(raw("postfix_user_unknown")).actions[0]
    assert by_verp.herald_id == "3bd35733d0464e7aa31237612ceac7d7"
    assert by_verp.email == "nobody@example.org"
    # Microsoft's report went to a plain bounce address: its quoted Message-ID names it.
    by_id = mail_read(raw("microsoft_recipient_not_found")).actions[0]
    assert by_id.herald_id == "<f4d87b77302145dcbd095f2c314ab6f9@herald.example>"
    # The envelope recipient of an SMTP session counts as much as a Delivered-To header.
    envelope = b"From: MAILER-DAEMON@x.example\r\n" + raw("microsoft_recipient_not_found")
    hex_id = uuid.uuid4().hex
    read = mail_read(envelope, recipients=[f"bounces+{hex_id}@mail.herald.example"])
    assert read.actions[0].herald_id == hex_id


@pytest.mark.django_db
def test_a_batch_applies_every_kind_of_report_together():
    for request_hex, address, _, _ in REPORTS.values():
        sent(request_hex, address)
    mails = [InboundMail(raw(name)) for name in [*REPORTS, *IGNORED]]
    report = mails_process(mails, source="test mailbox")
    assert report.kinds == {"dsn": 4, "bounce": 1, "complaint": 4, "ignored": 3}
    assert report.applied.changes["bounced"] == 5
    assert report.applied.changes["complained"] == 4
    assert Suppression.objects.count() == len(REPORTS)
    assert set(Suppression.objects.values_list("address", flat=True)) == {
        address for _, address, _, _ in REPORTS.values()
    }


# --- List-Unsubscribe mailto ----------------------------------------------------------------


@pytest.mark.django_db
def test_mail_to_the_list_unsubscribe_address_unsubscribes_once():
    delivery = sent(uuid.uuid4().hex, "Leaving@Example.com")
    mail = unsubscribe_mail(delivery)
    first = mail_process(mail, source="test mailbox")
    mail_process(mail, source="test mailbox")
    assert first.kinds == {"unsubscribe": 1}
    assert first.unsubscribed == 1
    assert Unsubscribed.objects.filter(email__iexact="leaving@example.com").count() == 1
    delivery.refresh_from_db()
    assert delivery.status == "unsubscribed"
    assert DeliveryEvent.objects.filter(delivery=delivery, status="unsubscribed").count() == 1


@pytest.mark.django_db
def test_a_forged_unsubscribe_token_unsubscribes_nobody():
    delivery = sent(uuid.uuid4().hex, "stay@example.com")
    address = unsubscribe_mailto(delivery.pk).removeprefix("mailto:").partition("?")[0]
    local, _, domain = address.partition("@")
    wrong = local[:-1] + ("a" if local[-1] != "a" else "b")  # one character of the signature
    forged = unsubscribe_mail(delivery).replace(address.encode(), f"{wrong}@{domain}".encode())
    assert mail_process(forged, source="test mailbox").kinds == {"ignored": 1}
    assert not Unsubscribed.objects.exists()


# --- bounce mailboxes -----------------------------------------------------------------------


@pytest.fixture
def mailbox():
    box = FakeMailbox(user=USER, password=PASSWORD)
    for name in ("postfix_user_unknown", "arf_yahoo", "out_of_office"):
        box.add(raw(name))
    return box


def mailbox_integration(port: int, protocol: str = "imap", **settings) -> Integration:
    return Integration.objects.create(
        kind="bounce_mailbox",
        name=f"Bounces ({protocol})",
        channels=[],
        settings={
            "protocol": protocol,
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "username": USER,
            **settings,
        },
        secrets_sealed=secrets_seal({"password": PASSWORD}),
    )


def deliveries_of_mailbox() -> tuple[Delivery, Delivery]:
    return (
        sent(*REPORTS["postfix_user_unknown"][:2]),
        sent(*REPORTS["arf_yahoo"][:2]),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_poll_applies_the_mailbox_and_then_deletes_what_it_read(mailbox, protocol):
    bounced, complained = deliveries_of_mailbox()
    server_class = FakeIMAPServer if protocol == "imap" else FakePOP3Server
    with server_class(mailbox) as server:
        integration = mailbox_integration(server.port, protocol)
        report = bounce_mailbox_poll(integration_id=integration.pk)
        assert report.error == ""
        assert (report.read, report.removed, report.more) == (3, 3, False)
        assert report.kinds == {"dsn": 1, "complaint": 1, "ignored": 1}
        assert mailbox.raws() == []
        # Nothing left to read: a second poll finds the mailbox empty.
        assert bounce_mailbox_poll(integration_id=integration.pk).read == 0
    bounced.refresh_from_db()
    complained.refresh_from_db()
    assert (bounced.status, complained.status) == ("bounced", "complained")
    assert Suppression.objects.get(address="nobody@example.org").source == (
        f"bounce mailbox {integration.name}"
    )
    integration.refresh_from_db()
    assert integration.last_checked_at is not None
    assert integration.last_error == ""


@pytest.mark.django_db
def test_an_imap_mailbox_that_keeps_mail_flags_it_seen_and_reads_it_once(mailbox):
    bounced, _ = deliveries_of_mailbox()
    with FakeIMAPServer(mailbox) as server:
        integration = mailbox_integration(server.port, processed="mark")
        assert bounce_mailbox_poll(integration_id=integration.pk).read == 3
        assert len(mailbox.raws()) == 3
        assert all("\\Seen" in flags and "\\Deleted" not in flags for flags in mailbox.flags())
        assert bounce_mailbox_poll(integration_id=integration.pk).read == 0
    bounced.refresh_from_db()
    assert bounced.status == "bounced"


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_when_applying_fails_the_mail_stays_and_the_next_poll_applies_it(
    mailbox, protocol, monkeypatch
):
    bounced, _ = deliveries_of_mailbox()

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    server_class = FakeIMAPServer if protocol == "imap" else FakePOP3Server
    with server_class(mailbox) as server:
        integration = mailbox_integration(server.port, protocol)
        with monkeypatch.context() as patch:
            patch.setattr(bounces, "actions_apply", broken)
            report = bounce_mailbox_poll(integration_id=integration.pk)
        assert report.error == "processing failed: RuntimeError: database went away"
        assert report.removed == 0
        assert len(mailbox.raws()) == 3
        assert all(not flags for flags in mailbox.flags())  # not even \Seen (BODY.PEEK)
        integration.refresh_from_db()
        assert "database went away" in integration.last_error
        bounced.refresh_from_db()
        assert bounced.status == "sent"

        report = bounce_mailbox_poll(integration_id=integration.pk)
        assert (report.error, report.removed) == ("", 3)
    bounced.refresh_from_db()
    assert bounced.status == "bounced"
    integration.refresh_from_db()
    assert integration.last_error == ""


@pytest.mark.django_db
def test_a_poll_reads_at_most_its_limit_and_says_more_is_waiting(mailbox):
    with FakeIMAPServer(mailbox) as server:
        integration = mailbox_integration(server.port)
        report = bounce_mailbox_poll(integration_id=integration.pk, limit=2)
        assert (report.read, report.more) == (2, True)
        assert len(mailbox.raws()) == 1
        report = bounce_mailbox_poll(integration_id=integration.pk, limit=2)
        assert (report.read, report.more) == (1, False)


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_the_connection_test_logs_in_and_counts_the_messages(mailbox, protocol):
    server_class = FakeIMAPServer if protocol == "imap" else FakePOP3Server
    with server_class(mailbox) as server:
        integration = mailbox_integration(server.port, protocol)
        said = provider_of(integration).connection_test()
    where = "folder INBOX" if protocol == "imap" else "the mailbox"
    assert said == f"logged in; 3 messages in {where}"
    assert len(mailbox.raws()) == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("protocol", "servers_words"),
    [
        ("imap", "[AUTHENTICATIONFAILED] Authentication failed."),
        ("pop3", "-ERR [AUTH] Authentication failed."),
    ],
)
def test_a_wrong_password_fails_with_the_servers_reply_and_never_shows_the_password(
    mailbox, protocol, servers_words
):
    mailbox.password = "another one"
    server_class = FakeIMAPServer if protocol == "imap" else FakePOP3Server
    with server_class(mailbox) as server:
        integration = mailbox_integration(server.port, protocol)
        with pytest.raises(ProviderError) as failure:
            provider_of(integration).connection_test()
        assert failure.value.message == f"127.0.0.1: {servers_words}"
        assert failure.value.permanent
        assert PASSWORD not in str(failure.value)
        report = bounce_mailbox_poll(integration_id=integration.pk)
    integration.refresh_from_db()
    assert integration.last_error == report.error == f"127.0.0.1: {servers_words}"
    assert len(mailbox.raws()) == 3


@pytest.mark.django_db
def test_a_missing_folder_and_an_unreachable_server_are_reported():
    box = FakeMailbox(user=USER, password=PASSWORD)
    with FakeIMAPServer(box) as server:
        integration = mailbox_integration(server.port, folder="Bounces")
        with pytest.raises(ProviderError, match=r"Mailbox doesn't exist: Bounces"):
            provider_of(integration).connection_test()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    Integration.objects.filter(pk=integration.pk).update(
        settings={**integration.settings, "port": closed_port}
    )
    integration.refresh_from_db()
    with pytest.raises(ProviderError, match=rf"cannot reach 127.0.0.1:{closed_port}") as failure:
        provider_of(integration).connection_test()
    assert not failure.value.permanent


def test_beat_polls_the_bounce_mailboxes_every_minute():
    entry = django_settings.CELERY_BEAT_SCHEDULE["integrations-bounce-mailboxes-poll"]
    assert entry["task"] == bounce_mailboxes_poll_task.name == "integrations.bounce_mailboxes_poll"
    assert entry["schedule"] == 60.0


@pytest.mark.worker
def test_a_real_worker_polls_every_enabled_mailbox(celery_worker, mailbox):
    bounced, complained = deliveries_of_mailbox()
    disabled_box = FakeMailbox(user=USER, password=PASSWORD)
    disabled_box.add(raw("exim_user_unknown"))
    with FakeIMAPServer(mailbox) as server, FakePOP3Server(disabled_box) as other:
        mailbox_integration(server.port)
        off = mailbox_integration(other.port, "pop3")
        Integration.objects.filter(pk=off.pk).update(enabled=False)

        assert bounce_mailboxes_poll_task.delay() is not None
        wait_for(lambda: not mailbox.raws(), timeout=30)
    bounced.refresh_from_db()
    complained.refresh_from_db()
    assert (bounced.status, complained.status) == ("bounced", "complained")
    assert len(disabled_box.raws()) == 1


# --- the SMTP receiver ----------------------------------------------------------------------


@pytest.fixture
def receiver(transactional_db):
    """`manage.py bounce_receiver` as a process on a free port, on the test database."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": worker.test_database_url(),
        "SECRET_KEY": django_settings.SECRET_KEY,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "bounce_receiver", "--bind", f"127.0.0.1:{port}"],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(process.stdout.read().decode()) from None
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


def test_the_smtp_receiver_applies_a_dsn_sent_to_a_verp_address(receiver):
    request_hex, address, _, _ = REPORTS["postfix_user_unknown"]
    delivery = sent(request_hex, address)
    with smtplib.SMTP("127.0.0.1", receiver, timeout=10) as smtp:
        refused = smtp.sendmail(
            "", [f"bounces+{request_hex}@mail.herald.example"], raw("postfix_user_unknown")
        )
    assert refused == {}
    delivery.refresh_from_db()
    assert delivery.status == "bounced"
    suppression = Suppression.objects.get(address=address)
    assert (suppression.reason, suppression.source) == ("hard_bounce", "SMTP bounce receiver")


def test_the_smtp_receiver_refuses_other_recipients_with_550(receiver):
    with smtplib.SMTP("127.0.0.1", receiver, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail(
                "spam@example.com", ["postmaster@herald.example"], b"Subject: hi\r\n\r\nhi"
            )
        code, _ = refused.value.recipients["postmaster@herald.example"]
        assert code == 550
        # A forged unsubscribe token is no mailbox either.
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("a@example.com", ["unsubscribe+1.aaaaaaaaaaaaaaaa@herald.example"], b"x")


def test_the_smtp_receiver_honours_the_list_unsubscribe_mailto(receiver):
    delivery = sent(uuid.uuid4().hex, "leaving@example.com")
    mail = unsubscribe_mail(delivery)
    to = unsubscribe_mailto(delivery.pk).removeprefix("mailto:").partition("?")[0]
    with smtplib.SMTP("127.0.0.1", receiver, timeout=10) as smtp:
        assert smtp.sendmail("leaving@example.com", [to], mail) == {}
        assert smtp.sendmail("leaving@example.com", [to], mail) == {}
    assert Unsubscribed.objects.filter(email="leaving@example.com").count() == 1
    delivery.refresh_from_db()
    assert delivery.status == "unsubscribed"
    assert DeliveryEvent.objects.filter(delivery=delivery, status="unsubscribed").count() == 1


@pytest.mark.django_db
def test_a_dsn_in_latin_1_with_an_encoded_subject_and_a_nul_is_applied_and_stored_cleanly():
    request_hex, address, _, _ = REPORTS["postfix_user_unknown"]
    delivery = sent(request_hex, address)
    mail = (
        raw("postfix_user_unknown")
        .replace(
            b"Subject: Undelivered Mail Returned to Sender",
            b"Subject: =?iso-8859-1?q?Unzustellbar=3A_Dezember-Neuigkeiten_f=FCr_Sie?=",
        )
        .replace(b"User unknown in virtual", b"Benutzer unbekannt \xfc\x00 in virtual")
    )
    report = mail_process(mail, source="test mailbox")
    assert report.applied.changes["bounced"] == 1
    delivery.refresh_from_db()
    assert "Benutzer unbekannt \ufffd in virtual" in delivery.error
    assert "\x00" not in delivery.error
    assert Suppression.objects.get().address == address
