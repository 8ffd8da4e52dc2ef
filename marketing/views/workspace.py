from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from campaigns import send_rules
from campaigns.analytics import dashboard_metrics
from config.core import services
from config.core.errors import FieldError, form_error
from config.core.health import worker_state
from config.core.models import Organisation
from config.core.roles import Role, role_required
from marketing.audit import audit_entries, audit_line, audit_object_types, audit_people
from marketing.forms import AuditLogFilterForm, FrequencyCapsForm, OrganisationForm


@role_required(Role.VIEWER)
def dashboard(request):
    return render(
        request,
        "marketing/dashboard.html",
        {
            "worker": worker_state(),
            # Last-30-days campaign tiles, read from the analytics rollups (no ledger scan).
            "campaign_metrics": dashboard_metrics(days=30),
        },
    )


@role_required(Role.ADMIN)
def settings_home(request):
    organisation = Organisation.load()
    if request.method == "POST":
        form = OrganisationForm(request.POST, instance=organisation)
        if form.is_valid():
            services.organisation_update(**form.cleaned_data)
            messages.success(request, _("Organisation settings saved."))
            return redirect("settings_home")
    else:
        form = OrganisationForm(instance=organisation)
    return render(request, "marketing/settings.html", {"form": form})


@role_required(Role.ADMIN)
def frequency_caps(request):
    if request.method == "POST":
        form = FrequencyCapsForm(request.POST)
        if form.is_valid():
            try:
                caps = send_rules.caps_clean(form.caps())
            except FieldError as exc:
                form_error(form, exc, field="")
            else:
                send_rules.frequency_caps_replace(caps=caps)
                messages.success(request, _("Frequency caps saved."))
                return redirect("frequency_caps")
        status = 400
    else:
        form = FrequencyCapsForm(caps=send_rules.frequency_caps())
        status = 200
    return render(request, "marketing/frequency_caps.html", {"form": form}, status=status)


# Entries per page of the audit log: a screenful of sentences.
AUDIT_PAGE_SIZE = 50


@role_required(Role.ADMIN)
def audit_log(request):
    people = [(user.pk, user.get_username()) for user in audit_people()]
    form = AuditLogFilterForm(request.GET or None, people=people, types=audit_object_types())
    filters = form.cleaned_data if form.is_valid() else {}
    entries = audit_entries(
        actor_id=filters.get("actor"),
        content_type_id=filters.get("object_type"),
        since=filters.get("since"),
        until=filters.get("until"),
    )
    paginator = Paginator(entries, AUDIT_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "marketing/audit_log.html",
        {
            "form": form,
            "page": page,
            "lines": [audit_line(entry) for entry in page],
            "page_numbers": paginator.get_elided_page_range(page.number, on_each_side=2),
            "base_query": query.urlencode(),
            "filtered": bool(filters and any(v is not None for v in filters.values())),
        },
        status=200 if form.is_valid() or not form.is_bound else 400,
    )
