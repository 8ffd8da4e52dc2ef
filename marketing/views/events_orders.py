"""Marketer pages for event history, an event, event types and their declared params, event
analytics, orders and the RFM grid. Thin: reads through marketing.events /
marketing.event_analytics / marketing.rfm, writes through their services."""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from config.core.roles import Role, has_role, role_required
from contacts.errors import ContactsRuleError
from contacts.paging import keyset_page, page_count
from marketing import rfm
from marketing.event_analytics import analytics_json, analytics_query, event_analytics
from marketing.event_params import DeclarationError, event_type_declare
from marketing.events import (
    EventTypeError,
    event_starts_workflows,
    event_type_create,
    event_type_update,
    events_delete,
    events_search,
)
from marketing.filters import FilterValueError, event_filters, instant
from marketing.forms import DeclaredParamFormSet, EventTypeDeclarationForm
from marketing.models import Event, EventType, Order, OrderStatus


def _base_query(request) -> str:
    query = request.GET.copy()
    for name in ("after", "before"):
        query.pop(name, None)
    return query.urlencode()


@role_required(Role.VIEWER)
def event_history(request):
    error = None
    try:
        events = events_search(**event_filters(request.GET))
    except FilterValueError as exc:
        error = f"{exc.field}: {exc.message}"
        events = events_search()
    page = keyset_page(events, request.GET)
    for event in page.rows:
        event.params_json = json.dumps(event.params, indent=2, ensure_ascii=False)
    count, exact = page_count(events, page)
    return render(
        request,
        "marketing/events_history.html",
        {
            "page": page,
            "count": count,
            "count_exact": exact,
            "types": EventType.objects.order_by("key").prefetch_related("workflows"),
            "query": request.GET,
            "filter_error": error,
            "base_query": _base_query(request),
            "any_events": bool(page.rows) or Event.objects.exists(),
        },
    )


@role_required(Role.VIEWER)
def event_types(request):
    if request.method == "POST":
        if not has_role(request.user, Role.MARKETER):
            raise PermissionDenied(_("Creating event types needs the marketer role."))
        try:
            created = event_type_create(
                key=request.POST.get("key", "").strip(), name=request.POST.get("name", "")
            )
            messages.success(request, _("Event type %(key)s created.") % {"key": created.key})
        except EventTypeError as exc:
            messages.error(
                request,
                _("Not created: %(field)s: %(problem)s")
                % {"field": exc.field, "problem": exc.message},
            )
        return redirect("event_types")
    return render(
        request,
        "marketing/events_types.html",
        {
            "types": EventType.objects.order_by("key").prefetch_related("workflows"),
            "can_write": has_role(request.user, Role.MARKETER),
        },
    )


@require_POST
@role_required(Role.MARKETER)
def event_type_edit(request, pk: int):
    event_type = get_object_or_404(EventType, pk=pk)
    try:
        event_type_update(
            event_type=event_type,
            key=request.POST.get("key", "").strip(),
            name=request.POST.get("name", ""),
        )
        messages.success(request, _("Event type %(key)s saved.") % {"key": event_type.key})
    except EventTypeError as exc:
        messages.error(
            request,
            _("Not saved: %(field)s: %(problem)s") % {"field": exc.field, "problem": exc.message},
        )
    return redirect("event_types")


@role_required(Role.VIEWER)
def event_detail(request, pk: int):
    event = get_object_or_404(Event.objects.select_related("event_type", "contact"), pk=pk)
    return render(
        request,
        "marketing/events_detail.html",
        {
            "event": event,
            "params_json": json.dumps(event.params, indent=2, ensure_ascii=False),
            "starts_workflows": event_starts_workflows(event),
            "can_write": has_role(request.user, Role.MARKETER),
        },
    )


@require_POST
@role_required(Role.MARKETER)
def event_delete(request, pk: int):
    event = get_object_or_404(Event.objects.select_related("event_type"), pk=pk)
    events_delete(event_ids=[event.pk], actor_id=request.user.pk)
    messages.success(
        request,
        _("Event %(type)s %(key)s deleted.")
        % {"type": event.event_type.key, "key": event.key_value},
    )
    return redirect("event_history")


def _declaration_row_field(field: str) -> tuple[int, str] | None:
    """("params[2].name") -> (2, "name"): the formset row and field a DeclarationError names."""
    head, _dot, name = field.partition("].")
    index = head.removeprefix("params[")
    return (int(index), name) if index.isdigit() and name else None


