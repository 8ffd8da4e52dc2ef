from auditlog.models import LogEntry
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext

from campaigns import send_rules
from campaigns.analytics import dashboard_metrics
from config.core import services
from config.core.errors import FieldError, form_error
from config.core.health import worker_state
from config.core.models import Organisation
from config.core.roles import Role, role_required
from marketing.forms import FrequencyCapsForm, OrganisationForm


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
            messages.success(request, gettext("Organisation settings saved."))
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
                messages.success(request, "Frequency caps saved.")
                return redirect("frequency_caps")
        status = 400
    else:
        form = FrequencyCapsForm(caps=send_rules.frequency_caps())
        status = 200
    return render(request, "marketing/frequency_caps.html", {"form": form}, status=status)


@role_required(Role.ADMIN)
def audit_log(request):
    entries = LogEntry.objects.select_related("actor", "content_type").order_by("-timestamp")
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "marketing/audit_log.html", {"page": page})
