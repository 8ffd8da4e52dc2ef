"""The message log: every Delivery (single messages, test sends, campaign runs), newest first,
with filters, and one message's status history.

The ledger grows to millions of rows, so the list pages by primary key (keyset: no OFFSET)
and its count stops at a cap. Each filter is chosen to be served by an index where one
exists: request_id (unique), status/channel + pk order, created_at (indexed).
"""

import datetime

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from campaigns.messages import MessageError, template_test_send
from campaigns.models import Delivery, DeliveryStatus
from config.core.roles import Role, role_required
from contacts.models import ChannelType
from contacts.paging import keyset_page, page_count
from templates.errors import PreviewInputError
from templates.models import MessageTemplate
from templates.preview import preview_contact_find, preview_data_parse
from templates.views import FIELD_LABELS


class MessageLogFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", _("Any status")), *DeliveryStatus.choices], required=False, label=_("Status")
    )
    channel = forms.ChoiceField(
        choices=[("", _("Any channel")), *ChannelType.choices], required=False, label=_("Channel")
    )
    request_id = forms.UUIDField(required=False, label=_("Request id (as the API answered)"))
    locator = forms.CharField(
        required=False, max_length=254, label=_("Address contains (email or phone)")
    )
    since = forms.DateField(
        required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end date is before the start date."))
        return cleaned

    def apply(self, queryset):
        if not self.is_valid():
            return queryset.none()
        data = self.cleaned_data
        if data["request_id"]:
            queryset = queryset.filter(request_id=data["request_id"])
        if data["status"]:
            queryset = queryset.filter(status=data["status"])
        if data["channel"]:
            queryset = queryset.filter(channel=data["channel"])
        if data["locator"]:
            queryset = queryset.filter(locator__icontains=data["locator"].strip())
        # Dates are days in the site's time zone; the end day is included.
        if data["since"]:
            queryset = queryset.filter(created_at__gte=_day_start(data["since"]))
        if data["until"]:
            end = _day_start(data["until"] + datetime.timedelta(days=1))
            queryset = queryset.filter(created_at__lt=end)
        return queryset


def _day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


@role_required(Role.VIEWER)
def message_log(request):
    form = MessageLogFilterForm(request.GET or None)
    deliveries = Delivery.objects.select_related("contact", "template_version__template")
    if form.is_bound:
        deliveries = form.apply(deliveries)
    page = keyset_page(deliveries, request.GET)
    count, exact = page_count(deliveries, page)
    params = request.GET.copy()
    for name in ("after", "before"):
        params.pop(name, None)
    return render(
        request,
        "campaigns/message_log.html",
        {
            "form": form,
            "page": page,
            "count": count,
            "count_exact": exact,
            "filtered": form.is_bound and any(form.data.get(k) for k in form.fields),
            "base_query": params.urlencode(),
        },
    )


@role_required(Role.VIEWER)
def message_detail(request, request_id):
    delivery = get_object_or_404(
        Delivery.objects.select_related("contact", "template_version__template", "send_request"),
        request_id=request_id,
    )
    return render(
        request,
        "campaigns/message_log_detail.html",
        {"delivery": delivery, "events": delivery.events.all()},
    )


@require_POST
@role_required(Role.MARKETER)
def template_test_send_view(request, pk: int):
    """Send a template's saved draft to one address (the form beside its preview); the
    message goes into this log."""
    template = get_object_or_404(MessageTemplate, pk=pk)
    try:
        delivery = template_test_send(
            template=template,
            email=request.POST.get("email", ""),
            data=preview_data_parse(request.POST.get("data")),
            contact=preview_contact_find(request.POST.get("contact")),
        )
    except PreviewInputError as exc:
        messages.error(
            request,
            gettext("Test not sent: %(field)s — %(problem)s")
            % {"field": FIELD_LABELS.get(exc.field, exc.field), "problem": exc.message},
        )
    except MessageError as exc:
        messages.error(request, gettext("Test not sent: %(reason)s") % {"reason": exc})
    else:
        log_url = reverse("message_detail", args=[delivery.request_id])
        messages.success(
            request,
            gettext("Test message to %(address)s queued; follow it in the message log (%(url)s).")
            % {"address": delivery.locator, "url": log_url},
        )
    return redirect("template_edit", pk=template.pk)
