"""Templates kept at a provider (one with `has_templates`): import them page by page,
publish a Herald template to the provider, and preview the provider's copy.

Decisions:
- Import pages follow the provider contract: offset 0 first; a full page (exactly `limit`
  templates) means "ask again at offset + limit"; a shorter page ends the import.
- A page and the import's progress commit together: the page's templates are upserted by
  (integration, external id) — the unique constraint of templates.MessageTemplate — and the
  import's offset and counts advance in the same transaction, under a row lock on the
  import. A worker that dies mid-page leaves the offset where it was, so the page is asked
  for again and finds its templates by external id: no duplicates. The lock (taken with
  SKIP LOCKED) also keeps a second task of the same import out. It is held while the
  provider answers one page (bounded by the provider's timeout).
- A template whose content changed (or a new one) gets a published version, so campaigns
  can send it; one that cannot be published (no subject, a template syntax error the
  provider's HTML happens to contain) is kept as a draft, or skipped when even the draft is
  refused, and the import says so.
- A provider's refusal marks the import failed with the provider's words; starting it again
  resumes at its offset.
- Previews of the provider's copy are cached (PREVIEW_CACHE) per integration and id, and
  sanitised like every template HTML Herald shows.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signature
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.delivery.providers import (
    ImportedTemplate,
    ProviderError,
    provider_label,
    provider_of,
)
from config.core.errors import ConflictError, FieldError, HeraldError
from config.core.models import Integration
from config.core.secrets import SecretsUnreadable
from contacts.models import ChannelType
from integrations.models import ImportState, TemplateImport
from templates.errors import HtmlSanitizeError, TemplateSyntaxError, TemplateValidationError
from templates.models import MessageTemplate
from templates.sanitize import sanitize_html
from templates.services import template_prepare, template_publish

logger = logging.getLogger(__name__)

TEMPLATE_IMPORT_TASK = "integrations.template_import"
# Templates per page asked of the provider: one request of a few hundred kB of HTML.
IMPORT_PAGE = 50
# How long the provider's copy of a template is shown without asking again.
PREVIEW_CACHE = 300
# The fields an import writes, compared to decide whether a new version is due.
IMPORTED_FIELDS = ("name", "subject", "html", "text", "from_name", "from_email")


class ProviderRefused(HeraldError):
    """The provider refused or could not be reached; the message is the provider's."""

    status = 502


def _templates_provider(integration: Integration) -> Any:
    provider = provider_of(integration)
    if not provider.has_templates:
        raise FieldError("integration", f"{integration.name} does not keep templates.")
    return provider


def _closed(provider: Any) -> None:
    closing = getattr(provider, "close", None)
    if callable(closing):
        closing()


# --- import ---------------------------------------------------------------------------------


def template_import_start(*, integration: Integration, user: Any = None) -> TemplateImport:
    """Start an import from the integration, or resume its unfinished one (failed, or
    running with no task at work); the task is enqueued once the transaction commits."""
    _templates_provider(integration)
    with transaction.atomic():
        job = (
            TemplateImport.objects.select_for_update()
            .filter(integration=integration, state__in=[ImportState.RUNNING, ImportState.FAILED])
            .order_by("-started_at", "-pk")
            .first()
        )
        if job is None:
            job = TemplateImport.objects.create(
                integration=integration,
                limit=IMPORT_PAGE,
                started_by=user if getattr(user, "is_authenticated", False) else None,
            )
        elif job.state == ImportState.FAILED:
            job.state = ImportState.RUNNING
            job.error = ""
            job.save(update_fields=["state", "error"])
        import_id = job.pk
        transaction.on_commit(lambda: signature(TEMPLATE_IMPORT_TASK, args=(import_id,)).delay())
    return job


def template_import_run(*, import_id: int) -> TemplateImport:
    """Import page after page until a short page (the task's body). Returns the import as
    it stands: finished, failed (with the provider's message), or running when another
    task holds it."""
    while True:
        with transaction.atomic():
            job = (
                TemplateImport.objects.select_for_update(skip_locked=True)
                .select_related("integration")
                .filter(pk=import_id)
                .first()
            )
            if job is None:  # another task is on it, or it was deleted
                return TemplateImport.objects.filter(pk=import_id).first() or TemplateImport(
                    pk=import_id, state=ImportState.FAILED, error="the import no longer exists"
                )
            if job.state != ImportState.RUNNING:
                return job
            if not _page_import(job):
                return job


