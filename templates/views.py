"""Marketer pages for message templates: list, editor with live preview, publishing,
version history, duplicate and delete.

Views parse input with forms and call templates.services for every write; previews go
through templates.preview, which validates like a save but saves nothing.
"""

from csp.decorators import csp_update
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from config.core.models import Integration
from config.core.roles import Role, has_role, role_required
from templates.errors import (
    PreviewInputError,
    TemplateError,
    TemplateInUseError,
    TemplateValidationError,
)
from templates.extensions import extensions_sample
from templates.forms import PreviewForm, TemplateForm, TemplateSearchForm, located
from templates.models import MessageTemplate, TemplateVersion
from templates.preview import (
    PREVIEW_FIELDS,
    SAMPLE_CONTACT,
    preview_contact_find,
    preview_data_parse,
    template_preview,
)
from templates.services import (
    template_create,
    template_delete,
    template_duplicate,
    template_publish,
    template_render,
    template_update,
)
from templates.views_languages import language_pane_render

# Templates are counted in hundreds, not millions: plain numbered pages are fine here.
TEMPLATES_PER_PAGE = 50
FIELD_LABELS = {
    name: field.label or name.replace("_", " ").capitalize()
    for name, field in TemplateForm.base_fields.items()
}
FIELD_LABELS.update(data=_("Sample data"), contact=_("Contact"))
# The pages that show message HTML do so in a sandboxed srcdoc iframe, which inherits the
# page's Content-Security-Policy; emails link their images from the sender's servers, so
# these pages allow remote images. Scripts stay blocked by the policy and the sandbox.
message_preview_csp = csp_update({"img-src": ["https:", "http:"]})


@role_required(Role.VIEWER)
def template_list(request):
    form = TemplateSearchForm(request.GET or None)
    templates = MessageTemplate.objects.order_by("-updated_at", "-pk")
    if form.is_bound and form.is_valid():
        if form.cleaned_data["q"]:
            q = form.cleaned_data["q"]
            templates = templates.filter(Q(name__icontains=q) | Q(subject__icontains=q))
        if form.cleaned_data["channel"]:
            templates = templates.filter(channel=form.cleaned_data["channel"])
    page = Paginator(templates, TEMPLATES_PER_PAGE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "templates/template_list.html",
        {
            "form": form,
            "page": page,
            "base_query": params.urlencode(),
            "filtered": form.is_bound and any(form.data.get(k) for k in form.fields),
            "any_templates": page.object_list or MessageTemplate.objects.exists(),
            "can_write": has_role(request.user, Role.MARKETER),
        },
    )


@role_required(Role.MARKETER)
@message_preview_csp
def template_new(request):
    form = TemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template = template_create(**form.service_values())
        except TemplateValidationError as exc:
            form.add_service_errors(exc.errors)
        else:
            messages.success(request, gettext("Template “%(name)s” created.") % {"name": template})
            if "publish" in request.POST:
                _publish(request, template)
            return redirect("template_edit", pk=template.pk)
    return _editor(request, form=form, template=None)


@role_required(Role.VIEWER)
@message_preview_csp
def template_edit(request, pk: int):
    template = get_object_or_404(MessageTemplate.objects.select_related("integration"), pk=pk)
    if request.method == "POST":
        if not has_role(request.user, Role.MARKETER):
            raise PermissionDenied("Editing templates needs the marketer role.")
        form = TemplateForm.for_template(template, request.POST)
        if form.is_valid():
            try:
                template_update(template=template, **form.service_values())
            except TemplateValidationError as exc:
                form.add_service_errors(exc.errors)
                template.refresh_from_db()  # the failed update left unsaved values behind
            else:
                messages.success(
                    request, gettext("Template “%(name)s” saved.") % {"name": template}
                )
                if "publish" in request.POST:
                    _publish(request, template)
                return redirect("template_edit", pk=template.pk)
    else:
        form = TemplateForm.for_template(template)
    return _editor(request, form=form, template=template)


def _editor(request, *, form: TemplateForm, template: MessageTemplate | None):
    can_write = has_role(request.user, Role.MARKETER)
    if not can_write:
        # Read-only rather than disabled: disabled inputs are not posted, and the preview
        # pane posts the fields (the channel select gets a hidden twin in the page).
        for name, field in form.fields.items():
            field.widget.attrs["readonly"] = True
            if name == "channel":
                field.widget.attrs["disabled"] = True
    return render(
        request,
        "templates/template_editor.html",
        {
            "form": form,
            "preview_form": PreviewForm(),
            "template": template,
            "can_write": can_write,
            "latest": template.versions.first() if template else None,
            "has_changes": template is not None and _differs_from_latest(template),
            "publish_targets": _publish_targets(template) if template and can_write else [],
        },
    )


