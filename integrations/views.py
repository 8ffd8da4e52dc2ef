from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from config.core.api_keys import api_key_create, api_key_revoke
from config.core.models import APIKey
from config.core.roles import Role, role_required
from integrations.forms import APIKeyForm


@role_required(Role.VIEWER)
def integrations_home(request):
    backend = settings.EMAIL_BACKEND.rsplit(".", 2)[-2]
    email_transport = {
        "smtp": f"SMTP via {getattr(settings, 'EMAIL_HOST', '')}",
        "filebased": f"Local outbox folder ({settings.EMAIL_FILE_PATH})"
        if hasattr(settings, "EMAIL_FILE_PATH")
        else "Local outbox folder",
        "console": "Console (development)",
        "locmem": "In-memory (tests)",
    }.get(backend, settings.EMAIL_BACKEND)
    return render(request, "integrations/home.html", {"email_transport": email_transport})


@role_required(Role.ADMIN)
def api_keys(request):
    new_secret = None
    if request.method == "POST":
        form = APIKeyForm(request.POST)
        if form.is_valid():
            key, new_secret = api_key_create(
                name=form.cleaned_data["name"],
                rights=form.cleaned_data["rights"],
                created_by=request.user,
            )
            messages.success(
                request, f"API key “{key.name}” created. Copy it now: it is not shown again."
            )
            form = APIKeyForm()
    else:
        form = APIKeyForm()
    return render(
        request,
        "integrations/api_keys.html",
        {
            "form": form,
            "keys": APIKey.objects.select_related("created_by"),
            "new_secret": new_secret,
        },
    )


@role_required(Role.ADMIN)
@require_POST
def api_key_revoke_view(request, pk: int):
    key = get_object_or_404(APIKey, pk=pk)
    api_key_revoke(key=key)
    messages.success(request, f"API key “{key.name}” revoked.")
    return redirect("api_keys")