def _page_import(job: TemplateImport) -> bool:
    """One page into the database with the import's progress; False when the import
    stopped (finished or failed)."""
    integration = job.integration
    try:
        provider = _templates_provider(integration)
        try:
            page = provider.templates_import(job.offset, job.limit)
        finally:
            _closed(provider)
    except (ProviderError, SecretsUnreadable, FieldError) as exc:
        job.state = ImportState.FAILED
        job.error = getattr(exc, "message", "") or str(exc)
        job.save(update_fields=["state", "error"])
        logger.warning("template import %s from %s failed: %s", job.pk, integration, job.error)
        return False
    notes = []
    for item in page:
        try:
            outcome = template_upsert(integration=integration, item=item)
        except TemplateValidationError as exc:
            notes.append(f"template {item.external_id} skipped: {exc}")
            continue
        if outcome == "created":
            job.created += 1
        elif outcome == "updated":
            job.updated += 1
    full = len(page) >= job.limit
    job.offset += job.limit if full else len(page)
    if notes:
        job.error = "\n".join([job.error, *notes]).strip()[:10_000]
    if not full:
        job.state = ImportState.FINISHED
        job.finished_at = timezone.now()
    job.save(update_fields=["offset", "created", "updated", "error", "state", "finished_at"])
    return full


def template_upsert(*, integration: Integration, item: ImportedTemplate) -> str:
    """Create or update the template the provider knows as `item.external_id`; publish a
    version when its content changed. Returns "created", "updated" or "unchanged"."""
    template = (
        MessageTemplate.objects.select_for_update()
        .filter(integration=integration, external_id=item.external_id)
        .first()
    )
    created = template is None
    if template is None:
        template = MessageTemplate(
            channel=ChannelType.EMAIL,
            integration=integration,
            external_id=item.external_id,
            provider=provider_label(integration)[:50],
        )
        before: dict[str, Any] = {}
    else:
        before = {name: getattr(template, name) for name in IMPORTED_FIELDS}
    template.name = (item.name or f"Template {item.external_id}")[:200]
    template.subject = item.subject.replace("\r", " ").replace("\n", " ")[:500]
    template.html = item.html
    template.text = item.text
    template.from_name = item.from_name[:200]
    template.from_email = item.from_email
    template_prepare(template, text_given=bool(item.text))
    after = {name: getattr(template, name) for name in IMPORTED_FIELDS}
    if not created and after == before and template.version:
        return "unchanged"
    template.save()
    try:
        with transaction.atomic():
            template_publish(template=template)
    except TemplateValidationError as exc:
        # Kept as a draft: the marketer completes it (e.g. adds a subject) and publishes.
        logger.info("imported template %s stays a draft: %s", template.pk, exc)
    return "created" if created else "updated"


# --- publish and preview --------------------------------------------------------------------


def _preview_key(integration_id: int, external_id: str) -> str:
    return f"herald:template-html:{integration_id}:{external_id}"


def template_publish_external(
    *, template: MessageTemplate, integration: Integration | None = None
) -> str:
    """Send the template's HTML to the provider (template_html_set: a new template there, or
    the one it already has there) and keep the provider's id on the template. Returns it."""
    integration = integration or template.integration
    if integration is None:
        raise FieldError("integration", "Choose the integration to publish the template to.")
    provider = _templates_provider(integration)
    if not (template.html or "").strip():
        raise FieldError("html", "The template has no HTML to publish.")
    known = template.external_id if template.integration_id == integration.pk else ""
    try:
        external_id = provider.template_html_set(template.html, template.name, known or "")
    except ProviderError as exc:
        raise ProviderRefused(f"{integration.name}: {exc.message}") from None
    except SecretsUnreadable as exc:
        raise ProviderRefused(str(exc)) from None
    finally:
        _closed(provider)
    if not external_id:
        raise ProviderRefused(f"{integration.name} answered without a template id")
    try:
        with transaction.atomic():
            MessageTemplate.objects.filter(pk=template.pk).update(
                external_id=external_id[:255],
                integration=integration,
                provider=provider_label(integration)[:50],
            )
    except IntegrityError:
        raise ConflictError(
            f"another template already holds {integration.name}'s template {external_id}",
            field="integration",
        ) from None
    template.external_id = external_id[:255]
    template.integration = integration
    template.provider = provider_label(integration)[:50]
    cache.delete(_preview_key(integration.pk, template.external_id))
    return template.external_id


def template_preview_html(*, template: MessageTemplate) -> str:
    """The provider's copy of the template (template_html), sanitised, cached PREVIEW_CACHE
    seconds per integration and id."""
    if template.integration_id is None or not template.external_id:
        raise FieldError("integration", "The template has no copy at a provider.")
    key = _preview_key(template.integration_id, template.external_id)
    cached = cache.get(key)
    if cached is not None:
        return str(cached)
    integration = Integration.objects.get(pk=template.integration_id)
    provider = _templates_provider(integration)
    try:
        html = provider.template_html(template.external_id)
    except ProviderError as exc:
        raise ProviderRefused(f"{integration.name}: {exc.message}") from None
    except SecretsUnreadable as exc:
        raise ProviderRefused(str(exc)) from None
    finally:
        _closed(provider)
    try:
        clean = sanitize_html(html) if html.strip() else ""
    except (HtmlSanitizeError, TemplateSyntaxError) as exc:
        raise ProviderRefused(f"{integration.name}'s HTML cannot be shown: {exc.message}") from None
    cache.set(key, clean, PREVIEW_CACHE)
    return clean
