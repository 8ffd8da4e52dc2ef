"""The campaign report's lists of people: who opened, clicked, bounced or unsubscribed, page
by page on the report and as a streamed CSV (campaigns.analytics reads them)."""

from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _

from campaigns.analytics import PEOPLE_KINDS, campaign_people, campaign_people_export
from campaigns.models import Campaign
from config.core.csv_safe import csv_lines
from config.core.db_router import replica_reading
from config.core.roles import Role, role_required

PEOPLE_TITLES = {
    "opened": _("Who opened"),
    "clicked": _("Who clicked"),
    "bounced": _("Whose message bounced"),
    "unsubscribed": _("Who unsubscribed"),
}
# The CSV's columns are for integrators and spreadsheets: English, stable.
CSV_HEADER = ["contact_id", "name", "channel", "address", "at", "opens", "clicks"]


def _kind(kind: str) -> str:
    if kind not in PEOPLE_KINDS:
        raise Http404("unknown list")
    return kind


@role_required(Role.VIEWER)
@replica_reading
def campaign_report_people(request, pk: int, kind: str):
    campaign = get_object_or_404(Campaign, pk=pk)
    kind = _kind(kind)
    try:
        number = int(request.GET.get("page", 1))
    except ValueError:
        number = 1
    people = campaign_people(campaign, kind=kind, page=number)
    return render(
        request,
        "campaigns/report_people.html",
        {
            "campaign": campaign,
            "kind": kind,
            "title": PEOPLE_TITLES[kind],
            "people": people,
            "window": range(
                max(1, people["page"] - 2), min(people["last"], people["page"] + 2) + 1
            ),
            "kinds": list(PEOPLE_TITLES.items()),
        },
    )


def _csv_rows(campaign: Campaign, kind: str):
    yield CSV_HEADER
    for person in campaign_people_export(campaign, kind=kind):
        yield [
            person["contact_id"],
            person["name"],
            person["channel"],
            person["address"],
            person["at"].isoformat() if person["at"] else "",
            person["opens"],
            person["clicks"],
        ]


@role_required(Role.VIEWER)
@replica_reading
def campaign_report_people_csv(request, pk: int, kind: str):
    campaign = get_object_or_404(Campaign, pk=pk)
    kind = _kind(kind)
    response = StreamingHttpResponse(csv_lines(_csv_rows(campaign, kind)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-{kind}.csv"'
    return response
