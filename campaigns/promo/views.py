"""Marketer pages for promo code pools: the list (free and handed-out counts, a form for a
new pool), a pool's page (upload, generate, its codes), and a campaign's codes as CSV.
Thin: every write is a campaigns.promo.services call."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from campaigns.models import Campaign
from campaigns.promo.forms import GenerateForm, PoolForm, UploadForm
from campaigns.promo.models import PromoPool
from campaigns.promo.services import (
    promo_codes_generate,
    promo_codes_of_campaign,
    promo_codes_upload,
    promo_pool_create,
    promo_pool_delete,
    promo_pools_counted,
)
from config.core.csv_safe import csv_lines
from config.core.errors import HeraldError, form_error
from config.core.roles import Role, has_role, role_required

PAGE_SIZE = 100
# Duplicates listed on the page after an upload (the API answers all of them).
SHOWN_DUPLICATES = 50


@role_required(Role.VIEWER)
def promo_list(request):
    form = PoolForm()
    if request.method == "POST":
        if not has_role(request.user, Role.MARKETER):
            return HttpResponse(status=403)
        form = PoolForm(request.POST)
        if form.is_valid():
            try:
                pool = promo_pool_create(**form.cleaned_data)
            except HeraldError as exc:
                form_error(form, exc)
            else:
                messages.success(request, f"Pool {pool.key} created.")
                return redirect("promo_pool", pool.pk)
    return render(
        request,
        "campaigns/promo_list.html",
        {
            "pools": promo_pools_counted().order_by("name", "pk"),
            "form": form,
            "can_write": has_role(request.user, Role.MARKETER),
        },
        status=400 if form.errors else 200,
    )


def _pool_page(request, pool, *, upload=None, generate=None, duplicates=None, status=200):
    counted = promo_pools_counted().get(pk=pool.pk)
    codes = pool.codes.select_related("contact", "delivery").order_by("-assigned_at", "pk")
    shown = request.GET.get("show", "")
    if shown == "assigned":
        codes = codes.filter(assigned_at__isnull=False)
    elif shown == "free":
        codes = codes.filter(assigned_at__isnull=True)
    page = Paginator(codes, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/promo_pool.html",
        {
            "pool": counted,
            "page": page,
            "show": shown,
            "upload_form": upload or UploadForm(),
            "generate_form": generate or GenerateForm(),
            "duplicates": duplicates,
            "can_write": has_role(request.user, Role.MARKETER),
        },
        status=status,
    )


@role_required(Role.VIEWER)
def promo_pool(request, pk: int):
    return _pool_page(request, get_object_or_404(PromoPool, pk=pk))


@require_POST
@role_required(Role.MARKETER)
def promo_pool_upload(request, pk: int):
    pool = get_object_or_404(PromoPool, pk=pk)
    form = UploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            result = promo_codes_upload(pool=pool, content=form.cleaned_data["file"].read())
        except HeraldError as exc:
            form_error(form, exc, field="file")
        else:
            messages.success(
                request,
                f"{result.added} codes added; {len(result.duplicates)} duplicates skipped.",
            )
            if not result.duplicates:
                return redirect("promo_pool", pool.pk)
            return _pool_page(request, pool, duplicates=result.duplicates[:SHOWN_DUPLICATES])
    return _pool_page(request, pool, upload=form, status=400)


@require_POST
@role_required(Role.MARKETER)
def promo_pool_generate(request, pk: int):
    pool = get_object_or_404(PromoPool, pk=pk)
    form = GenerateForm(request.POST)
    if form.is_valid():
        try:
            added = promo_codes_generate(pool=pool, **form.cleaned_data)
        except HeraldError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"{added} codes generated.")
            return redirect("promo_pool", pool.pk)
    return _pool_page(request, pool, generate=form, status=400)


@require_POST
@role_required(Role.MARKETER)
def promo_pool_delete_view(request, pk: int):
    pool = get_object_or_404(PromoPool, pk=pk)
    try:
        promo_pool_delete(pool=pool)
    except HeraldError as exc:
        messages.error(request, exc.message)
        return redirect("promo_pool", pool.pk)
    messages.success(request, f"Pool {pool.key} deleted.")
    return redirect("promo_home")


@role_required(Role.VIEWER)
def campaign_promo_codes_csv(request, pk: int):
    """code, pool, contact id, email, sent at: every code the campaign's messages carried."""
    campaign = get_object_or_404(Campaign, pk=pk)
    response = StreamingHttpResponse(
        csv_lines(_promo_code_rows(campaign)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-codes.csv"'
    return response


def _promo_code_rows(campaign: Campaign):
    """Uploaded codes are the marketer's text: csv_lines makes a formula-like one inert."""
    yield ["code", "pool", "contact_id", "email", "sent_at"]
    for code in promo_codes_of_campaign(campaign).iterator(chunk_size=2000):
        sent_at = code.delivery.sent_at if code.delivery else None
        yield [
            code.code,
            code.pool.key,
            code.contact_id or "",
            code.delivery.locator if code.delivery else "",
            sent_at.isoformat() if sent_at else "",
        ]
