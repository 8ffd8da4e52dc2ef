"""The tracking webhooks of the email services Herald reaches through django-anymail, as each
service documents them: payload builders (one event of each kind a test needs, in the
service's own format and field names) and each service's way of authenticating its calls.

Each builder takes what the service knows of a message: the recipient, the id the service
gave the message (its own message id; for SendGrid Anymail's `anymail_id` custom arg) and the
metadata the message was sent with (Herald's `herald_id`), which every service hands back
in its own place: SendGrid as top-level event fields, Mailgun's user-variables, Postmark's
Metadata, Brevo's X-Mailin-custom, SparkPost's rcpt_meta, and the X-Metadata header that
Resend and Amazon SES echo among the message's headers.

Authentication: HTTP basic auth with the integration's webhook secret ("user:password";
SendGrid, Postmark, Brevo, SparkPost, and Amazon SES through its SNS subscription),
Mailgun's HMAC-SHA256 signature of timestamp + token with the webhook signing key, and
Resend's Svix signature (svix-id, svix-timestamp, svix-signature).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

BASIC = "herald-hooks:pa55-w0rd"  # user:password of the basic-auth services
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
SVIX_KEY = b"a-resend-signing-key-32-bytes!!!"
SVIX_SECRET = "whsec_" + base64.b64encode(SVIX_KEY).decode()

Metadata = dict[str, Any] | None


def basic_header(credentials: str = BASIC) -> dict[str, str]:
    """Django test-client headers for HTTP basic auth."""
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


# --- SendGrid (Event Webhook: a JSON array of events; basic auth) -----------------------------


def sendgrid_event(kind: str, recipient: str, anymail_id: str, metadata: Metadata = None, **extra):
    """One event of SendGrid's Event Webhook. The message's custom_args (Anymail's
    `anymail_id`, Herald's `herald_id`) come back as fields of the event itself."""
    return {
        "email": recipient,
        "timestamp": int(time.time()),
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": kind,
        "category": ["cat facts"],
        "sg_event_id": base64.b64encode(uuid.uuid4().bytes).decode(),
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "anymail_id": anymail_id,
        **(metadata or {}),
        **extra,
    }


# --- Mailgun (JSON webhooks signed with the webhook signing key) ------------------------------


def mailgun_signed(event_data: dict, *, key: str = MAILGUN_KEY, at: float | None = None) -> dict:
    """A Mailgun webhook body: the event under "event-data", signed under "signature"."""
    timestamp = str(int(at if at is not None else time.time()))
    token = uuid.uuid4().hex + uuid.uuid4().hex[:18]
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature.hexdigest()},
        "event-data": event_data,
    }


def _mailgun_message_id(message_id: str) -> str:
    # Mailgun's events name the message by its Message-ID header without the angle brackets.
    return message_id.strip().removeprefix("<").removesuffix(">")


def mailgun_failed(
    severity: str, reason: str, message_id: str, recipient: str, metadata: Metadata = None
) -> dict:
    """Mailgun's documented "failed" event (permanent or temporary)."""
    return {
        "event": "failed",
        "id": uuid.uuid4().hex[:22],
        "timestamp": time.time(),
        "log-level": "error",
        "severity": severity,
        "reason": reason,
        "recipient": recipient,
        "recipient-domain": recipient.rpartition("@")[2],
        "envelope": {"sender": "bob@sandbox.mailgun.org", "transport": "smtp"},
        "delivery-status": {
            "code": 550 if severity == "permanent" else 452,
            "message": "No such mailbox" if severity == "permanent" else "Mailbox full",
            "description": "Not delivered",
            "attempt-no": 1,
        },
        "message": {"headers": {"message-id": _mailgun_message_id(message_id), "to": recipient}},
        "user-variables": dict(metadata or {}),
    }


