"""What a message says and who it is from, for any send: a campaign run's template version
(a drip step's own version per row), a send request's template version, or a send request's
inline content (POST /v1/message/email and /sms, template test sends).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from types import SimpleNamespace
from typing import Any

from django.conf import settings

from campaigns.models import (
    ABTest,
    CampaignResend,
    CampaignRun,
    Delivery,
    RunKind,
    SendKind,
    SendRequest,
)
from campaigns.utm import UtmTags, campaign_utm
from config.core.models import Organisation
from contacts.email_addresses import address_format, domain_ascii
from contacts.models import CustomField
from templates.models import TemplateVersion
from templates.services import RenderedMessage, contact_context, template_render

SMS_SENDER_MAX = 11  # alphanumeric sender ids are at most 11 characters

# Producers above this layer that give every message of a send request further top-level
# template names (a workflow step's `$order` and `$event`), asked once per sending task:
# send request → {name: value}, {} when the request is not theirs.
RequestNames = Callable[[SendRequest], Mapping[str, Any]]
_REQUEST_NAMES: list[RequestNames] = []


def request_names_register(provider: RequestNames) -> None:
    if provider not in _REQUEST_NAMES:
        _REQUEST_NAMES.append(provider)


def request_names(send_request: SendRequest) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for provider in _REQUEST_NAMES:
        names.update(provider(send_request))
    return names


@dataclass(frozen=True)
class ContentOverride:
    """What an A/B test variant (or a resend) changes over its template version; blank:
    unchanged."""

    subject: str = ""
    preheader: str = ""
    from_name: str = ""


def run_overrides(run: CampaignRun) -> tuple[dict[int | None, ContentOverride], bool]:
    """The run's per-row content changes, and whether an A/B winner is still to come. An
    A/B run's rows carry their variant; once a winner is chosen the rows without one (the
    rest of the audience) get the winner's. A resend run's rows get the resend's subject
    over the first run's winner, if it had one."""
    source_run_id = run.parent_id if run.kind == RunKind.RESEND else run.pk
    test = (
        ABTest.objects.filter(run_id=source_run_id).prefetch_related("variants").first()
        if source_run_id is not None
        else None
    )
    overrides: dict[int | None, ContentOverride] = {}
    if test is not None:
        for variant in test.variants.all():
            overrides[variant.position] = ContentOverride(
                subject=variant.subject, preheader=variant.preheader, from_name=variant.from_name
            )
        if test.winner is not None and test.winner in overrides:
            overrides[None] = overrides[test.winner]
    if run.kind == RunKind.RESEND:
        resend = CampaignResend.objects.filter(campaign_id=run.campaign_id).first()
        winner = overrides.get(None, ContentOverride())
        overrides = {None: replace(winner, subject=resend.subject if resend else "")}
    pending = run.kind != RunKind.RESEND and test is not None and test.winner is None
    return overrides, pending


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
    preheader: str = ""
    html: str = ""
    text: str = ""
    # A test send (SendKind.TEST): the message is marked as one (campaigns.delivery.email
    # test_mark) and promo placeholders get sample codes, never a pool's.
    test: bool = False
    # The integration the scope names: a campaign's "Email service" or a send request's, else
    # the one its template names; None: each channel's default
    # (campaigns.delivery.providers.integration_for).
    integration_id: int | None = None
    # The campaign's UTM tags for its tracked links (campaigns.utm); None: no tagging.
    utm: UtmTags | None = None
    # What rows of a campaign run change over the content, by Delivery.ab_variant (the key
    # None: rows without a variant, e.g. the A/B winner's send to the rest); see
    # run_overrides. `overrides_run` is set while an A/B winner is still to come.
    overrides: dict[int | None, ContentOverride] = field(default_factory=dict)
    overrides_run: int | None = None
    # Further top-level template names of every message (request_names); `extra` of a row
    # (`$promo`) wins over them.
    names: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_request(cls, send_request: SendRequest) -> SendContent:
        version = send_request.template_version
        content = cls(
            template_version=version,
            from_email=send_request.from_email,
            from_name=send_request.from_name,
            skip_personalisation=send_request.skip_personalisation,
            tags=[str(tag) for tag in send_request.tags or []],
            subject=send_request.subject,
            preheader=send_request.preheader,
            html=send_request.html,
            text=send_request.text,
            test=send_request.kind == SendKind.TEST,
            integration_id=send_request.integration_id or template_integration_id(version),
            names=request_names(send_request),
        )
        campaign = send_request.campaign
        if campaign is not None:
            # A campaign's test send reads what a run of the campaign reads (of_run).
            content.integration_id = campaign.integration_id or content.integration_id
            content.utm = campaign_utm(
                campaign, template_name=version.template.name if version else ""
            )
        return content

    @classmethod
    def of_run(cls, run: CampaignRun) -> SendContent:
        overrides, pending = run_overrides(run)
        return cls(
            template_version=run.template_version,
            tags=[f"campaign-{run.campaign_id}", f"run-{run.pk}"],
            integration_id=run.campaign.integration_id
            or template_integration_id(run.template_version),
            utm=run_utm(run),
            overrides=overrides,
            overrides_run=run.pk if pending else None,
        )

    @classmethod
    def of_version(cls, version: TemplateVersion | None) -> SendContent:
        return cls(template_version=version)


def run_utm(run: CampaignRun) -> UtmTags | None:
    """The UTM tags of a run's links: its campaign's, with the run's template name as the
    default utm_content."""
    version = run.template_version
    return campaign_utm(run.campaign, template_name=version.template.name if version else "")


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
    domain = domain_ascii(address.rpartition("@")[2]) or "localhost"
    return address_format(name, address), domain


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
        preheader=content.preheader,
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
    if content.names:
        extra = {**content.names, **(extra or {})}
    version = delivery.template_version or content.template_version
    if version is not None:
        override = _override(content, delivery)
        if override is None:
            return template_render(
                version=version, contact=contact, data=delivery.params, extra=extra
            )
        return _render_overridden(version, override, contact, delivery, extra)
    source = _inline_source(content, delivery.channel)
    return template_render(template=source, contact=contact, data=delivery.params, extra=extra)


def _override(content: SendContent, delivery: Delivery) -> ContentOverride | None:
    """The row's content change (its A/B variant's, or the winner's), if any. A sender that
    started before the winner was chosen reads it when it meets the first row without a
    variant."""
    key = delivery.ab_variant
    if key is None and content.overrides_run is not None and None not in content.overrides:
        run = CampaignRun.objects.filter(pk=content.overrides_run).first()
        if run is not None:
            content.overrides, pending = run_overrides(run)
            content.overrides_run = run.pk if pending else None
    return content.overrides.get(key)


def _render_overridden(
    version: TemplateVersion,
    override: ContentOverride,
    contact: Any,
    delivery: Delivery,
    extra: Mapping[str, Any] | None = None,
) -> RenderedMessage:
    # template_render reads these attributes; the version itself stays as published.
    source = SimpleNamespace(
        channel=version.channel,
        subject=override.subject or version.subject,
        preheader=override.preheader or version.preheader,
        html=version.html,
        text=version.text,
        sms_text=version.sms_text,
    )
    rendered = template_render(
        template=source,  # type: ignore[arg-type]
        contact=contact,
        data=delivery.params,
        extra=extra,
    )
    return replace(rendered, from_name=override.from_name) if override.from_name else rendered
