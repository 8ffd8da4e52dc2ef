"""Email services Herald sends through with django-anymail: Amazon SES, SendGrid, Mailgun,
Postmark, Brevo, SparkPost and Resend, one provider kind each (the kind is Anymail's name
for the service).

Sending is the email sender's (campaigns.delivery.email.EmailSender) with the service's
Anymail backend in place of SMTP: one backend (one HTTP session, or one boto3 client for
SES) per sender task, reused for every batch, built from the integration's credentials
passed as backend arguments, never from Django settings, so several integrations of one
service can coexist. Every message carries the delivery's request id in the service's
metadata as `herald_id` (custom_args, v: variables, Metadata, X-Mailin-custom, …), which
the service's tracking webhooks hand back (integrations.providers.esp_webhooks); the id the
service gives the message (Anymail's message_id) is kept as the delivery's
provider_message_id. The service's refusals are classified once, by
campaigns.delivery.policy.error_classify: 429 and 5xx (and SES throttling) are retried,
other 4xx and refused recipients fail the delivery.

The connection test makes one authenticated, harmless call per service (urllib; boto3 for
SES) and, when it fails, raises ProviderError with the service's own error message.

Every kind has an optional `api_url` (the service's API base URL: for a regional or private
endpoint, and for the tests, which point it at a local server speaking the service's
protocol, tests/support/fake_esp.py) and a `webhook_secret` read by the webhook side.

Decisions:
- Postmark and SparkPost take one tag per message (Postmark's Tag, SparkPost's
  campaign_id), and Anymail refuses a message with more: they get the first of Herald's
  tags, which for a campaign is `campaign-<id>`.
- boto3 does not retry by itself here (total_max_attempts 1): the engine's retry policy is
  the one that backs off, and a throttled provider's rate is adapted there.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from django.core.mail import get_connection

from campaigns.delivery.email import EmailSender, HeraldEmail
from campaigns.delivery.policy import http_status_permanent
from campaigns.delivery.providers import (
    Provider,
    ProviderError,
    SettingField,
    WebhookCall,
    provider_register,
)
from contacts.models import ChannelType
from integrations.providers.esp_webhooks import esp_webhook_authenticate, esp_webhook_parse
from integrations.providers.outbound import provider_urlopen

if TYPE_CHECKING:
    from django.core.mail.backends.base import BaseEmailBackend

    from campaigns.delivery.content import SendContent
    from campaigns.delivery.feedback import WebhookResult
    from campaigns.delivery.senders import Message, Sender
    from contacts.models import CustomField

# Seconds the connection test waits for the service; a form is waiting on it.
CONNECTION_TEST_TIMEOUT = 10

_BASIC_AUTH_HELP = (
    "The user:password the service's webhook calls must carry (HTTP basic auth): register "
    "the webhook URL at the service as https://user:password@<Herald's host>/webhooks/<key>/."
)


def _api_url_field(default: str) -> SettingField:
    return SettingField(
        "api_url",
        "API base URL",
        kind="url",
        required=False,
        help=f"Advanced: the service's API base URL, when not {default}.",
    )


def _webhook_secret_field(help: str = _BASIC_AUTH_HELP) -> SettingField:
    return SettingField("webhook_secret", "Webhook secret", secret=True, required=False, help=help)


class EspSender(EmailSender):
    """Email through one integration's email service (its Anymail backend)."""

    def __init__(
        self, provider: EspProvider, content: SendContent, custom_fields: list[CustomField]
    ) -> None:
        super().__init__(content, custom_fields)
        self.provider = provider
        self.name = provider.name
        # Read (and checked) once per task; a missing credential fails the rows at once.
        self.backend_kwargs = provider.backend_kwargs()

    def connection_make(self) -> BaseEmailBackend:
        return get_connection(self.provider.backend, fail_silently=False, **self.backend_kwargs)

    def message_build(self, message: Message) -> HeraldEmail:
        email = super().message_build(message)
        email.metadata = {**email.metadata, "herald_id": message.delivery.request_id.hex}
        if self.provider.tags_max is not None:
            email.tags = email.tags[: self.provider.tags_max]
        return email