def mailgun_event(kind: str, message_id: str, recipient: str, metadata: Metadata = None) -> dict:
    """Mailgun's "delivered", "opened", "clicked" or "complained" event."""
    event: dict[str, Any] = {
        "event": kind,
        "id": uuid.uuid4().hex[:22],
        "timestamp": time.time(),
        "log-level": "warn" if kind == "complained" else "info",
        "recipient": recipient,
        "message": {"headers": {"message-id": _mailgun_message_id(message_id), "to": recipient}},
        "user-variables": dict(metadata or {}),
    }
    if kind == "delivered":
        event["delivery-status"] = {"code": 250, "message": "OK", "description": ""}
    return event


# --- Postmark (one JSON event per request; basic auth) ----------------------------------------


def postmark_delivery(message_id: str, recipient: str, metadata: Metadata = None) -> dict:
    """Postmark's documented Delivery webhook."""
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": recipient,
        "Tag": "welcome-email",
        "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
        "Details": "Test delivery webhook details",
        "Metadata": dict(metadata or {}),
    }


def postmark_bounce(
    kind: str, bounce_id: int, message_id: str, email: str, metadata: Metadata = None
) -> dict:
    """Postmark's documented Bounce webhook."""
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": bounce_id,
        "Type": kind,
        "TypeCode": 1 if kind == "HardBounce" else 4096,
        "Name": "Hard bounce" if kind == "HardBounce" else "Soft bounce",
        "Tag": "Test",
        "MessageID": message_id,
        "Metadata": dict(metadata or {"a_key": "a_value"}),
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "Test bounce details",
        "Email": email,
        "From": "sender@example.com",
        "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Test subject",
    }


def postmark_complaint(
    complaint_id: int, message_id: str, email: str, metadata: Metadata = None
) -> dict:
    """Postmark's documented SpamComplaint webhook."""
    return {
        "RecordType": "SpamComplaint",
        "MessageStream": "outbound",
        "ID": complaint_id,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        "MessageID": message_id,
        "Metadata": dict(metadata or {}),
        "Description": "The subscriber explicitly marked this message as spam.",
        "Details": "Test spam complaint details",
        "Email": email,
        "BouncedAt": "2019-11-05T16:33:54.9070259Z",
    }


# --- Brevo (transactional webhooks; basic auth; no event ids) ---------------------------------


def brevo_event(kind: str, recipient: str, message_id: str, metadata: Metadata = None, **extra):
    """Brevo's transactional webhook event; the message's X-Mailin-custom header comes back as
    a field of the same name."""
    event = {
        "event": kind,
        "email": recipient,
        "id": 26224,
        "date": "YYYY-MM-DD HH:mm:ss",
        "ts": 1598634509,
        "message-id": message_id,
        "ts_event": 1598034509,
        "subject": "Subject Line",
        "tag": '["transactionalTag"]',
        "sending_ip": "185.41.28.109",
        "ts_epoch": 1598634509223,
        "tags": ["myFirstTransactional"],
        **extra,
    }
    if metadata:
        event["X-Mailin-custom"] = json.dumps(metadata)
    return event


# --- SparkPost (a JSON array of {"msys": {class: event}}; basic auth) -------------------------


def sparkpost(
    event_class: str,
    kind: str,
    recipient: str,
    transmission_id: str,
    metadata: Metadata = None,
    **extra,
) -> dict:
    """One SparkPost event; the transmission's metadata comes back as rcpt_meta."""
    return {
        "msys": {
            event_class: {
                "type": kind,
                "event_id": f"{kind}-{uuid.uuid4().int % 10**17}",
                "transmission_id": transmission_id,
                "message_id": "000443ee14578172be22",
                "raw_rcpt_to": recipient,
                "rcpt_to": recipient,
                "timestamp": str(int(time.time())),
                "rcpt_meta": dict(metadata or {"customKey": "customValue"}),
                **extra,
            }
        }
    }


# --- Resend (Svix-signed) ---------------------------------------------------------------------


