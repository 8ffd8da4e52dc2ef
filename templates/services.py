"""Template writes (create, update, publish, duplicate, delete) and rendering a message for one
recipient."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import ProtectedError

from config.core.errors import FieldError
from config.core.external_keys import external_key_clean, external_key_taken
from contacts.models import ChannelType, Contact, CustomField
from templates.engine import CompiledTemplate, TemplateContext, compile_template
from templates.errors import (
    HtmlSanitizeError,
    TemplateFieldError,
    TemplateInUseError,
    TemplateRenderError,
    TemplateSyntaxError,
    TemplateValidationError,
)
from templates.extensions import extensions_check
from templates.languages import (
    language_publish_errors,
    template_languages_copy,
    template_languages_snapshot,
)
from templates.models import EditorKind, MessageTemplate, TemplateVersion
from templates.sanitize import html_size_check, html_to_text, inline_css, sanitize_html

# Fields holding Velocity source; each is compiled on save so mistakes surface then.
TEMPLATE_FIELDS = ("subject", "preheader", "html", "text", "sms_text")
_UNSET: Any = object()
COPY_SUFFIX = " (copy)"


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    html: str
    text: str
    # A sender name for this one message in place of its send's (an A/B test variant's).
    from_name: str = ""


# Bounded: a worker sends a handful of templates at a time, and a parsed 1 MB template is big.
@lru_cache(maxsize=64)
def compiled(source: str) -> CompiledTemplate:
    """Templates are compiled once per process: a campaign renders one source many times."""
    return compile_template(source)


def _check_source(field: str, source: str, errors: list[TemplateFieldError]) -> None:
    try:
        compiled(source)
    except TemplateSyntaxError as exc:
        errors.append(TemplateFieldError(field, exc.message, exc.line, exc.column))


def template_prepare(template: MessageTemplate, *, text_given: bool) -> None:
    """Validate and normalise the content of an unsaved `template` in place (sanitised HTML,
    derived text); raise TemplateValidationError naming every bad field."""
    errors: list[TemplateFieldError] = []
    template.name = (template.name or "").strip()
    if not template.name:
        errors.append(TemplateFieldError("name", "This field is required."))
    elif len(template.name) > 200:
        errors.append(TemplateFieldError("name", "At most 200 characters."))
    if template.channel not in ChannelType.values:
        errors.append(
            TemplateFieldError(
                "channel", f"Unknown channel; one of: {', '.join(ChannelType.values)}."
            )
        )
    if "\n" in template.subject or "\r" in template.subject:
        errors.append(TemplateFieldError("subject", "The subject must be a single line."))
    if template.from_email:
        try:
            validate_email(template.from_email)
        except ValidationError:
            errors.append(TemplateFieldError("from_email", "Enter a valid email address."))
    try:
        html_size_check(template.html)  # before anything parses it
    except HtmlSanitizeError as exc:
        errors.append(TemplateFieldError("html", exc.message))
    for field in TEMPLATE_FIELDS:
        if field == "text" and not text_given:
            continue
        if field == "html" and any(error.field == "html" for error in errors):
            continue  # too big to parse
        _check_source(field, getattr(template, field), errors)
    if not any(error.field == "html" for error in errors) and template.html:
        try:
            template.html = sanitize_html(template.html)
        except (HtmlSanitizeError, TemplateSyntaxError) as exc:
            # The cleaned HTML is compiled again and can be over the engine's limits.
            errors.append(TemplateFieldError("html", exc.message, exc.line, exc.column))
    _external_key_check(template, errors)
    if errors:
        raise TemplateValidationError(errors)
    if not text_given and (template.text_generated or not template.text):
        try:
            template.text = html_to_text(template.html) if template.html else ""
        except (HtmlSanitizeError, TemplateSyntaxError) as exc:
            raise TemplateValidationError([TemplateFieldError("text", exc.message)]) from None
        template.text_generated = bool(template.text)
    elif text_given:
        template.text_generated = False


def _external_key_check(template: MessageTemplate, errors: list[TemplateFieldError]) -> None:
    """The integrator's key (config.core.external_keys): well formed and unused."""
    try:
        template.external_key = external_key_clean(template.external_key, field="external_key")
    except FieldError as exc:
        errors.append(TemplateFieldError("external_key", exc.message))
        return
    if external_key_taken(MessageTemplate, template.external_key, pk=template.pk):
        errors.append(
            TemplateFieldError(
                "external_key", f"Another template has the external key '{template.external_key}'."
            )
        )


