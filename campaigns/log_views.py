"""The message log: every Delivery (single messages, test sends, campaign runs), newest first,
with filters, and one message's status history.

The ledger grows to millions of rows, so the list pages by primary key (keyset: no OFFSET)
and its count stops at a cap. Each filter is chosen to be served by an index where one
exists: request_id (unique), status/channel + pk order, created_at (indexed).
"""

import datetime

from django import forms
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from campaigns.models import Delivery, DeliveryStatus
from contacts.models import ChannelType
from contacts.paging import keyset_page, page_count
from marketing.roles import Role, role_required


class MessageLogFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *DeliveryStatus.choices], required=False
    )
    channel = forms.ChoiceField(choices=[("", "Any channel"), *ChannelType.choices], required=False)
    request_id = forms.UUIDField(
        required=False, label="Request id", help_text="The requestId the API answered."
    )
    locator = forms.CharField(
        required=False, max_length=254, label="Address contains", help_text="Email or phone."
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
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
