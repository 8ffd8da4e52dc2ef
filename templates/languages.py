"""Language versions of a template: writes (add, change, remove), the snapshot taken on
publish, and the choice of a version for a recipient's language.

Decisions:
- Codes are compared case-insensitively and stored lower case with "-" between parts
  ("en_GB" → "en-gb"), as contacts may store them either way.
- A recipient's language picks, in order: its exact code, then its primary language
  ("en-gb" → "en"), else the template's own content (the fallback version).
- A language version has its own subject, preheader, HTML, text and SMS text; the sender,
  channel and name stay the template's. Its content follows the template's rules (Velocity
  syntax, sanitised HTML, a text derived from the HTML when left empty).
- Publishing freezes every language with the version (TemplateVersionLanguage), so a campaign
  keeps sending what was published in every language.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from django.db import IntegrityError, transaction

from contacts.models import ChannelType
from contacts.validation import LANGUAGE_RE
from templates.errors import TemplateFieldError, TemplateValidationError
from templates.models import (
    MessageTemplate,
    TemplateLanguage,
    TemplateVersion,
    TemplateVersionLanguage,
)

LANGUAGE_FIELDS = ("subject", "preheader", "html", "text", "sms_text")
_UNSET: Any = object()


def language_normalise(code: str | None) -> str:
    """ "en_GB" → "en-gb"; blank stays blank."""
    return (code or "").strip().replace("_", "-").lower()


def language_pick(available: Collection[str], language: str | None) -> str | None:
    """The language version (one of `available`, normalised codes) for a recipient's
    language, or None for the template's own content."""
    if not available:  # the common case on the hot path: no language versions at all
        return None
    code = language_normalise(language)
    if not code:
        return None
    if code in available:
        return code
    primary = code.split("-", 1)[0]
    return primary if primary in available else None


def _code_check(template: MessageTemplate, code: str, *, exclude_pk: int | None = None) -> str:
    normalised = language_normalise(code)
    if not normalised:
        raise TemplateValidationError([TemplateFieldError("language_code", "Required.")])
    if len(normalised) > 10 or not LANGUAGE_RE.match(normalised):
        raise TemplateValidationError(
            [TemplateFieldError("language_code", f"“{code}” is not a language code (e.g. en, uk).")]
        )
    taken = template.languages.filter(language_code=normalised)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise _duplicate(normalised)
    return normalised


def _duplicate(code: str) -> TemplateValidationError:
    return TemplateValidationError(
        [TemplateFieldError("language_code", f"This template already has a “{code}” version.")]
    )


def _prepare(template: MessageTemplate, language: TemplateLanguage, *, text_given: bool) -> None:
    """Check and normalise the content as the template's own would be (the template's
    rules, on a trial template of the same channel)."""
    # Imported here: templates.services imports this module for the publish snapshot.
    from templates.services import template_prepare

    trial = MessageTemplate(
        name=template.name or "language",
        channel=template.channel,
        text_generated=language.text_generated,
        **{field: getattr(language, field) for field in LANGUAGE_FIELDS},
    )
    template_prepare(trial, text_given=text_given)
    for field in (*LANGUAGE_FIELDS, "text_generated"):
        setattr(language, field, getattr(trial, field))


def _save(language: TemplateLanguage) -> TemplateLanguage:
    try:
        # A savepoint: a concurrent add of the same code must leave the caller's transaction
        # usable for the error answer.
        with transaction.atomic():
            language.save()
    except IntegrityError:
        raise _duplicate(language.language_code) from None
    return language


@transaction.atomic
def template_language_create(
    *,
    template: MessageTemplate,
    language_code: str,
    subject: str = "",
    preheader: str = "",
    html: str = "",
    text: str = "",
    sms_text: str = "",
) -> TemplateLanguage:
    """Add a language version; a language the template already has is refused (naming
    `language_code`)."""
    code = _code_check(template, language_code)
    language = TemplateLanguage(
        template=template,
        language_code=code,
        subject=subject,
        preheader=preheader,
        html=html,
        text=text,
        sms_text=sms_text,
    )
    _prepare(template, language, text_given=bool(text))
    return _save(language)