@transaction.atomic
def template_create(
    *,
    name: str,
    channel: str = ChannelType.EMAIL,
    subject: str = "",
    preheader: str = "",
    from_name: str = "",
    from_email: str = "",
    html: str = "",
    text: str = "",
    sms_text: str = "",
    provider: str = "",
    external_id: str | None = None,
    external_key: str | None = None,
) -> MessageTemplate:
    template = MessageTemplate(
        external_key=external_key,
        name=name,
        channel=channel,
        subject=subject,
        preheader=preheader,
        from_name=from_name,
        from_email=from_email,
        html=html,
        text=text,
        sms_text=sms_text,
        provider=provider,
        external_id=external_id or None,
    )
    template_prepare(template, text_given=bool(text))
    template.save()
    return template


@transaction.atomic
def template_update(
    *,
    template: MessageTemplate,
    name: str = _UNSET,
    channel: str = _UNSET,
    subject: str = _UNSET,
    preheader: str = _UNSET,
    from_name: str = _UNSET,
    from_email: str = _UNSET,
    html: str = _UNSET,
    text: str = _UNSET,
    sms_text: str = _UNSET,
    provider: str = _UNSET,
    external_id: str | None = _UNSET,
    external_key: str | None = _UNSET,
) -> MessageTemplate:
    """Change the draft; published versions stay as they were. Arguments left out keep
    their value. An empty `text` goes back to being derived from the HTML."""
    changes = {
        key: value
        for key, value in {
            "name": name,
            "channel": channel,
            "subject": subject,
            "preheader": preheader,
            "from_name": from_name,
            "from_email": from_email,
            "html": html,
            "text": text,
            "sms_text": sms_text,
            "provider": provider,
            "external_id": external_id,
            "external_key": external_key,
        }.items()
        if value is not _UNSET
    }
    if "external_id" in changes:
        changes["external_id"] = changes["external_id"] or None
    text_given = bool(changes.get("text"))
    if "text" in changes and not text_given:
        template.text_generated = True
    for key, value in changes.items():
        setattr(template, key, value)
    template_prepare(template, text_given=text_given)
    template.save()
    return template


def _publish_errors(template: MessageTemplate) -> list[TemplateFieldError]:
    return _content_errors(template) + extensions_check(template)


def _content_errors(template: MessageTemplate) -> list[TemplateFieldError]:
    if template.channel == ChannelType.EMAIL:
        errors = []
        if not template.subject.strip():
            errors.append(
                TemplateFieldError("subject", "An email needs a subject to be published.")
            )
        if not template.html.strip() and not template.text.strip():
            errors.append(
                TemplateFieldError("html", "An email needs an HTML or a text body to be published.")
            )
        return errors
    if not template.sms_text.strip():
        return [
            TemplateFieldError(
                "sms_text", f"A {template.get_channel_display()} message needs a text."
            )
        ]
    return []


@transaction.atomic
def template_publish(*, template: MessageTemplate, user: Any = None) -> TemplateVersion:
    """Freeze the current content, with every language version, as the next version."""
    # Lock the row: two simultaneous publishes must not both take the same number.
    locked = MessageTemplate.objects.select_for_update().get(pk=template.pk)
    errors = _publish_errors(locked) + language_publish_errors(locked)
    if errors:
        raise TemplateValidationError(errors)
    number = locked.version + 1
    version = TemplateVersion.objects.create(
        template=locked,
        number=number,
        published_by=user if getattr(user, "is_authenticated", False) else None,
        **{field: getattr(locked, field) for field in TemplateVersion.CONTENT_FIELDS},
    )
    template_languages_snapshot(template=locked, version=version)
    MessageTemplate.objects.filter(pk=locked.pk).update(version=number)
    template.version = number
    return version


@transaction.atomic
def template_duplicate(*, template: MessageTemplate) -> MessageTemplate:
    """A new draft with the same content and language versions; versions are not copied
    (the copy starts at 0)."""
    name = template.name[: 200 - len(COPY_SUFFIX)] + COPY_SUFFIX
    copy = template_create(
        name=name,
        channel=template.channel,
        subject=template.subject,
        preheader=template.preheader,
        from_name=template.from_name,
        from_email=template.from_email,
        html=template.html,
        # A derived text follows the HTML in the copy too.
        text="" if template.text_generated else template.text,
        sms_text=template.sms_text,
    )
    template_languages_copy(source=template, target=copy)
    if template.editor == EditorKind.BLOCKS:
        # The copy opens in the block editor as the original does (its HTML is the same).
        copy.editor = template.editor
        copy.design_mjml = template.design_mjml
        copy.design_project = template.design_project
        copy.save(update_fields=["editor", "design_mjml", "design_project", "updated_at"])
    return copy


