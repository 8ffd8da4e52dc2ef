"""SMTP integrations: several servers side by side, each campaign through its own; a VERP
Return-Path per delivery; Django's SMTP backend on Herald's fast path; the connection test
answering with the server's own words (real aiosmtpd servers, with AUTH and STARTTLS)."""

import datetime as dt
import ipaddress
import ssl

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

from campaigns import pipeline
from campaigns.delivery.content import SendContent
from campaigns.delivery.email import HeraldEmail, email_build, email_send_one
from campaigns.delivery.engine import send_request_process
from campaigns.delivery.providers import ProviderError, provider_of
from campaigns.delivery.verp import verp_address, verp_request_id
from campaigns.models import Delivery, DeliveryStatus
from config.core.models import Integration
from config.core.secrets import secrets_seal
from integrations.providers.smtp import SMTPSender
from templates.models import MessageTemplate
from templates.services import RenderedMessage, template_create, template_publish
from tests.campaigns.test_pipeline import make_campaign, make_run, send_all
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink, _Handler

pytestmark = [
    pytest.mark.django_db,
    # AuthSink without a certificate takes AUTH in clear text, as a relay on a trusted
    # network may; aiosmtpd warns about it.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]

PASSWORD = "correct horse battery staple"


def smtp_integration(name: str, server_port: int, **settings) -> Integration:
    password = settings.pop("password", "")
    values = {"host": "127.0.0.1", "port": server_port, "security": "none", "timeout": 5}
    values.update(settings)
    return Integration.objects.create(
        kind="smtp",
        name=name,
        channels=["email"],
        settings=values,
        secrets_sealed=secrets_seal({"password": password} if password else {}),
    )


def people(tag: str, n: int):
    return [ContactFactory(tags=[tag]) for _ in range(n)]


def materialised(**campaign):
    run = make_run(make_campaign(**campaign))
    pipeline.run_materialise(run=run)
    return run


class AuthSink(SMTPSink):
    """An aiosmtpd server that wants AUTH (LOGIN/PLAIN) with one username and password, and
    offers STARTTLS when given a certificate."""

    def __init__(self, *, user="herald", password=PASSWORD, tls: ssl.SSLContext | None = None):
        super().__init__()
        self.credentials = (user.encode(), password.encode())

        def authenticator(server, session, envelope, mechanism, auth_data):
            given = (auth_data.login, auth_data.password)
            # handled=False: aiosmtpd answers a failure itself (535 5.7.8 ...).
            return AuthResult(success=given == self.credentials, handled=False)

        self.controller = Controller(
            _Handler(self),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=tls is not None,
            tls_context=tls,
            require_starttls=tls is not None,
        )


@pytest.fixture
def tls_files(tmp_path):
    """A self-signed certificate for 127.0.0.1, and its file (to trust it as a CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return server, cert_file


# --- sending -------------------------------------------------------------------------------


def test_two_smtp_integrations_each_send_their_campaign_to_their_own_server():
    with SMTPSink() as bulk_server, SMTPSink() as transactional_server:
        bulk = smtp_integration("Bulk relay", bulk_server.port)
        transactional = smtp_integration("Transactional relay", transactional_server.port)
        newsletter = people("news", 3)
        receipts = people("receipts", 2)
        news_run = materialised(
            name="News", integration=bulk, audience_filter={"tags": {"$in": ["news"]}}
        )
        receipt_run = materialised(
            name="Receipts",
            integration=transactional,
            audience_filter={"tags": {"$in": ["receipts"]}},
        )

        send_all(news_run)
        send_all(receipt_run)

    assert sorted(m["To"] for m in bulk_server.messages) == sorted(p.email for p in newsletter)
    assert sorted(m["To"] for m in transactional_server.messages) == sorted(
        p.email for p in receipts
    )
    assert set(
        Delivery.objects.filter(run__in=[news_run, receipt_run]).values_list("status", flat=True)
    ) == {DeliveryStatus.SENT}


def test_the_return_path_is_each_deliverys_verp_address_at_the_integrations_bounce_domain():
    with SMTPSink() as server:
        relay = smtp_integration("Relay", server.port, bounce_domain="Bounce.Shop.Example")
        people("vip", 3)
        run = materialised(integration=relay)

        send_all(run)

    request_ids = {d.locator: d.request_id for d in Delivery.objects.filter(run=run)}
    assert len(server.received) == 3
    for received in server.received:
        to = received.rcpt_tos[0]
        assert received.mail_from == verp_address(request_ids[to], "bounce.shop.example")
        assert verp_request_id(received.mail_from) == request_ids[to]
        # The From header is the template's, not the envelope sender.
        assert received.message["From"] == "Shop <news@shop.example>"


def test_herald_bounce_domain_gives_the_environments_smtp_transport_verp_too(settings):
    settings.HERALD_BOUNCE_DOMAIN = "bounces.herald.example"
    with SMTPSink() as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        person = people("vip", 1)[0]
        run = materialised()

        send_all(run)

    delivery = Delivery.objects.get(run=run)
    assert [r.mail_from for r in server.received] == [
        f"bounces+{delivery.request_id.hex}@bounces.herald.example"
    ]
    assert server.messages[0]["To"] == person.email


def test_without_a_bounce_domain_the_envelope_sender_stays_the_from_address(settings):
    settings.HERALD_BOUNCE_DOMAIN = ""
    with SMTPSink() as server:
        people("vip", 2)
        run = materialised(integration=smtp_integration("Relay", server.port))

        send_all(run)

    assert [r.mail_from for r in server.received] == ["news@shop.example"] * 2


def test_the_smtp_sender_uses_djangos_smtp_backend_and_herald_writes_the_bytes():
    with SMTPSink() as server:
        relay = smtp_integration("Relay", server.port, bounce_domain="b.shop.example")
        sender = provider_of(relay).sender(SendContent(), [])
        assert isinstance(sender, SMTPSender)
        assert sender.name == f"smtp#{relay.pk}"
        connection = sender.connection_make()
        # Exactly Django's SMTP backend: the condition of campaigns.delivery.email's fast
        # path (campaigns.mime writes the bytes, campaigns.smtp pipelines them).
        assert type(connection) is SMTPBackend
        assert (connection.host, connection.port) == ("127.0.0.1", server.port)
        people("vip", 1)
        delivery = Delivery.objects.get(run=materialised(integration=relay))
        email = email_build(
            delivery=delivery,
            rendered=RenderedMessage(subject="Hi", html="<p>Hi</p>", text="Hi"),
            from_header="Shop <news@shop.example>",
            content=SendContent(),
            bounce_domain="b.shop.example",
        )
        assert email.smtp_bytes() is not None


def test_a_message_only_django_can_write_still_gets_its_verp_return_path():
    with SMTPSink() as server:
        relay = smtp_integration("Relay", server.port)
        connection = provider_of(relay).sender(SendContent(), []).connection_make()
        message = HeraldEmail(
            subject="Hi",
            body="Hello",
            from_email="Shop <news@shop.example>",
            to=["anna@example.com"],
            reply_to=["help@shop.example"],  # a shape campaigns.mime leaves to Django
        )
        message.return_path = "bounces+" + "ab" * 16 + "@b.shop.example"
        assert message.smtp_bytes() is None
        connection.open()
        try:
            outcome, lost = email_send_one(connection, message)
        finally:
            connection.close()

    assert (outcome.status, lost) == ("accepted", False)
    (received,) = server.received
    assert received.mail_from == message.return_path
    assert received.message["Reply-To"] == "help@shop.example"
    assert received.message["From"] == "Shop <news@shop.example>"


def test_an_integration_with_bad_settings_fails_its_deliveries_with_the_field_named():
    with SMTPSink() as server:
        relay = smtp_integration("Relay", server.port, security="carrier-pigeon")
        people("vip", 1)
        run = materialised(integration=relay)

        send_all(run)

    delivery = Delivery.objects.get(run=run)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.error.startswith("security: must be one of")
    assert server.received == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"host": ""}, "host: a host name or address is required"),
        ({"port": "smtp"}, "port: must be a whole number"),
        ({"port": 70000}, "port: must be between 1 and 65535"),
        ({"timeout": 0}, "timeout: must be between 1 and 600"),
        ({"bounce_domain": "not a domain"}, "bounce_domain: not a domain name"),
        ({"username": "", "password": PASSWORD}, "username: required with a password"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(settings, message):
    relay = smtp_integration("Relay", 2525, **settings)
    with pytest.raises(ProviderError) as refused:
        provider_of(relay).connection_test()
    assert str(refused.value).startswith(message)
    assert refused.value.permanent


# --- the connection test -------------------------------------------------------------------


def test_connection_test_with_the_right_password_logs_in_and_quits():
    with AuthSink() as server:
        relay = smtp_integration("Relay", server.port, username="herald", password=PASSWORD)
        answer = provider_of(relay).connection_test()
    assert answer.startswith(f"127.0.0.1:{server.port} accepted the connection as herald")
    assert server.received == []  # MAIL FROM was reset: nothing sent


def test_connection_test_with_a_wrong_password_answers_the_servers_own_reply():
    with AuthSink() as server:
        relay = smtp_integration("Relay", server.port, username="herald", password="guess")
        with pytest.raises(ProviderError) as refused:
            provider_of(relay).connection_test()
    assert refused.value.message == "535 5.7.8 Authentication credentials invalid"
    assert refused.value.permanent
    assert "guess" not in str(refused.value)


def test_connection_test_without_credentials_shows_that_the_server_wants_a_login():
    with AuthSink() as server:
        relay = smtp_integration("Relay", server.port)
        with pytest.raises(ProviderError) as refused:
            provider_of(relay).connection_test()
    assert refused.value.message.startswith("530 ")
    assert "authentication required" in refused.value.message.lower()


def test_connection_test_of_a_server_that_is_not_there_says_it_could_not_reach_it():
    with SMTPSink() as server:
        port = server.port
    relay = smtp_integration("Relay", port, timeout=2)
    with pytest.raises(ProviderError) as refused:
        provider_of(relay).connection_test()
    assert refused.value.message.startswith(f"could not reach 127.0.0.1:{port}: ")
    assert not refused.value.permanent


def test_connection_test_over_starttls_trusts_a_valid_certificate_and_logs_in(
    tls_files, monkeypatch
):
    server_context, cert_file = tls_files
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # the client's CA: our own cert
    with AuthSink(tls=server_context) as server:
        relay = smtp_integration(
            "Relay", server.port, security="starttls", username="herald", password=PASSWORD
        )
        answer = provider_of(relay).connection_test()
        assert answer.startswith(f"127.0.0.1:{server.port} accepted the connection as herald")
        # Without STARTTLS this server offers no AUTH: the answer says what to change.
        plain = smtp_integration(
            "Plain", server.port, security="none", username="herald", password=PASSWORD
        )
        with pytest.raises(ProviderError) as refused:
            provider_of(plain).connection_test()
    assert refused.value.message == (
        f"127.0.0.1:{server.port}: SMTP AUTH extension not supported by server. "
        "(it offers STARTTLS: choose that security)"
    )


def test_connection_test_over_starttls_refuses_a_certificate_it_does_not_trust(tls_files):
    server_context, _ = tls_files
    with AuthSink(tls=server_context) as server:
        relay = smtp_integration(
            "Relay", server.port, security="starttls", username="herald", password=PASSWORD
        )
        with pytest.raises(ProviderError) as refused:
            provider_of(relay).connection_test()
    assert "TLS failed" in refused.value.message
    assert "certificate verify failed" in refused.value.message.lower()


def test_sending_through_starttls_with_auth_delivers(tls_files, monkeypatch):
    server_context, cert_file = tls_files
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    with AuthSink(tls=server_context) as server:
        relay = smtp_integration(
            "Relay", server.port, security="starttls", username="herald", password=PASSWORD
        )
        people("vip", 2)
        run = materialised(integration=relay)

        send_all(run)

    assert len(server.received) == 2
    assert set(Delivery.objects.filter(run=run).values_list("status", flat=True)) == {"sent"}


def test_a_template_names_the_integration_its_messages_go_through_unless_the_send_names_one(
    api, full_key
):
    with SMTPSink() as transactional, SMTPSink() as bulk:
        chosen = smtp_integration("Transactional", transactional.port)
        default = smtp_integration("Bulk", bulk.port)
        Integration.objects.filter(pk=default.pk).update(is_default=True)
        receipt = template_create(
            name="Receipt", subject="Receipt", from_email="shop@shop.example", html="<p>Hi</p>"
        )
        MessageTemplate.objects.filter(pk=receipt.pk).update(integration=chosen)
        template_publish(template=receipt)
        newsletter = template_create(
            name="News", subject="News", from_email="shop@shop.example", html="<p>News</p>"
        )
        template_publish(template=newsletter)

        # A single message of the receipt template: the template's integration.
        answer = api.post(
            f"/api/v1/message/{receipt.pk}/smartsend",
            key=full_key,
            body={"recipients": [{"locator": "kim@example.com"}]},
        ).json()
        send_request_process(send_request_id=answer["id"])
        # A campaign of it: the template's too; a campaign naming the bulk one: that one;
        # a template naming none: the channel's default.
        people("tpl", 1)
        runs = [
            make_run(make_campaign(template=receipt, audience_filter={"tags": {"$in": ["tpl"]}})),
            make_run(
                make_campaign(
                    template=receipt,
                    integration=default,
                    audience_filter={"tags": {"$in": ["tpl"]}},
                )
            ),
            make_run(
                make_campaign(template=newsletter, audience_filter={"tags": {"$in": ["tpl"]}})
            ),
        ]
        for run in runs:
            pipeline.run_materialise(run=run)
            send_all(run)

        assert sorted(m["Subject"] for m in transactional.messages) == ["Receipt", "Receipt"]
        assert sorted(m["Subject"] for m in bulk.messages) == ["News", "Receipt"]
