"""What a message says and who it is from, for any send: a campaign run's template version
(a drip step's own version per row), a send request's template version, or a send request's
inline content (POST /v1/message/email and /sms, template test sends).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formataddr, parseaddr
from types import SimpleNamespace
from typing import Any

from django.conf import settings

from campaigns.models import CampaignRun, Delivery, SendRequest
from config.core.models import Organisation
from contacts.models import CustomField
from templates.models import TemplateVersion
from templates.services import RenderedMessage, contact_context, template_render

SMS_SENDER_MAX = 11  # alphanumeric sender ids are at most 11 characters


@dataclass
class SendContent:
    """The content and sender of a scope's messages. A delivery's own template version (drip
    steps) wins over `template_version`; without either, the inline subject/html/text are
    rendered (Velocity, unless `skip_personalisation`)."""

    template_version: TemplateVersion | None = None
    from_email: str = ""
    from_name: str = ""
    skip_personalisation: bool = False
    tags: list[str] = field(default_factory=list)
    subject: str = ""
    html: str = ""
    text: str = ""
    # The integration the scope names: a campaign's "Email service" or a send request's, else
    # the one its template names; None: each channel's default
    # (campaigns.delivery.providers.integration_for).
    integration_id: int | None = None

    @classmethod
    def of_request(cls, send_request: SendRequest) -> SendContent:
        return cls(
            template_version=send_request.template_version,
            from_email=send_request.from_email,
            from_name=send_request.from_name,
            skip_personalisation=send_request.skip_personalisation,
            tags=[str(tag) for tag in send_request.tags or []],
            subject=send_request.subject,
            html=send_request.html,
            text=send_request.text,
            integration_id=send_request.integration_id
            or template_integration_id(send_request.template_version),
        )

    @classmethod
    def of_run(cls, run: CampaignRun) -> SendContent:
        return cls(
            template_version=run.template_version,
            tags=[f"campaign-{run.campaign_id}", f"run-{run.pk}"],
            integration_id=run.campaign.integration_id
            or template_integration_id(run.template_version),
        )

    @classmethod
    def of_version(cls, version: TemplateVersion | None) -> SendContent:
        return cls(template_version=version)


def template_integration_id(version: TemplateVersion | None) -> int | None:
    """The integration a template version's template names (the one it was imported from or
    published to, or chosen on its page), if any."""
    return version.template.integration_id if version is not None else None


def email_sender(content: SendContent) -> tuple[str, str]:
    """(From header, domain for Message-IDs): the content's address, else the template
    version's, else the organisation's default sender, else DEFAULT_FROM_EMAIL."""
    version = content.template_version
    organisation = Organisation.load()
    address = (
        content.from_email
        or (version.from_email if version else "")
        or organisation.default_sender_email
    )
    name = content.from_name or (version.from_name if version else "")
    if not address:
        default_name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
        name = name or default_name
    else:
        name = name or organisation.default_sender_name or organisation.name
    domain = address.rpartition("@")[2] or "localhost"
    return (formataddr((name, address)) if name else address), domain


def sms_sender(content: SendContent) -> str:
    version = content.template_version
    sender = content.from_name or (version.from_name if version else "")
    return (sender or Organisation.load().name)[:SMS_SENDER_MAX]


def _inline_source(content: SendContent, channel: str) -> Any:
    # template_render reads these attributes from a template or version; inline content
    # offers the same shape.
    return SimpleNamespace(
        channel=channel,
        subject=content.subject,
        preheader="",
        html=content.html,
        text=content.text,
        sms_text=content.text,
    )


def delivery_render(
    content: SendContent,
    delivery: Delivery,
    custom_fields: list[CustomField],
    extra: Mapping[str, Any] | None = None,
) -> RenderedMessage:
    """Personalise the content for one delivery; `extra`: further top-level template names
    (`$promo`). Raises TemplateError."""
    if content.skip_personalisation:
        return RenderedMessage(subject=content.subject, html=content.html, text=content.text)
    contact = (
        contact_context(delivery.contact, custom_fields=custom_fields) if delivery.contact else {}
    )
    version = delivery.template_version or content.template_version
    if version is not None:
        return template_render(version=version, contact=contact, data=delivery.params, extra=extra)
    source = _inline_source(content, delivery.channel)
    return template_render(template=source, contact=contact, data=delivery.params, extra=extra)
