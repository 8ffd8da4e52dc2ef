"""Local HTTP servers that speak the sending APIs of the email services Herald reaches through
django-anymail, as each service documents them: Amazon SES (API v2, SigV4-signed), SendGrid
(v3), Mailgun (v3), Postmark, Brevo (v3), SparkPost (v1) and Resend.

Each server checks the service's authentication (a wrong key gets the service's own 401/403
answer and error text), takes the send request in the service's format (JSON, or Mailgun's
form), answers with a message id the way the service does, and also answers the one call
Herald's connection test makes (SendGrid GET /v3/scopes, Mailgun GET /v3/domains/<domain>,
Postmark GET /server, Brevo GET /v3/account, SparkPost GET /api/v1/account, Resend GET
/domains, SES GET /v2/email/account).

    with FAKES["sendgrid"]() as fake:
        ...point the integration's api_url at fake.url, its api key at fake.key...
        fake.messages   # Sent: to, subject, metadata, headers, message_id (what was accepted)
        fake.calls      # Call: every HTTP request, raw

`refuse(address, answer)` makes the send of a message to that address fail with the
service's documented answer: "invalid" (the service's refusal of a bad request: 400, or
Postmark's 422 and SparkPost's 422), "throttled" (429) or "unavailable" (5xx); `once` lets the
next attempt through. `record=False` keeps only a count (benchmarks).
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, urlsplit

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Call:
    """One HTTP request as the server received it (header names lower case)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Sent:
    """One message the service accepted, read back from the service's own request format.
    `message_id` is the id the service (or, for SendGrid, Anymail's id in custom_args) will
    report it under in its webhooks."""

    to: list[str]
    subject: str
    metadata: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    html: str = ""
    text: str = ""
    message_id: str = ""


def _json_answer(status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(data).encode(),
    )


def _addr(value: str) -> str:
    """The address in a "Name <addr>" string."""
    match = re.search(r"<([^>]*)>", value)
    return (match.group(1) if match else value).strip()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the services' APIs and requests use it
    # Headers and body go out in two writes: with Nagle's algorithm on, the second waits for
    # the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        call = Call(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            status, headers, payload = self.server.fake.dispatch(call)
        except Exception as exc:  # a bug in the fake: answer as a server error, loudly
            status, headers, payload = 500, {"Content-Type": "text/plain"}, repr(exc).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeESP


class FakeESP:
    """The base of every service: the server, recording, refusals; a subclass per service
    routes requests (`routes`), checks its auth and reads its send format."""

    esp: ClassVar[str] = ""
    #: The part of the API base URL after the host (Anymail's default api_url's path).
    base_path: ClassVar[str] = "/"

    def __init__(self, key: str = "good-key", *, record: bool = True) -> None:
        self.key = key
        self.record = record
        self.calls: list[Call] = []
        self.messages: list[Sent] = []
        self.accepted = 0
        self._refusals: dict[str, tuple[str, bool]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: _Server | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> FakeESP:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The API base URL (an integration's api_url)."""
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def integration_settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(settings, secrets) of an Integration of this kind that sends through this server
        with its key."""
        return {"api_url": self.url}, {"api_key": self.key}

    # --- behaviour ---------------------------------------------------------------------

    def refuse(self, address: str, answer: str, *, once: bool = False) -> None:
        """Answer sends to `address` with the service's "invalid", "throttled" or
        "unavailable" answer."""
        if answer not in ("invalid", "throttled", "unavailable"):
            raise ValueError(answer)
        self._refusals[address.lower()] = (answer, once)

    def _refusal(self, recipients: list[str]) -> str:
        with self._lock:
            for address in recipients:
                found = self._refusals.get(address.lower())
                if found:
                    answer, once = found
                    if once:
                        del self._refusals[address.lower()]
                    return answer
        return ""

    def _keep(self, sent: Sent) -> None:
        with self._lock:
            self.accepted += 1
            if self.record:
                self.messages.append(sent)

    def next_id(self) -> int:
        return next(self._ids)

    def dispatch(self, call: Call) -> Answer:
        if self.record:
            with self._lock:
                self.calls.append(call)
        route = self.routes().get((call.method, call.path))
        if route is None:
            for (method, pattern), handler in self.routes().items():
                if (
                    method == call.method
                    and pattern.endswith("*")
                    and (call.path.startswith(pattern[:-1]))
                ):
                    route = handler
                    break
        if route is None:
            return self.not_found(call)
        refused = self.authenticate(call)
        if refused is not None:
            return refused
        return route(call)

    def send(self, call: Call) -> Answer:
        """A send request: read it, refuse it as told, else accept it."""
        sent = self.read(call)
        refusal = self._refusal(sent.to)
        if refusal:
            return self.refusal_answer(refusal, sent)
        answer = self.accept(sent)
        self._keep(sent)
        return answer

    # --- what each service defines -----------------------------------------------------

    def routes(self) -> dict[tuple[str, str], Any]:
        raise NotImplementedError

    def authenticate(self, call: Call) -> Answer | None:
        raise NotImplementedError

    def read(self, call: Call) -> Sent:
        raise NotImplementedError

    def accept(self, sent: Sent) -> Answer:
        raise NotImplementedError

    def refusal_answer(self, refusal: str, sent: Sent) -> Answer:
        raise NotImplementedError

    def not_found(self, call: Call) -> Answer:
        return _json_answer(404, {"message": "Not Found"})


def _bearer(call: Call) -> str:
    value = call.headers.get("authorization", "")
    return value[7:] if value.lower().startswith("bearer ") else ""


# --- SendGrid v3 -----------------------------------------------------------------------------


class FakeSendGrid(FakeESP):
    """POST /v3/mail/send (Authorization: Bearer <key>; 202 with an empty body and
    X-Message-Id), GET /v3/scopes. Errors: {"errors": [{"message", "field", "help"}]}."""

    esp = "sendgrid"
    base_path = "/v3/"

    def routes(self):
        return {("POST", "/v3/mail/send"): self.send, ("GET", "/v3/scopes"): self.scopes}

    @staticmethod
    def _errors(status: int, message: str, field_name: str | None = None) -> Answer:
        return _json_answer(
            status, {"errors": [{"message": message, "field": field_name, "help": None}]}
        )

    def authenticate(self, call):
        if _bearer(call) != self.key:
            return self._errors(
                401, "The provided authorization grant is invalid, expired, or revoked"
            )
        return None

    def scopes(self, call):
        return _json_answer(200, {"scopes": ["mail.send", "user.profile.read"]})

    def read(self, call):
        data = call.json()
        personalization = data["personalizations"][0]
        metadata = {**data.get("custom_args", {}), **personalization.get("custom_args", {})}
        content = {part["type"]: part["value"] for part in data.get("content", [])}
        return Sent(
            to=[to["email"] for to in personalization["to"]],
            subject=data.get("subject", ""),
            metadata={k: v for k, v in metadata.items() if k != "anymail_id"},
            headers=dict(data.get("headers", {})),
            tags=list(data.get("categories", [])),
            html=content.get("text/html", ""),
            text=content.get("text/plain", ""),
            # Anymail's own id (custom_args.anymail_id) is what its webhooks report.
            message_id=metadata.get("anymail_id", ""),
        )

    def accept(self, sent):
        return 202, {"X-Message-Id": f"sg{self.next_id():020d}"}, b""

    def refusal_answer(self, refusal, sent):
        if refusal == "invalid":
            return self._errors(
                400, "Does not contain a valid address.", "personalizations.0.to.0.email"
            )
        if refusal == "throttled":
            return self._errors(429, "too many requests")
        return self._errors(503, "Service Unavailable")


# --- Mailgun v3 ------------------------------------------------------------------------------


class FakeMailgun(FakeESP):
    """POST /v3/<domain>/messages (HTTP Basic "api":<key>, form or multipart fields from, to,
    subject, text, html, h:<header>, v:<variable>, o:tag; 200 {"id", "message": "Queued.
    Thank you."}), GET /v3/domains/<domain>. A wrong key gets 401 "Forbidden"."""

    esp = "mailgun"
    base_path = "/v3/"

    def __init__(self, key: str = "good-key", *, domain: str = "shop.example", **kw) -> None:
        super().__init__(key, **kw)
        self.domain = domain

    def integration_settings(self):
        config, secrets = super().integration_settings()
        return {**config, "sender_domain": self.domain}, secrets

    def routes(self):
        return {("POST", "/v3/*"): self.messages_post, ("GET", "/v3/domains/*"): self.domain_get}

    def authenticate(self, call):
        expected = "Basic " + base64.b64encode(f"api:{self.key}".encode()).decode()
        if call.headers.get("authorization") != expected:
            return 401, {"Content-Type": "text/plain"}, b"Forbidden"
        return None

    def _domain_missing(self, name: str) -> Answer:
        return _json_answer(404, {"message": f"Domain not found: {name}"})

    def messages_post(self, call):
        match = re.fullmatch(r"/v3/([^/]+)/messages", call.path)
        if match is None:
            return self.not_found(call)
        if match.group(1) != self.domain:
            return self._domain_missing(match.group(1))
        return self.send(call)

    def domain_get(self, call):
        name = call.path.rsplit("/", 1)[-1]
        if name != self.domain:
            return self._domain_missing(name)
        return _json_answer(
            200,
            {
                "domain": {"name": name, "state": "active", "type": "custom"},
                "receiving_dns_records": [],
                "sending_dns_records": [],
            },
        )

    @staticmethod
    def _fields(call: Call) -> list[tuple[str, str]]:
        kind = call.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            message = email.message_from_bytes(
                f"Content-Type: {kind}\r\n\r\n".encode() + call.body, policy=email.policy.HTTP
            )
            fields = []
            for part in message.iter_parts():  # type: ignore[attr-defined]
                name = part.get_param("name", header="content-disposition")
                fields.append((name, part.get_content()))
            return fields
        pairs = parse_qs(call.body.decode(), keep_blank_values=True)
        return [(name, value) for name, values in pairs.items() for value in values]

    def read(self, call):
        fields = self._fields(call)
        to = [_addr(value) for name, value in fields if name == "to"]
        one = dict(fields)
        return Sent(
            to=to,
            subject=one.get("subject", ""),
            metadata={name[2:]: value for name, value in fields if name.startswith("v:")},
            headers={name[2:]: value for name, value in fields if name.startswith("h:")},
            tags=[value for name, value in fields if name == "o:tag"],
            html=one.get("html", ""),
            text=one.get("text", ""),
        )

    def accept(self, sent):
        sent.message_id = f"<{time.strftime('%Y%m%d%H%M%S')}.{self.next_id()}@{self.domain}>"
        return _json_answer(200, {"id": sent.message_id, "message": "Queued. Thank you."})

    def refusal_answer(self, refusal, sent):
        if refusal == "invalid":
            return _json_answer(
                400, {"message": "to parameter is not a valid address. please check documentation"}
            )
        if refusal == "throttled":
            return _json_answer(429, {"message": "Too many requests"})
        return _json_answer(503, {"message": "Service Unavailable"})


# --- Postmark --------------------------------------------------------------------------------


class FakePostmark(FakeESP):
    """POST /email (X-Postmark-Server-Token; 200 {"To", "SubmittedAt", "MessageID",
    "ErrorCode": 0, "Message": "OK"}), GET /server. Errors carry Postmark's ErrorCode:
    10 bad token (401), 300 invalid request and 406 inactive recipient (422), 429."""

    esp = "postmark"
    base_path = "/"

    def integration_settings(self):
        return {"api_url": self.url}, {"server_token": self.key}

    def routes(self):
        return {("POST", "/email"): self.send, ("GET", "/server"): self.server_get}

    @staticmethod
    def _error(status: int, code: int, message: str) -> Answer:
        return _json_answer(status, {"ErrorCode": code, "Message": message})

    def authenticate(self, call):
        token = call.headers.get("x-postmark-server-token")
        if not token:
            return self._error(
                401,
                10,
                "No Account or Server API tokens were supplied in the HTTP headers. Please add "
                "a header for either X-Postmark-Server-Token or X-Postmark-Account-Token.",
            )
        if token != self.key:
            return self._error(
                401,
                10,
                "The Server Token you provided in the X-Postmark-Server-Token request header "
                "was invalid. Please verify that you are using a valid token.",
            )
        return None

    def server_get(self, call):
        return _json_answer(
            200,
            {"ID": 1, "Name": "Shop newsletters", "ApiTokens": [self.key], "Color": "blue"},
        )

    def read(self, call):
        data = call.json()
        return Sent(
            to=[_addr(part) for part in data["To"].split(",")],
            subject=data.get("Subject", ""),
            metadata=dict(data.get("Metadata") or {}),
            headers={h["Name"]: h["Value"] for h in data.get("Headers", [])},
            tags=[data["Tag"]] if data.get("Tag") else [],
            html=data.get("HtmlBody", ""),
            text=data.get("TextBody", ""),
        )

    def accept(self, sent):
        sent.message_id = str(uuid.uuid4())
        return _json_answer(
            200,
            {
                "To": ", ".join(sent.to),
                "SubmittedAt": time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime()),
                "MessageID": sent.message_id,
                "ErrorCode": 0,
                "Message": "OK",
            },
        )

    def refusal_answer(self, refusal, sent):
        if refusal == "invalid":
            return self._error(422, 300, f"Invalid 'To' address: '{sent.to[0]}'.")
        if refusal == "throttled":
            return self._error(429, 429, "Rate limit exceeded.")
        return self._error(500, 0, "Internal Server Error")


# --- Brevo v3 --------------------------------------------------------------------------------


class FakeBrevo(FakeESP):
    """POST /v3/smtp/email (api-key header; 201 {"messageId"}), GET /v3/account. Errors:
    {"code", "message"} (401 unauthorized "Key not found")."""

    esp = "brevo"
    base_path = "/v3/"

    def routes(self):
        return {("POST", "/v3/smtp/email"): self.send, ("GET", "/v3/account"): self.account}

    def authenticate(self, call):
        if call.headers.get("api-key") != self.key:
            return _json_answer(401, {"code": "unauthorized", "message": "Key not found"})
        return None

    def account(self, call):
        return _json_answer(
            200,
            {
                "email": "owner@shop.example",
                "firstName": "Olga",
                "lastName": "Owner",
                "companyName": "Shop",
                "plan": [{"type": "free", "credits": 300, "creditsType": "sendLimit"}],
            },
        )

    def read(self, call):
        data = call.json()
        headers = dict(data.get("headers", {}))
        custom = headers.get("X-Mailin-custom")
        return Sent(
            to=[to["email"] for to in data["to"]],
            subject=data.get("subject", ""),
            metadata=json.loads(custom) if custom else {},
            headers=headers,
            tags=list(data.get("tags", [])),
            html=data.get("htmlContent", ""),
            text=data.get("textContent", ""),
        )

    def accept(self, sent):
        sent.message_id = f"<{time.strftime('%Y%m%d%H%M')}.{self.next_id()}@smtp-relay.mailin.fr>"
        return _json_answer(201, {"messageId": sent.message_id})

    def refusal_answer(self, refusal, sent):
        if refusal == "invalid":
            return _json_answer(
                400, {"code": "invalid_parameter", "message": "email is not valid in to"}
            )
        if refusal == "throttled":
            return _json_answer(
                429,
                {"code": "too_many_requests", "message": "The expected rate limit is exceeded."},
            )
        return _json_answer(503, {"code": "service_unavailable", "message": "Service Unavailable"})


# --- SparkPost v1 ----------------------------------------------------------------------------


class FakeSparkPost(FakeESP):
    """POST /api/v1/transmissions/ (Authorization: <key>; 200 {"results": {"id",
    "total_accepted_recipients", "total_rejected_recipients"}}), GET /api/v1/account.
    Errors: {"errors": [{"message", "description", "code"}]}."""

    esp = "sparkpost"
    base_path = "/api/v1/"

    def routes(self):
        return {
            ("POST", "/api/v1/transmissions/"): self.send,
            ("POST", "/api/v1/transmissions"): self.send,
            ("GET", "/api/v1/account"): self.account,
        }

    @staticmethod
    def _errors(status: int, message: str, description: str = "", code: str = "") -> Answer:
        error = {"message": message}
        if description:
            error["description"] = description
        if code:
            error["code"] = code
        return _json_answer(status, {"errors": [error]})

    def authenticate(self, call):
        if call.headers.get("authorization") != self.key:
            return self._errors(401, "Unauthorized.")
        return None

    def account(self, call):
        return _json_answer(
            200,
            {"results": {"customer_id": 123456, "company_name": "Shop", "status": "active"}},
        )

    def read(self, call):
        data = call.json()
        content = data.get("content", {})
        return Sent(
            to=[r["address"]["email"] for r in data["recipients"]],
            subject=content.get("subject", ""),
            metadata=dict(data.get("metadata") or {}),
            headers=dict(content.get("headers") or {}),
            tags=[data["campaign_id"]] if data.get("campaign_id") else [],
            html=content.get("html", ""),
            text=content.get("text", ""),
        )

    def accept(self, sent):
        sent.message_id = str(7033000000000000000 + self.next_id())
        return _json_answer(
            200,
            {
                "results": {
                    "total_rejected_recipients": 0,
                    "total_accepted_recipients": len(sent.to),
                    "id": sent.message_id,
                }
            },
        )

    def refusal_answer(self, refusal, sent):
        if refusal == "invalid":
            return self._errors(
                422, "invalid data format/type", "Invalid email address in recipients", "1300"
            )
        if refusal == "throttled":
            return self._errors(429, "Too many requests")
        return self._errors(503, "Service Unavailable")


# --- Resend ----------------------------------------------------------------------------------


class FakeResend(FakeESP):
    """POST /emails (Authorization: Bearer <key>; 200 {"id"}), GET /domains. Errors:
    {"statusCode", "message", "name"}: 401 missing_api_key, 403 invalid_api_key, 422
    validation_error, 429 rate_limit_exceeded."""

    esp = "resend"
    base_path = "/"

    def routes(self):
        return {("POST", "/emails"): self.send, ("GET", "/domains"): self.domains}

    @staticmethod
    def _error(status: int, name: str, message: str) -> Answer:
        return _json_answer(status, {"statusCode": status, "message": message, "name": name})

    def authenticate(self, call):
        key = _bearer(call)
        if not key:
            return self._error(
                401, "missing_api_key", "Missing API key in the authorization header."
            )
        if key != self.key:
            return self._error(403, "invalid_api_key", "API key is invalid")
        return None

    def domains(self, call):
        return _json_answer(
            200,
            {
                "object": "list",
                "data": [
                    {
                        "id": "4dd369bc-aa82-4ff3-97de-514ae3000ee0",
                        "name": "shop.example",
                        "status": "verified",
                        "region": "us-east-1",
                    }
                ],
            },
        )

    def read(self, call):
        data = call.json()
        headers = dict(data.get("headers") or {})
        metadata = headers.get("X-Metadata")
        tags = headers.get("X-Tags")
        to = data["to"] if isinstance(data["to"], list) else [data["to"]]
        return Sent(
            to=[_addr(value) for value in to],
            subject=data.get("subject", ""),
            metadata=json.loads(metadata) if metadata else {},
            headers=headers,
            tags=json.loads(tags) if tags else [],
            html=data.get("html", ""),
            text=data.get("text", ""),
        )

    def accept(self, sent):
        sent.message_id = str(uuid.uuid4())
        return _json_answer(200, {"id": sent.message_id})

    def refusal_answer(self, refusal, sent):
        if refusal == "invalid":
            return self._error(
                422, "validation_error", "Invalid `to` field. The email address needs to follow "
                "the `email@example.com` or `Name <email@example.com>` format."
            )  # fmt: skip
        if refusal == "throttled":
            return self._error(
                429,
                "rate_limit_exceeded",
                "Too many requests. You can only make 2 requests per second.",
            )
        return self._error(500, "internal_server_error", "An unexpected error occurred.")


# --- Amazon SES v2 ---------------------------------------------------------------------------


class FakeSES(FakeESP):
    """The SES v2 API as boto3's sesv2 client calls it: POST /v2/email/outbound-emails (JSON:
    Destination, Content.Raw.Data base64, ConfigurationSetName; 200 {"MessageId"}) and GET
    /v2/email/account, each signed with AWS Signature Version 4 (checked here as AWS documents
    it). Errors name their type in the x-amzn-ErrorType header and carry
    {"message"}: UnrecognizedClientException (unknown key id) and SignatureDoesNotMatch
    (wrong secret) 403, MessageRejected 400, TooManyRequestsException 429."""

    esp = "amazon_ses"
    base_path = ""

    def __init__(
        self,
        key: str = "AKIDGOODKEY",
        *,
        secret: str = "good-secret",  # noqa: S107 (a test credential)
        region: str = "eu-west-1",
        **kw,
    ) -> None:
        super().__init__(key, **kw)
        self.secret = secret
        self.region = region

    def integration_settings(self):
        config = {"api_url": self.url, "region": self.region, "access_key_id": self.key}
        return config, {"secret_access_key": self.secret}

    def routes(self):
        return {
            ("POST", "/v2/email/outbound-emails"): self.send,
            ("GET", "/v2/email/account"): self.account,
        }

    @staticmethod
    def _error(status: int, kind: str, message: str) -> Answer:
        return _json_answer(status, {"message": message}, {"x-amzn-ErrorType": f"{kind}:"})

    def not_found(self, call):
        return self._error(404, "UnknownOperationException", "")

    def authenticate(self, call):
        match = re.fullmatch(
            r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
            r"SignedHeaders=([^,]+), Signature=([0-9a-f]+)",
            call.headers.get("authorization", ""),
        )
        if match is None:
            return self._error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        key_id, day, region, service, signed, signature = match.groups()
        if key_id != self.key:
            return self._error(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        expected = sigv4_signature(call, self.secret, day, region, service, signed.split(";"))
        if not hmac.compare_digest(expected, signature) or (region, service) != (
            self.region,
            "ses",
        ):
            return self._error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method. Consult the "
                "service documentation for details.",
            )
        return None

    def account(self, call):
        return _json_answer(
            200,
            {
                "DedicatedIpAutoWarmupEnabled": False,
                "EnforcementStatus": "HEALTHY",
                "ProductionAccessEnabled": True,
                "SendingEnabled": True,
                "SendQuota": {
                    "Max24HourSend": 50000.0,
                    "MaxSendRate": 14.0,
                    "SentLast24Hours": float(self.accepted),
                },
            },
        )

    def read(self, call):
        data = call.json()
        try:
            raw = base64.b64decode(data["Content"]["Raw"]["Data"], validate=True)
        except (KeyError, binascii.Error):
            raw = b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        metadata = message.get("X-Metadata")
        html = message.get_body(("html",))  # type: ignore[attr-defined]
        text = message.get_body(("plain",))  # type: ignore[attr-defined]
        return Sent(
            to=list(data.get("Destination", {}).get("ToAddresses", [])),
            subject=str(message.get("Subject", "")),
            metadata=json.loads(str(metadata)) if metadata else {},
            headers={name: str(value) for name, value in message.items()},
            tags=[str(v) for v in message.get_all("X-Tag", [])],
            html=html.get_content() if html is not None else "",
            text=text.get_content() if text is not None else "",
        )

    def accept(self, sent):
        sent.message_id = f"0102018c{uuid.uuid4().hex[:24]}-{self.next_id():06d}"
        return _json_answer(200, {"MessageId": sent.message_id})

    def refusal_answer(self, refusal, sent):
        if refusal == "invalid":
            return self._error(
                400,
                "MessageRejected",
                "Email address is not verified. The following identities failed the check in "
                f"region {self.region.upper()}: {sent.to[0]}",
            )
        if refusal == "throttled":
            return self._error(429, "TooManyRequestsException", "Maximum sending rate exceeded.")
        return self._error(503, "ServiceUnavailable", "Service is unavailable. Try again later.")


def sigv4_signature(
    call: Call, secret: str, day: str, region: str, service: str, signed: list[str]
) -> str:
    """AWS Signature Version 4 of a request, as AWS documents it ("Create a signed AWS API
    request"): canonical request → string to sign → HMAC chain of date, region, service."""
    query = "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
        for name, values in sorted(call.query.items())
        for value in sorted(values)
    )
    headers = "".join(
        f"{name}:{' '.join(call.headers.get(name, '').split())}\n" for name in sorted(signed)
    )
    canonical = "\n".join(
        [
            call.method,
            quote(call.path, safe="/~"),
            query,
            headers,
            ";".join(sorted(signed)),
            hashlib.sha256(call.body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            call.headers.get("x-amz-date", ""),
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


FAKES: dict[str, type[FakeESP]] = {
    fake.esp: fake
    for fake in (
        FakeSES,
        FakeSendGrid,
        FakeMailgun,
        FakePostmark,
        FakeBrevo,
        FakeSparkPost,
        FakeResend,
    )
}

__all__ = ["FAKES", "Call", "FakeESP", "Sent"]