def svix_headers(body: bytes, *, msg_id: str | None = None, at: float | None = None, key=SVIX_KEY):
    """The Svix signature headers Resend sends (a decoy v1 signature first, as Svix sends one
    per active secret)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(at if at is not None else time.time()))
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "HTTP_SVIX_ID": msg_id,
        "HTTP_SVIX_TIMESTAMP": stamp,
        "HTTP_SVIX_SIGNATURE": "v1,bm90LXRoaXMtb25l v1," + base64.b64encode(digest).decode(),
    }


def resend_event(
    kind: str, recipient: str, email_id: str, metadata: Metadata = None, **data
) -> bytes:
    """A Resend webhook event; a message sent with custom headers (Anymail puts metadata in
    X-Metadata) has them listed under data.headers."""
    headers = [{"name": "X-Metadata", "value": json.dumps(metadata)}] if metadata else []
    return json.dumps(
        {
            "type": kind,
            "created_at": "2024-11-22T23:41:12.126Z",
            "data": {
                "created_at": "2024-11-22T23:41:11.894719+00:00",
                "email_id": email_id,
                "from": "Acme <onboarding@resend.dev>",
                "to": [recipient],
                "subject": "Sending this example",
                **({"headers": headers} if headers else {}),
                **data,
            },
        }
    ).encode()


# --- Amazon SES (through Amazon SNS; basic auth) ----------------------------------------------


def ses_notification(ses_event: dict) -> dict:
    """An Amazon SNS Notification carrying an SES event as its Message."""
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:SES_Events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_event) + "\n",
        "Timestamp": "2018-03-26T17:58:59.675Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE-SIGNATURE==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def ses_mail(recipient: str, message_id: str, metadata: Metadata = None) -> dict:
    """The "mail" object of an SES event; the message's headers (X-Metadata among them) are
    included as SES does by default."""
    headers = [{"name": "X-Metadata", "value": json.dumps(metadata)}] if metadata else []
    return {
        "timestamp": "2016-01-27T14:59:38.237Z",
        "source": "john@example.com",
        "messageId": message_id,
        "destination": [recipient],
        "headersTruncated": False,
        "headers": headers,
    }


def ses_bounce(
    kind: str, subkind: str, recipient: str, message_id: str, metadata: Metadata = None
) -> dict:
    """Amazon SES's documented bounce notification (notification-examples)."""
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": kind,
            "bounceSubType": subkind,
            "reportingMTA": "dns; email.example.com",
            "bouncedRecipients": [
                {
                    "emailAddress": recipient,
                    "status": "5.1.1",
                    "action": "failed",
                    "diagnosticCode": "smtp; 550 5.1.1 <jane@example.com>... User unknown",
                }
            ],
            "timestamp": "2016-01-27T14:59:44.101Z",
            "feedbackId": "00000138111222aa-44455566-cccc-cccc-cccc-ddddaaaa068a-000000",
        },
        "mail": ses_mail(recipient, message_id, metadata),
    }


def ses_complaint(recipient: str, message_id: str, metadata: Metadata = None) -> dict:
    """Amazon SES's documented complaint notification."""
    return {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "AnyCompany Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": recipient}],
            "complaintFeedbackType": "abuse",
            "timestamp": "2016-01-27T14:59:38.237Z",
            "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
        },
        "mail": ses_mail(recipient, message_id, metadata),
    }


def ses_delivery(recipient: str, message_id: str, metadata: Metadata = None) -> dict:
    """Amazon SES's documented delivery notification."""
    return {
        "notificationType": "Delivery",
        "mail": ses_mail(recipient, message_id, metadata),
        "delivery": {
            "timestamp": "2016-01-27T14:59:38.237Z",
            "recipients": [recipient],
            "processingTimeMillis": 546,
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
            "smtpResponse": "250 ok:  Message 64111812 accepted",
        },
    }


def sns_headers(message: dict) -> dict[str, str]:
    """The headers Amazon SNS sends with a message (Django test-client form)."""
    return {
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": message["Type"],
        "HTTP_X_AMZ_SNS_MESSAGE_ID": message["MessageId"],
    }
