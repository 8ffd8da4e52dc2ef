"""The campaign report: Delivered means delivered, and the people who opened, clicked,
bounced or unsubscribed, listed page by page and exported as CSV."""

import csv
import io

import pytest

from campaigns.analytics import campaign_delivered, stats_refresh
from tests.campaigns.test_analytics import add_event, ledger, make_campaign, make_delivery, make_run  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_viewer(client, viewer):
    client.force_login(viewer)
    return client


def test_delivered_counts_reported_deliveries_never_opens(ledger):  # noqa: F811
    delivered = campaign_delivered(ledger["campaign"])
    # No email row carries a provider's delivery report, so email counts sent and not
    # bounced (sent, opened, clicked, complained: 4), not its 3 openers; SMS was reported.
    assert delivered["channels"]["email"] == {"delivered": 4, "basis": "sent_not_bounced"}
    assert delivered["channels"]["sms"] == {"delivered": 1, "basis": "reported"}
    assert delivered["delivered"] == 5
    assert delivered["basis"] == "mixed"


def test_delivered_with_provider_reports_counts_only_delivered_rows():
    campaign = make_campaign()
    run = make_run(campaign)
    for n in range(3):
        make_delivery(
            run,
            n,
            status="delivered",
            sent_at="2026-01-01T10:00Z",
            delivered_at="2026-01-01T10:01Z",
        )
    # Opened, never reported delivered: not a delivery.
    make_delivery(
        run,
        9,
        status="opened",
        sent_at="2026-01-01T10:00Z",
        opened_at="2026-01-01T11:00Z",
        open_count=1,
    )
    assert campaign_delivered(campaign) == {
        "delivered": 3,
        "basis": "reported",
        "channels": {"email": {"delivered": 3, "basis": "reported"}},
    }


def test_report_shows_delivered_with_its_basis(as_viewer, ledger):  # noqa: F811
    stats_refresh(run_ids=[ledger["run"].pk])
    html = as_viewer.get(f"/campaigns/{ledger['campaign'].pk}/report/").content.decode()
    assert 'data-testid="total-delivered">5<' in html
    assert "reported deliveries, or sent and not bounced" in html
    assert f'href="/campaigns/{ledger["campaign"].pk}/report/opened/"' in html


@pytest.mark.parametrize(
    "kind, expected",
    [
        (
            "opened",
            {
                "r{run}-3-email@example.com",
                "r{run}-4-email@example.com",
                "r{run}-7-email@example.com",
            },
        ),
        ("clicked", {"r{run}-4-email@example.com"}),
        ("bounced", {"r{run}-5-email@example.com"}),
        ("unsubscribed", {"r{run}-7-email@example.com"}),
    ],
)
def test_people_lists(as_viewer, ledger, kind, expected):  # noqa: F811
    run = ledger["run"].pk
    response = as_viewer.get(f"/campaigns/{ledger['campaign'].pk}/report/{kind}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('data-testid="person-row"') == len(expected)
    for address in expected:
        assert address.format(run=run) in html


def test_people_are_paged(as_viewer):
    campaign = make_campaign()
    run = make_run(campaign)
    for n in range(55):
        make_delivery(
            run,
            n,
            status="opened",
            sent_at="2026-01-01T10:00Z",
            opened_at=f"2026-01-01T10:{n:02}Z",
            open_count=1,
        )
    first = as_viewer.get(f"/campaigns/{campaign.pk}/report/opened/").content.decode()
    assert first.count('data-testid="person-row"') == 50
    assert "55 recipients" in first
    second = as_viewer.get(f"/campaigns/{campaign.pk}/report/opened/", {"page": 2}).content.decode()
    assert second.count('data-testid="person-row"') == 5
    assert f"r{run.pk}-54-email@example.com" in second


def test_people_csv_is_streamed_and_safe_from_formulas(as_viewer):
    campaign = make_campaign()
    run = make_run(campaign)
    risky = make_delivery(
        run,
        1,
        status="clicked",
        sent_at="2026-01-01T10:00Z",
        opened_at="2026-01-01T10:05Z",
        clicked_at="2026-01-01T10:06Z",
        open_count=1,
        click_count=1,
    )
    risky.contact.first_name = '=HYPERLINK("http://evil")'
    risky.contact.last_name = "+1"
    risky.contact.save()
    response = as_viewer.get(f"/campaigns/{campaign.pk}/report/clicked.csv")
    assert response.status_code == 200
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["contact_id", "name", "channel", "address", "at", "opens", "clicks"]
    assert rows[1][1].startswith("'=HYPERLINK")
    assert rows[1][3] == risky.locator
    assert rows[1][4].startswith("2026-01-01T10:06")


def test_unknown_list_is_404_and_an_outsider_is_refused(client, outsider, viewer):
    campaign = make_campaign()
    client.force_login(viewer)
    assert client.get(f"/campaigns/{campaign.pk}/report/everyone/").status_code == 404
    client.force_login(outsider)
    assert client.get(f"/campaigns/{campaign.pk}/report/opened.csv").status_code in (302, 403)


def test_report_in_ukrainian(as_viewer, ledger):  # noqa: F811
    html = as_viewer.get(
        f"/campaigns/{ledger['campaign'].pk}/report/", HTTP_ACCEPT_LANGUAGE="uk"
    ).content.decode()
    assert "Доставлено" in html
