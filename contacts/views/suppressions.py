"""The suppression list page: which addresses no message may reach, and why (a hard bounce,
a complaint, repeated soft bounces, a marketer's decision); search, filters, lifted entries
on request, "Lift" and "Add address". Viewers read; marketers write, through
contacts.suppression.
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from config.core.errors import form_error
from config.core.roles import Role, has_role, role_required
from contacts.errors import ContactsRuleError
from contacts.forms import SuppressionAddForm, SuppressionFilterForm
from contacts.models import Suppression
from contacts.paging import keyset_page, page_count
from contacts.suppression import (
    address_normalise,
    suppression_add_manual,
    suppression_lift,
    suppressions_search,
)
from contacts.views.contacts import _back, _query_without


@role_required(Role.VIEWER)
def suppression_list(request):
    return _suppression_page(request, form=SuppressionAddForm())


def _suppression_page(request, *, form, status=200):
    filters = SuppressionFilterForm(request.GET or None)
    values = filters.cleaned_data if filters.is_valid() else {}
    entries = suppressions_search(
        address=values.get("q") or "",
        channel=values.get("channel") or "",
        reason=values.get("reason") or "",
        lifted=bool(values.get("lifted")),
    )
    page = keyset_page(entries, request.GET)
    count, exact = page_count(entries, page)
    return render(
        request,
        "contacts/suppression_list.html",
        {
            "page": page,
            "filters": filters,
            "q": values.get("q") or "",
            "filtered": any(values.get(name) for name in ("q", "channel", "reason", "lifted")),
            "count": count,
            "count_exact": exact,
            "base_query": _query_without(request, "after", "before"),
            "form": form,
            "can_write": has_role(request.user, Role.MARKETER),
        },
        status=status,
    )


@require_POST
@role_required(Role.MARKETER)
def suppression_add(request):
    form = SuppressionAddForm(request.POST)
    if not form.is_valid():
        return _suppression_page(request, form=form, status=400)
    try:
        added = suppression_add_manual(
            channel=form.cleaned_data["channel"],
            address=form.cleaned_data["address"],
            detail=form.cleaned_data["detail"],
            user=request.user,
        )
    except ContactsRuleError as exc:
        form_error(form, exc)
        return _suppression_page(request, form=form, status=400)
    address = address_normalise(form.cleaned_data["channel"], form.cleaned_data["address"])
    if added:
        messages.success(
            request,
            gettext("%(address)s is suppressed: no message will reach it.") % {"address": address},
        )
    else:
        messages.info(
            request,
            gettext("%(address)s was already suppressed; its first reason stays.")
            % {"address": address},
        )
    return _back(request, "suppression_list")


@require_POST
@role_required(Role.MARKETER)
def suppression_lift_view(request, pk: int):
    suppression = get_object_or_404(Suppression, pk=pk)
    if suppression_lift(suppression=suppression, user=request.user):
        messages.success(
            request,
            gettext("%(address)s is no longer suppressed; messages may reach it again.")
            % {"address": suppression.address},
        )
    else:
        messages.info(
            request, gettext("%(address)s was already lifted.") % {"address": suppression.address}
        )
    return _back(request, "suppression_list")