class EspProvider(Provider):
    """What the seven services share: the sender, webhooks delegated to the webhook side,
    and a connection test over HTTP (`probe`), which SES replaces."""

    channels = frozenset({ChannelType.EMAIL.value})
    #: Anymail's email backend for the service.
    backend: ClassVar[str] = ""
    #: The API base URL Anymail uses when `api_url` is empty.
    default_api_url: ClassVar[str] = ""
    #: Tags a message may carry at this service (None: no limit Herald meets).
    tags_max: ClassVar[int | None] = None
    #: The connection test's GET, relative to the API base URL.
    probe_path: ClassVar[str] = ""

    @property
    def esp(self) -> str:
        return self.kind

    def sender(self, content: SendContent, custom_fields: list[CustomField]) -> Sender:
        return EspSender(self, content, custom_fields)

    def backend_kwargs(self) -> dict[str, Any]:
        """The Anymail backend's arguments (credentials, API URL): an API key and the API URL
        unless a service needs others. Raises ProviderError (permanent) when a credential is
        missing."""
        return {"api_key": self.setting_required("api_key"), "api_url": self.api_url()}

    def setting_required(self, name: str) -> str:
        value = self.setting(name)
        if not value:
            label = next((f.label for f in self.fields if f.name == name), name)
            raise ProviderError(f"{self.label}: {label} is not set", permanent=True)
        return str(value)

    def api_url(self) -> str:
        url = self.url_checked(str(self.setting("api_url") or self.default_api_url))
        return url if url.endswith("/") else url + "/"

    def url_checked(self, url: str) -> str:
        if not url.startswith(("https://", "http://")):
            raise ProviderError(f"{self.label}: the API URL must be an http(s) URL", permanent=True)
        return url

    # Webhooks: the webhook side knows each service's signatures and events.

    def webhook_authenticate(self, call: WebhookCall) -> None:
        esp_webhook_authenticate(self.esp, self, call)

    def webhook_parse(self, call: WebhookCall) -> WebhookResult:
        return esp_webhook_parse(self.esp, self, call)

    # Connection test.

    def probe_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def probe_url(self) -> str:
        return self.api_url() + self.probe_path

    def probe_describe(self, answer: Any) -> str:
        raise NotImplementedError

    def connection_test(self) -> str:
        return self.probe_describe(
            service_get(self.probe_url(), self.probe_headers(), service=self.label)
        )