@role_required(Role.VIEWER)
def event_type_detail(request, pk: int):
    event_type = get_object_or_404(EventType, pk=pk)
    can_write = has_role(request.user, Role.MARKETER)
    if request.method == "POST" and not can_write:
        raise PermissionDenied(_("Declaring parameters needs the marketer role."))
    if request.method == "POST":
        formset = DeclaredParamFormSet(request.POST, prefix="params")
        form = EventTypeDeclarationForm(request.POST)
        if formset.is_valid() and form.is_valid():
            # Rows without a name are the blank ones; their positions map errors back.
            rows = [
                (index, row)
                for index, row in enumerate(formset.cleaned_data)
                if row.get("name", "").strip()
            ]
            try:
                event_type_declare(
                    event_type=event_type,
                    params=[row for _index, row in rows],
                    invalid_mode=form.cleaned_data["invalid_mode"],
                    flagged_start_workflows=form.cleaned_data["flagged_start_workflows"],
                )
            except DeclarationError as exc:
                where = _declaration_row_field(exc.field)
                if where is not None and where[0] < len(rows):
                    formset.forms[rows[where[0]][0]].add_error(where[1], exc.message)
                else:
                    form.add_error(None, exc.message)
            else:
                messages.success(
                    request,
                    _("Declared params of %(key)s saved.") % {"key": event_type.key},
                )
                return redirect("event_type_detail", pk=event_type.pk)
    else:
        formset = DeclaredParamFormSet(initial=event_type.params_declared, prefix="params")
        form = EventTypeDeclarationForm(
            initial={
                "invalid_mode": event_type.invalid_mode,
                "flagged_start_workflows": event_type.flagged_start_workflows,
            }
        )
    return render(
        request,
        "marketing/events_type_detail.html",
        {
            "event_type": event_type,
            "formset": formset,
            "form": form,
            "can_write": can_write,
            "flagged_count": Event.objects.filter(
                event_type=event_type, problems__isnull=False
            ).count(),
        },
    )


@role_required(Role.VIEWER)
def event_analytics_page(request):
    error = None
    try:
        query = analytics_query(request.GET)
        figures = event_analytics(**query)
    except FilterValueError as exc:
        error = f"{exc.field}: {exc.message}"
        figures = event_analytics()
    data = analytics_json(figures)
    chart = {
        "labels": data["days"],
        "series": [{"label": item["key"], "data": item["perDay"]} for item in data["types"][:8]],
    }
    return render(
        request,
        "marketing/events_analytics.html",
        {
            "figures": figures,
            "chart": chart,
            "types": EventType.objects.order_by("key"),
            "query": request.GET,
            "filter_error": error,
        },
    )


def _orders_filtered(request) -> tuple:
    orders = Order.objects.select_related("contact")
    error = None
    status = request.GET.get("status", "")
    if status in OrderStatus.values:
        orders = orders.filter(status=status)
    search = request.GET.get("q", "").strip()
    if search:
        orders = orders.filter(
            Q(external_order_id=search) | Q(external_customer_id=search) | Q(email=search.lower())
        )
    try:
        date_from = instant(request.GET.get("from"), "from")
        date_to = instant(request.GET.get("to"), "to", end_of_day=True)
    except FilterValueError as exc:
        error = f"{exc.field}: {exc.message}"
        date_from = date_to = None
    if date_from:
        orders = orders.filter(date__gte=date_from)
    if date_to:
        orders = orders.filter(date__lt=date_to)
    return orders, error


@role_required(Role.VIEWER)
def order_list(request):
    orders, error = _orders_filtered(request)
    page = keyset_page(orders, request.GET)
    count, exact = page_count(orders, page)
    return render(
        request,
        "marketing/orders_list.html",
        {
            "page": page,
            "count": count,
            "count_exact": exact,
            "statuses": OrderStatus.choices,
            "query": request.GET,
            "filter_error": error,
            "base_query": _base_query(request),
            "any_orders": bool(page.rows) or Order.objects.exists(),
        },
    )


@role_required(Role.VIEWER)
def order_detail(request, pk: int):
    order = get_object_or_404(Order.objects.select_related("contact"), pk=pk)
    return render(
        request,
        "marketing/orders_detail.html",
        {
            "order": order,
            "items": order.items.all(),
            "raw_json": json.dumps(order.raw, indent=2, ensure_ascii=False, default=str),
        },
    )


@role_required(Role.VIEWER)
def rfm_grid(request):
    grid = rfm.rfm_grid()
    return render(
        request,
        "marketing/rfm_grid.html",
        {
            "grid": grid,
            "can_write": has_role(request.user, Role.MARKETER),
            "frequencies": list(rfm.SCORES),
        },
    )


@require_POST
@role_required(Role.MARKETER)
def rfm_recompute(request):
    scored = rfm.rfm_recompute()
    messages.success(
        request,
        ngettext(
            "RFM scores recomputed for %(count)s contact.",
            "RFM scores recomputed for %(count)s contacts.",
            scored,
        )
        % {"count": scored},
    )
    return redirect("rfm_grid")


@require_POST
@role_required(Role.MARKETER)
def rfm_segment(request):
    try:
        cells = rfm.cells_parse(request.POST.getlist("cells"))
        segment = rfm.rfm_segment_create(name=request.POST.get("name", ""), cells=cells)
    except (rfm.RFMError, ContactsRuleError) as exc:
        messages.error(request, _("Segment not saved: %(problem)s") % {"problem": exc.message})
        return redirect("rfm_grid")
    messages.success(
        request,
        ngettext(
            "Segment “%(name)s” saved from %(count)s RFM cell.",
            "Segment “%(name)s” saved from %(count)s RFM cells.",
            len(cells),
        )
        % {"name": segment.name, "count": len(cells)},
    )
    return redirect(reverse("segment_detail", args=[segment.pk]))