def _publish_targets(template: MessageTemplate) -> list[Integration]:
    """Integrations the template may be published to: the enabled ones serving its channel
    (whether a provider keeps templates at all, its answer to the publish says)."""
    targets = Integration.objects.filter(enabled=True, channels__contains=[template.channel])
    return list(targets.order_by("name"))


def _differs_from_latest(template: MessageTemplate) -> bool:
    latest = template.versions.first()
    if latest is None:
        return True
    return any(
        getattr(latest, field) != getattr(template, field)
        for field in TemplateVersion.CONTENT_FIELDS
    )


@require_POST
@role_required(Role.VIEWER)
def template_preview_pane(request):
    """The editor posts its unsaved fields here while the marketer types."""
    preview_form = PreviewForm(request.POST)
    preview_form.is_valid()  # both inputs are optional; their content is checked below
    context: dict = {"errors": [], "rendered": None}
    content = {field: request.POST.get(field, "") for field in PREVIEW_FIELDS}
    try:
        contact = preview_contact_find(preview_form.cleaned_data.get("preview_contact"))
        data = preview_data_parse(preview_form.cleaned_data.get("preview_data"))
        context["rendered"] = language_pane_render(request, contact, data) or template_preview(
            content=content, contact=contact, data=data
        )
        context["contact"] = contact
    except PreviewInputError as exc:
        context["errors"] = [(FIELD_LABELS[exc.field], exc.message)]
    except TemplateValidationError as exc:
        context["errors"] = [
            (FIELD_LABELS.get(error.field, error.field), located(error))
            for error in exc.errors
            if error.field != "name"
        ]
    except TemplateError as exc:
        field = getattr(exc, "field", None) or "data"
        context["errors"] = [(FIELD_LABELS.get(field, FIELD_LABELS["data"]), str(exc))]
    context["channel"] = content["channel"] or "email"
    return render(request, "templates/_preview.html", context)


@require_POST
@role_required(Role.MARKETER)
def template_publish_view(request, pk: int):
    template = get_object_or_404(MessageTemplate, pk=pk)
    _publish(request, template)
    return redirect("template_edit", pk=template.pk)


def _publish(request, template: MessageTemplate) -> None:
    try:
        version = template_publish(template=template, user=request.user)
    except TemplateValidationError as exc:
        for error in exc.errors:
            label = FIELD_LABELS.get(error.field, error.field)
            messages.error(
                request,
                gettext("Not published: %(field)s — %(problem)s")
                % {"field": label, "problem": located(error)},
            )
    else:
        messages.success(
            request, gettext("Published version %(number)s.") % {"number": version.number}
        )


@role_required(Role.VIEWER)
def template_versions(request, pk: int):
    template = get_object_or_404(MessageTemplate, pk=pk)
    versions = template.versions.select_related("published_by")
    return render(
        request,
        "templates/template_versions.html",
        {"template": template, "versions": versions},
    )


@role_required(Role.VIEWER)
@message_preview_csp
def template_version_detail(request, pk: int, number: int):
    version = get_object_or_404(
        TemplateVersion.objects.select_related("template", "published_by"),
        template_id=pk,
        number=number,
    )
    rendered, render_error = None, ""
    try:
        rendered = template_render(
            version=version, contact=SAMPLE_CONTACT, data={}, extra=extensions_sample(version)
        )
    except TemplateError as exc:
        render_error = str(exc)
    return render(
        request,
        "templates/template_version.html",
        {
            "template": version.template,
            "version": version,
            "rendered": rendered,
            "render_error": render_error,
        },
    )


@require_POST
@role_required(Role.MARKETER)
def template_duplicate_view(request, pk: int):
    template = get_object_or_404(MessageTemplate, pk=pk)
    try:
        copy = template_duplicate(template=template)
    except TemplateValidationError as exc:
        # Content saved before a rule was tightened may no longer pass; say which rule.
        messages.error(request, gettext("Cannot duplicate: %(problem)s") % {"problem": exc})
        return redirect("template_edit", pk=template.pk)
    messages.success(
        request,
        gettext("Created “%(copy)s”, a copy of “%(name)s”.") % {"copy": copy, "name": template},
    )
    return redirect("template_edit", pk=copy.pk)


@role_required(Role.MARKETER)
def template_delete_view(request, pk: int):
    template = get_object_or_404(MessageTemplate, pk=pk)
    if request.method == "POST":
        try:
            template_delete(template=template)
        except TemplateInUseError as exc:
            messages.error(request, str(exc))
            return redirect("template_edit", pk=pk)
        messages.success(request, gettext("Template “%(name)s” deleted.") % {"name": template})
        return redirect(reverse("templates_home"))
    return render(
        request,
        "templates/template_delete.html",
        {"template": template, "version_count": template.versions.count()},
    )