def service_get(url: str, headers: dict[str, str], *, service: str) -> Any:
    """GET a service's JSON API; a refusal raises ProviderError with the service's message
    (permanent for a 4xx but 408/429), an unreachable service a transient one."""
    if not url.startswith(("https://", "http://")):
        # urllib would open file: and ftp: URLs too.
        raise ProviderError(f"{service}: the API base URL must be an http(s) URL", permanent=True)
    request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
        url, headers={"Accept": "application/json", "User-Agent": "Herald", **headers}
    )
    try:
        with provider_urlopen(request, timeout=CONNECTION_TEST_TIMEOUT) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = service_error_text(exc.read()) or str(exc.reason)
        raise ProviderError(
            f"{service}: {detail} (HTTP {exc.code})",
            permanent=http_status_permanent(exc.code),
            throttled=exc.code == 429,
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ProviderError(f"{service} cannot be reached at {url}: {reason}") from None
    try:
        return json.loads(body) if body else {}
    except ValueError:
        raise ProviderError(f"{service} answered with something that is not JSON") from None


def service_error_text(body: bytes) -> str:
    """The error message in a service's error answer: SendGrid's and SparkPost's
    {"errors": [{"message"}]}, {"message"} (Mailgun, Brevo, Resend, SES), Postmark's
    {"Message"}, else the text itself."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            parts = []
            for error in errors:
                if isinstance(error, dict):
                    message = str(error.get("message", ""))
                    description = error.get("description")
                    parts.append(f"{message}: {description}" if description else message)
            return "; ".join(p for p in parts if p)[:300]
        for key in ("message", "Message", "error"):
            if data.get(key):
                return str(data[key])[:300]
    return text[:300]


# --- the services ----------------------------------------------------------------------------


@provider_register
class SendGridProvider(EspProvider):
    kind = "sendgrid"
    label = "SendGrid"
    backend = "anymail.backends.sendgrid.EmailBackend"
    default_api_url = "https://api.sendgrid.com/v3/"
    probe_path = "scopes"
    fields = (
        SettingField(
            "api_key",
            "API key",
            secret=True,
            help="A SendGrid API key with the Mail Send permission (Settings → API Keys).",
        ),
        _api_url_field(default_api_url),
        _webhook_secret_field(),
    )

    def probe_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.setting_required('api_key')}"}

    def probe_describe(self, answer: Any) -> str:
        scopes = answer.get("scopes", []) if isinstance(answer, dict) else []
        if "mail.send" not in scopes:
            raise ProviderError(
                "SendGrid: the API key works but lacks the Mail Send permission", permanent=True
            )
        return "SendGrid: the API key may send mail"


MAILGUN_REGIONS = {"us": "https://api.mailgun.net/v3/", "eu": "https://api.eu.mailgun.net/v3/"}


@provider_register
class MailgunProvider(EspProvider):
    kind = "mailgun"
    label = "Mailgun"
    backend = "anymail.backends.mailgun.EmailBackend"
    default_api_url = MAILGUN_REGIONS["us"]
    tags_max = 3  # Mailgun keeps at most three o:tag values
    fields = (
        SettingField(
            "api_key",
            "API key",
            secret=True,
            help="Your Mailgun account's private API key, or a domain sending key.",
        ),
        SettingField(
            "sender_domain",
            "Sending domain",
            help="The domain verified at Mailgun that mail is sent from, e.g. mg.shop.example.",
        ),
        SettingField(
            "region",
            "Region",
            kind="choice",
            choices=(("us", "US (api.mailgun.net)"), ("eu", "EU (api.eu.mailgun.net)")),
            default="us",
            help="Where the Mailgun account's domains live.",
        ),
        _api_url_field("the region's (https://api.mailgun.net/v3/ or api.eu.mailgun.net)"),
        _webhook_secret_field(
            "Mailgun's HTTP webhook signing key (Sending → Webhooks), with which each "
            "webhook call is signed."
        ),
    )

    def api_url(self) -> str:
        if not self.setting("api_url"):
            return MAILGUN_REGIONS.get(str(self.setting("region")), MAILGUN_REGIONS["us"])
        return super().api_url()

    def backend_kwargs(self) -> dict[str, Any]:
        return {
            "api_key": self.setting_required("api_key"),
            "sender_domain": self.setting_required("sender_domain"),
            "api_url": self.api_url(),
        }

    def probe_headers(self) -> dict[str, str]:
        token = base64.b64encode(f"api:{self.setting_required('api_key')}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def probe_url(self) -> str:
        return f"{self.api_url()}domains/{quote(self.setting_required('sender_domain'), safe='')}"

    def probe_describe(self, answer: Any) -> str:
        domain = answer.get("domain", {}) if isinstance(answer, dict) else {}
        return f"Mailgun: domain {domain.get('name', '?')} is {domain.get('state', 'unknown')}"


@provider_register
class PostmarkProvider(EspProvider):
    kind = "postmark"
    label = "Postmark"
    backend = "anymail.backends.postmark.EmailBackend"
    default_api_url = "https://api.postmarkapp.com/"
    tags_max = 1  # Postmark's Tag
    probe_path = "server"
    fields = (
        SettingField(
            "server_token",
            "Server API token",
            secret=True,
            help="The Postmark server's API token (Servers → your server → API Tokens).",
        ),
        SettingField(
            "message_stream",
            "Message stream",
            required=False,
            help="The stream mail goes to: campaigns belong on a Broadcasts stream (e.g. "
            "'broadcast'); empty means the server's transactional stream ('outbound').",
        ),
        _api_url_field(default_api_url),
        _webhook_secret_field(),
    )

    def backend_kwargs(self) -> dict[str, Any]:
        kwargs = {"server_token": self.setting_required("server_token"), "api_url": self.api_url()}
        if self.setting("message_stream"):
            kwargs["message_stream"] = str(self.setting("message_stream"))
        return kwargs

    def probe_headers(self) -> dict[str, str]:
        return {"X-Postmark-Server-Token": self.setting_required("server_token")}

    def probe_describe(self, answer: Any) -> str:
        name = answer.get("Name", "?") if isinstance(answer, dict) else "?"
        return f"Postmark: server “{name}”"


@provider_register
class BrevoProvider(EspProvider):
    kind = "brevo"
    label = "Brevo"
    backend = "anymail.backends.brevo.EmailBackend"
    default_api_url = "https://api.brevo.com/v3/"
    probe_path = "account"
    fields = (
        SettingField(
            "api_key",
            "API key",
            secret=True,
            help="A Brevo API v3 key (SMTP & API → API Keys); not the SMTP key.",
        ),
        _api_url_field(default_api_url),
        _webhook_secret_field(),
    )

    def probe_headers(self) -> dict[str, str]:
        return {"api-key": self.setting_required("api_key")}

    def probe_describe(self, answer: Any) -> str:
        answer = answer if isinstance(answer, dict) else {}
        company = answer.get("companyName")
        owner = answer.get("email", "?")
        return f"Brevo: account of {owner}" + (f" ({company})" if company else "")


SPARKPOST_REGIONS = {
    "us": "https://api.sparkpost.com/api/v1/",
    "eu": "https://api.eu.sparkpost.com/api/v1/",
}


@provider_register
class SparkPostProvider(EspProvider):
    kind = "sparkpost"
    label = "SparkPost"
    backend = "anymail.backends.sparkpost.EmailBackend"
    default_api_url = SPARKPOST_REGIONS["us"]
    tags_max = 1  # SparkPost's campaign_id
    probe_path = "account"
    fields = (
        SettingField(
            "api_key",
            "API key",
            secret=True,
            help="A SparkPost API key with the Transmissions: Read/Write and Account: "
            "Read-only permissions (the connection test reads the account).",
        ),
        SettingField(
            "region",
            "Region",
            kind="choice",
            choices=(("us", "US (sparkpost.com)"), ("eu", "EU (eu.sparkpost.com)")),
            default="us",
            help="The SparkPost site the account is on.",
        ),
        SettingField(
            "subaccount",
            "Subaccount id",
            required=False,
            help="Send as this subaccount (X-MSYS-SUBACCOUNT); empty: the master account.",
        ),
        _api_url_field("the region's (https://api.sparkpost.com/api/v1/ or api.eu…)"),
        _webhook_secret_field(),
    )

    def api_url(self) -> str:
        if not self.setting("api_url"):
            return SPARKPOST_REGIONS.get(str(self.setting("region")), SPARKPOST_REGIONS["us"])
        return super().api_url()

    def backend_kwargs(self) -> dict[str, Any]:
        kwargs = super().backend_kwargs()
        if self.setting("subaccount"):
            kwargs["subaccount"] = str(self.setting("subaccount"))
        return kwargs

    def probe_headers(self) -> dict[str, str]:
        headers = {"Authorization": self.setting_required("api_key")}
        if self.setting("subaccount"):
            headers["X-MSYS-SUBACCOUNT"] = str(self.setting("subaccount"))
        return headers

    def probe_describe(self, answer: Any) -> str:
        results = answer.get("results", {}) if isinstance(answer, dict) else {}
        return (
            f"SparkPost: account of {results.get('company_name') or results.get('customer_id')}"
            f" ({results.get('status', 'unknown')})"
        )


@provider_register
class ResendProvider(EspProvider):
    kind = "resend"
    label = "Resend"
    backend = "anymail.backends.resend.EmailBackend"
    default_api_url = "https://api.resend.com/"
    probe_path = "domains"
    fields = (
        SettingField(
            "api_key",
            "API key",
            secret=True,
            help="A Resend API key with full access (a sending-only key sends, but cannot "
            "list domains, so the connection test refuses it).",
        ),
        _api_url_field(default_api_url),
        _webhook_secret_field(
            "The webhook's signing secret (whsec_…, Webhooks → your endpoint): Resend "
            "signs each call with it (Svix)."
        ),
    )

    def probe_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.setting_required('api_key')}"}

    def probe_describe(self, answer: Any) -> str:
        domains = answer.get("data", []) if isinstance(answer, dict) else []
        listed = ", ".join(f"{d.get('name')} ({d.get('status')})" for d in domains[:5])
        return f"Resend: {len(domains)} domain(s)" + (f": {listed}" if listed else "")


AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


@provider_register
class AmazonSESProvider(EspProvider):
    kind = "amazon_ses"
    label = "Amazon SES"
    backend = "anymail.backends.amazon_ses.EmailBackend"
    fields = (
        SettingField(
            "region",
            "AWS region",
            default="us-east-1",
            help="The region of your SES account, e.g. eu-west-1.",
        ),
        SettingField(
            "access_key_id",
            "Access key id",
            required=False,
            help="An IAM user's access key id allowed ses:SendEmail, ses:SendRawEmail and "
            "ses:GetAccount; empty: the AWS credentials of the server Herald runs on (its "
            "environment or instance role).",
        ),
        SettingField(
            "secret_access_key",
            "Secret access key",
            secret=True,
            required=False,
            help="The secret of that access key.",
        ),
        SettingField(
            "configuration_set",
            "Configuration set",
            required=False,
            help="The SES configuration set mail is sent with; its event destination (SNS) "
            "is what reports deliveries, bounces and complaints to Herald's webhook.",
        ),
        SettingField(
            "api_url",
            "Endpoint URL",
            kind="url",
            required=False,
            help="Advanced: the SES API endpoint, when not the region's "
            "(https://email.<region>.amazonaws.com), e.g. a VPC endpoint.",
        ),
        _webhook_secret_field(
            "The user:password the SNS subscription's HTTPS endpoint carries (HTTP basic "
            "auth): subscribe https://user:password@<Herald's host>/webhooks/<key>/."
        ),
    )

    def boto3_params(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(session params, client params) for boto3, as Anymail's SES backend takes them."""
        region = str(self.setting("region") or "us-east-1").strip()
        if not AWS_REGION.fullmatch(region):
            # boto3 would raise its own error while opening, outside any send.
            raise ProviderError(
                f"Amazon SES: {region!r} is not an AWS region (e.g. eu-west-1)", permanent=True
            )
        session: dict[str, Any] = {"region_name": region}
        key_id = self.setting("access_key_id")
        if key_id:
            session["aws_access_key_id"] = str(key_id)
            session["aws_secret_access_key"] = self.setting_required("secret_access_key")
        client: dict[str, Any] = {
            "config": {
                "retries": {"mode": "standard", "total_max_attempts": 1},
                "connect_timeout": CONNECTION_TEST_TIMEOUT,
                "read_timeout": 30,
            }
        }
        if self.setting("api_url"):
            client["endpoint_url"] = self.url_checked(str(self.setting("api_url")))
        return session, client

    def backend_kwargs(self) -> dict[str, Any]:
        session, client = self.boto3_params()
        kwargs: dict[str, Any] = {"session_params": session, "client_params": client}
        if self.setting("configuration_set"):
            kwargs["configuration_set_name"] = str(self.setting("configuration_set"))
        return kwargs

    def connection_test(self) -> str:
        # The client sending uses (Anymail's, with its boto3 parameters), asked GetAccount.
        from anymail.backends.amazon_ses import BOTO_BASE_ERRORS, EmailBackend

        backend = EmailBackend(fail_silently=False, **self.backend_kwargs())
        try:
            backend.open()
            account = backend.client.get_account()
        except BOTO_BASE_ERRORS as exc:
            # botocore's ClientError carries the parsed answer; its other errors got none.
            answer = getattr(exc, "response", None)
            if not isinstance(answer, dict):
                raise ProviderError(f"Amazon SES cannot be reached: {exc}") from None
            error = answer.get("Error", {})
            status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise ProviderError(
                f"Amazon SES: {error.get('Message') or error.get('Code') or exc}",
                permanent=http_status_permanent(status),
                throttled=status == 429,
            ) from None
        finally:
            backend.close()
        quota = account.get("SendQuota", {})
        sending = "enabled" if account.get("SendingEnabled") else "paused"
        sandbox = "" if account.get("ProductionAccessEnabled") else ", in the sandbox"
        region = self.boto3_params()[0]["region_name"]
        return (
            f"Amazon SES {region}: sending {sending}{sandbox}; "
            f"{quota.get('Max24HourSend', 0):,.0f} a day at {quota.get('MaxSendRate', 0):g}/s, "
            f"{quota.get('SentLast24Hours', 0):,.0f} sent in the last 24 hours"
        )