@transaction.atomic
def template_language_update(
    *,
    language: TemplateLanguage,
    language_code: str = _UNSET,
    subject: str = _UNSET,
    preheader: str = _UNSET,
    html: str = _UNSET,
    text: str = _UNSET,
    sms_text: str = _UNSET,
) -> TemplateLanguage:
    """Change a language version's draft; arguments left out keep their value. An empty
    `text` goes back to being derived from the HTML."""
    template = language.template
    if language_code is not _UNSET:
        language.language_code = _code_check(template, language_code, exclude_pk=language.pk)
    changes = {
        "subject": subject,
        "preheader": preheader,
        "html": html,
        "text": text,
        "sms_text": sms_text,
    }
    text_given = bool(text) if text is not _UNSET else False
    if text is not _UNSET and not text:
        language.text_generated = True
    for field, value in changes.items():
        if value is not _UNSET:
            setattr(language, field, value)
    _prepare(template, language, text_given=text_given)
    return _save(language)


@transaction.atomic
def template_language_delete(*, language: TemplateLanguage) -> None:
    """Remove a language version from the draft; published versions keep theirs."""
    language.delete()


def language_publish_errors(template: MessageTemplate) -> list[TemplateFieldError]:
    """What keeps the language versions from being published: each must be complete for the
    template's channel, as the template itself must."""
    errors = []
    for language in template.languages.all():
        code = language.language_code
        if template.channel == ChannelType.EMAIL:
            if not language.subject.strip():
                errors.append(
                    TemplateFieldError(
                        f"languages.{code}.subject", f"The {code} version needs a subject."
                    )
                )
            if not language.html.strip() and not language.text.strip():
                errors.append(
                    TemplateFieldError(
                        f"languages.{code}.html",
                        f"The {code} version needs an HTML or a text body.",
                    )
                )
        elif not language.sms_text.strip():
            errors.append(
                TemplateFieldError(
                    f"languages.{code}.sms_text", f"The {code} version needs a text."
                )
            )
    return errors


def template_languages_snapshot(*, template: MessageTemplate, version: TemplateVersion) -> int:
    """Freeze the template's language versions with `version` (inside the publish's
    transaction); returns how many."""
    rows = [
        TemplateVersionLanguage(
            version=version,
            language_code=language.language_code,
            **{field: getattr(language, field) for field in TemplateVersionLanguage.CONTENT_FIELDS},
        )
        for language in template.languages.all()
    ]
    TemplateVersionLanguage.objects.bulk_create(rows)
    return len(rows)


def template_languages_copy(*, source: MessageTemplate, target: MessageTemplate) -> None:
    """Give a copy of a template the language versions of its original (already checked)."""
    TemplateLanguage.objects.bulk_create(
        TemplateLanguage(
            template=target,
            language_code=language.language_code,
            text_generated=language.text_generated,
            **{field: getattr(language, field) for field in LANGUAGE_FIELDS},
        )
        for language in source.languages.all()
    )


def version_languages(
    version_ids: Iterable[int],
) -> dict[int, dict[str, TemplateVersionLanguage]]:
    """The published language versions of these template versions (one query):
    version id → code → language version."""
    found: dict[int, dict[str, TemplateVersionLanguage]] = {}
    for language in TemplateVersionLanguage.objects.filter(version_id__in=list(version_ids)):
        found.setdefault(language.version_id, {})[language.language_code] = language
    return found


def version_localise(
    version: TemplateVersion,
    language: str | None,
    languages: Mapping[str, TemplateVersionLanguage],
) -> TemplateVersion:
    """`version` as a recipient with `language` gets it: its language version's content when
    there is one for that language (see language_pick), else the version itself."""
    code = language_pick(languages.keys(), language)
    if code is None:
        return version
    return languages[code].as_version(version)