@transaction.atomic
def template_delete(*, template: MessageTemplate) -> None:
    """Delete a template and its versions, unless a delivery or send request points at one
    of them (the ledger protects them: what was sent must stay explainable)."""
    try:
        # A savepoint, so the refused delete leaves the surrounding transaction usable.
        with transaction.atomic():
            template.delete()
    except ProtectedError:
        raise TemplateInUseError(template) from None


# `$contact.<key>` and the Contact field it reads.
_CONTEXT_NAMES = (
    ("firstName", "first_name"),
    ("lastName", "last_name"),
    ("email", "email"),
    ("phone", "phone"),
    ("region", "region"),
    ("town", "town"),
    ("address", "address"),
    ("postcode", "postcode"),
    ("languageCode", "language_code"),
    ("timeZone", "time_zone"),
    ("externalCustomerId", "external_customer_id"),
)
# Every Contact field contact_context reads: what a bulk sender loads (QuerySet.only).
CONTACT_CONTEXT_FIELDS = (*(name for _, name in _CONTEXT_NAMES), "tags", "fields")


def contact_context(
    contact: Contact, *, custom_fields: Iterable[CustomField] | None = None
) -> dict[str, Any]:
    """`$contact` for a contact: the eSputnik v1 API's contact field names, plus custom fields
    in `fields` under their id, their key and their name ($contact.fields.get('12'),
    .get('city'), .get('City')).
    Pass `custom_fields` when rendering many contacts to avoid one query per contact."""
    if custom_fields is None:
        custom_fields = CustomField.objects.all()
    fields: dict[str, Any] = {}
    for field in custom_fields:
        value = (contact.fields or {}).get(str(field.pk))
        if value is not None:
            fields[str(field.pk)] = fields[field.key] = fields[field.name] = value
    context: dict[str, Any] = {"id": contact.pk}
    context.update((key, getattr(contact, name)) for key, name in _CONTEXT_NAMES)
    context["tags"] = list(contact.tags or [])
    context["fields"] = fields
    return context


# Sanitising on save allows only http/https/mailto links, but a link can be assembled at
# render time from data ($data.link = "javascript:..."); neutralise such URLs in the result.
_SCRIPT_URL = re.compile(
    r"""(\s(?:href|src)\s*=\s*["']?)\s*(?:javascript|vbscript|data)\s*:""", re.IGNORECASE
)


def _preheader_html(preheader: str) -> str:
    # Shown by inbox previews, hidden in the opened message.
    return (
        '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all" aria-hidden="true">'
        f"{escape(preheader)}</div>"
    )


def template_render(
    *,
    template: MessageTemplate | None = None,
    version: TemplateVersion | None = None,
    contact: Contact | Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
    extra: Mapping[str, Any] | None = None,
) -> RenderedMessage:
    """Personalise a template (or a published version) for one recipient. `extra`: further
    top-level names for the template (templates.extensions). Raises TemplateError (engine)
    when a template exceeds its limits while rendering."""
    source = version or template
    if source is None:
        raise ValueError("template_render needs a template or a version")
    contact_dict = contact_context(contact) if isinstance(contact, Contact) else contact
    context = TemplateContext(contact_dict, data, extra)

    def render(field: str, *, escape_html: bool = False) -> str:
        text = getattr(source, field)
        if not text:
            return ""
        try:
            return compiled(text).render_context(context, escape_html=escape_html)
        except TemplateRenderError as exc:
            exc.field = field
            raise

    if source.channel != ChannelType.EMAIL:
        return RenderedMessage(subject="", html="", text=render("sms_text"))
    # A value with a line break must not become a second header line.
    subject = " ".join(render("subject").split())
    html = render("html", escape_html=True)
    if html:
        preheader = " ".join(render("preheader").split())
        if preheader:
            html = _preheader_html(preheader) + html
        html = inline_css(_SCRIPT_URL.sub(r"\1#blocked:", html))
    return RenderedMessage(subject=subject, html=html, text=render("text"))
