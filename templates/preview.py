"""Previews of unsaved template content for a sample or real contact and sample data.

A read: nothing is saved. The content goes through the same validation and sanitising as a
save (`template_prepare`), so the preview shows what the published message would be.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from config.core.parsers import json_text_load
from contacts.models import Contact
from templates.errors import (
    PreviewInputError,
    TemplateError,
    TemplateFieldError,
    TemplateValidationError,
)
from templates.extensions import extensions_check, extensions_sample
from templates.languages import LANGUAGE_FIELDS
from templates.models import MessageTemplate
from templates.services import RenderedMessage, template_prepare, template_render

# What `$contact` holds when no real contact is picked: every field of the eSputnik v1
# contact filled in, so a marketer sees where each placeholder lands.
SAMPLE_CONTACT: dict[str, Any] = {
    "id": 0,
    "firstName": "Alex",
    "lastName": "Sample",
    "email": "alex.sample@example.com",
    "phone": "+14155550100",
    "region": "California",
    "town": "San Francisco",
    "address": "1 Market Street",
    "postcode": "94105",
    "languageCode": "en",
    "timeZone": "America/Los_Angeles",
    "externalCustomerId": "SAMPLE-1",
    "tags": ["sample"],
    "fields": {},
}

# Content fields a preview renders; the name and sending addresses do not change it.
PREVIEW_FIELDS = ("channel", "subject", "preheader", "html", "text", "sms_text")
# Preview data is typed by hand; anything this big is a mistake, not sample data.
MAX_DATA_CHARS = 200_000


def preview_data_parse(raw: str | None) -> dict[str, Any]:
    """Sample JSON data typed by a marketer: empty means {}, anything else must be an object."""
    raw = (raw or "").strip()
    if not raw:
        return {}
    if len(raw) > MAX_DATA_CHARS:
        raise PreviewInputError("data", f"At most {MAX_DATA_CHARS:,} characters of sample data.")
    try:
        data = json_text_load(raw)
    except json.JSONDecodeError as exc:
        raise PreviewInputError(
            "data", f"Invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from None
    if not isinstance(data, dict):
        raise PreviewInputError("data", "The sample data must be a JSON object ({…}).")
    return data


def preview_contact_find(reference: str | int | None) -> Contact | None:
    """A contact by id or email address; None (blank reference) means the built-in sample."""
    reference = str(reference if reference is not None else "").strip()
    if not reference:
        return None
    contacts = Contact.objects.alive()
    if reference.isdigit():
        contact = contacts.filter(pk=int(reference)).first()
    else:
        contact = contacts.filter(email__iexact=reference).order_by("pk").first()
    if contact is None:
        raise PreviewInputError("contact", f"No contact with id or email “{reference}”.")
    return contact


def template_preview(
    *,
    content: Mapping[str, Any],
    contact: Contact | None,
    data: Mapping[str, Any] | None,
) -> RenderedMessage:
    """Render unsaved `content` (field → source) as it would be sent. Raises
    TemplateValidationError naming the field (with line/column) when the content is bad."""
    trial = MessageTemplate(
        name="preview", **{field: content.get(field) or "" for field in PREVIEW_FIELDS}
    )
    if not trial.channel:
        trial.channel = MessageTemplate._meta.get_field("channel").default
    template_prepare(trial, text_given=bool(trial.text))
    errors = extensions_check(trial)
    if errors:
        raise TemplateValidationError(errors)
    try:
        return template_render(
            template=trial,
            contact=contact if contact is not None else SAMPLE_CONTACT,
            data=data,
            extra=extensions_sample(trial),
        )
    except TemplateError as exc:
        # Render limits (loop size, output size) depend on the data; say so on the data.
        raise TemplateValidationError([TemplateFieldError("data", str(exc))]) from None


def template_language_preview(
    *,
    template: MessageTemplate,
    language_code: str = "",
    contact: Contact | None = None,
    data: Mapping[str, Any] | None = None,
) -> RenderedMessage:
    """The saved draft of `template` in one of its language versions ("": its own content),
    rendered for `contact` (default: the sample contact speaking that language). Raises
    TemplateError; TemplateLanguage.DoesNotExist for a language it does not have."""
    sample: Contact | dict[str, Any] = SAMPLE_CONTACT if contact is None else contact
    source = template
    if language_code:
        language = template.languages.get(language_code=language_code)
        source = MessageTemplate(
            name=template.name,
            channel=template.channel,
            **{field: getattr(language, field) for field in LANGUAGE_FIELDS},
        )
        if contact is None:
            sample = {**SAMPLE_CONTACT, "languageCode": language_code}
    return template_render(template=source, contact=sample, data=data or {})
