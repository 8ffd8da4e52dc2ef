"""Marketer pages for a template's language versions: the list with a preview per language
(a language selector), adding, editing and removing a version. Reached from the template
editor ("Languages"). Writes go through templates.languages."""

from csp.decorators import csp_update
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from config.core.roles import Role, has_role, role_required
from templates.errors import TemplateError, TemplateValidationError
from templates.forms import TemplateLanguageForm
from templates.languages import (
    language_normalise,
    template_language_create,
    template_language_delete,
    template_language_update,
)
from templates.models import MessageTemplate, TemplateLanguage
from templates.preview import template_language_preview
from templates.services import RenderedMessage

# The pages that show message HTML allow remote images (see templates.views).
message_preview_csp = csp_update({"img-src": ["https:", "http:"]})


def language_pane_render(request, contact, data) -> RenderedMessage | None:
    """The editor's preview pane with a language picked in its language selector: the saved
    draft of that language version (None: no language picked, the pane renders the editor's
    fields). Raises TemplateError."""
    code = language_normalise(request.POST.get("preview_language"))
    template_id = request.POST.get("preview_template") or ""
    if not code or not template_id.isdigit():
        return None
    template = get_object_or_404(MessageTemplate, pk=int(template_id))
    if not template.languages.filter(language_code=code).exists():
        return None
    return template_language_preview(
        template=template, language_code=code, contact=contact, data=data
    )


def _languages_url(template: MessageTemplate, preview: str = "") -> str:
    url = reverse("template_languages", args=[template.pk])
    return f"{url}?preview={preview}" if preview else url


def _page(request, template: MessageTemplate, form: TemplateLanguageForm, *, status: int = 200):
    languages = list(template.languages.all())
    codes = [language.language_code for language in languages]
    preview = language_normalise(request.GET.get("preview"))
    if preview not in codes:
        preview = ""
    rendered, render_error = None, ""
    try:
        rendered = template_language_preview(template=template, language_code=preview)
    except TemplateError as exc:
        render_error = str(exc)
    return render(
        request,
        "templates/template_languages.html",
        {
            "template": template,
            "languages": languages,
            "form": form,
            "can_write": has_role(request.user, Role.MARKETER),
            "preview": preview,
            "rendered": rendered,
            "render_error": render_error,
        },
        status=status,
    )


@role_required(Role.VIEWER)
@message_preview_csp
def template_languages(request, pk: int):
    template = get_object_or_404(MessageTemplate, pk=pk)
    form = TemplateLanguageForm(request.POST or None)
    if request.method == "POST":
        if not has_role(request.user, Role.MARKETER):
            raise PermissionDenied("Adding language versions needs the marketer role.")
        if form.is_valid():
            try:
                language = template_language_create(template=template, **form.service_values())
            except TemplateValidationError as exc:
                form.add_service_errors(exc.errors)
            else:
                messages.success(
                    request,
                    gettext("Added the “%(code)s” version. Publish the template to send it.")
                    % {"code": language.language_code},
                )
                return redirect(_languages_url(template, language.language_code))
        return _page(request, template, form, status=400)
    return _page(request, template, form)


def _language(pk: int, code: str) -> TemplateLanguage:
    language = (
        TemplateLanguage.objects.select_related("template")
        .filter(template_id=pk, language_code=language_normalise(code))
        .first()
    )
    if language is None:
        raise Http404("No such language version.")
    return language


@role_required(Role.MARKETER)
@message_preview_csp
def template_language_edit(request, pk: int, code: str):
    language = _language(pk, code)
    template = language.template
    if request.method == "POST":
        form = TemplateLanguageForm(request.POST)
        if form.is_valid():
            try:
                template_language_update(language=language, **form.service_values())
            except TemplateValidationError as exc:
                form.add_service_errors(exc.errors)
            else:
                messages.success(
                    request,
                    gettext("Saved the “%(code)s” version.") % {"code": language.language_code},
                )
                return redirect(_languages_url(template, language.language_code))
        status = 400
    else:
        form = TemplateLanguageForm.for_language(language)
        status = 200
    return render(
        request,
        "templates/template_language_edit.html",
        {"template": template, "language": language, "form": form},
        status=status,
    )


@require_POST
@role_required(Role.MARKETER)
def template_language_delete_view(request, pk: int, code: str):
    language = _language(pk, code)
    template_language_delete(language=language)
    messages.success(
        request,
        gettext("Removed the “%(code)s” version (published versions keep theirs).")
        % {"code": language.language_code},
    )
    return redirect(_languages_url(language.template))
