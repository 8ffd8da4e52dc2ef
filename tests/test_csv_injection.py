"""CSV injection: every CSV export Herald offers writes a formula-like value as inert text
(config.core.csv_safe), and the contacts export still imports back unchanged.

EXPORTS names every export; test_every_csv_export_is_covered fails when a new `.csv` route or
admin CSV action appears without being added here."""

import csv
import io
import json

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from campaigns.promo.models import CodeSource, PromoCode
from campaigns.promo.services import promo_pool_create
from config.core.csv_safe import FORMULA_PREFIXES, cell_inert, cell_restored
from contacts.bulk.jobs import import_job_run
from contacts.csv_files import upload_save
from contacts.csv_import import csv_import_run
from contacts.imports import csv_import_start
from contacts.models import Contact, ImportJob, ImportStatus
from tests.campaigns.test_analytics import make_campaign, make_delivery, make_run
from tests.contacts.factories import ContactFactory, CustomFieldFactory

pytestmark = pytest.mark.django_db

PAYLOADS = [
    "=1+2",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1)",
    "\t=1+2",
    "\r=1+2",
    "\uff1d1+2",  # full-width equals sign
]


@pytest.fixture(autouse=True)
def uploads_in_tmp(settings, tmp_path):
    settings.VAR_DIR = tmp_path


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def assert_inert(rows: list[list[str]]) -> None:
    """No cell starts with a character a spreadsheet would run as a formula."""
    for number, row in enumerate(rows, start=1):
        for cell in row:
            assert not cell or cell[0] not in FORMULA_PREFIXES, (number, cell)


def assert_payloads_quoted(cells: list[str], shown: list[str]) -> None:
    """Each payload, as the export shows it, is there with the quote in front."""
    for value in shown:
        assert "'" + value in cells, (value, cells)
        assert cell_restored("'" + value) == value


# -- the exports: each puts every payload in a field it shows, fetches it, returns the rows
# and the values it shows in cells of their own ------------------------------------------


def contacts_export(client, admin_user):
    text = CustomFieldFactory(group_key="NOTES", key="TEXT", type="text")
    for n, payload in enumerate(PAYLOADS):
        ContactFactory(
            email=f"c{n}@example.com",
            first_name=payload,
            tags=[payload.strip()],
            fields={str(text.pk): payload},
        )
    return rows_of(client.get("/contacts/export.csv")), PAYLOADS


def contacts_admin_export(client, admin_user):
    ids = [
        ContactFactory(email=f"a{n}@example.com", last_name=p).pk for n, p in enumerate(PAYLOADS)
    ]
    response = client.post(
        "/admin/contacts/contact/", {"action": "export_csv", "_selected_action": ids}
    )
    return rows_of(response), PAYLOADS


def file_import_failures(client, admin_user):
    body = io.StringIO()
    writer = csv.writer(body)
    writer.writerow(["Email", "First name"])
    for payload in PAYLOADS:
        writer.writerow(["no-at-sign", payload])
    job = csv_import_start(options={"dedupeOn": "email"}, file_name="t.csv")
    upload_save(job, body.getvalue().encode())
    csv_import_run(job_id=job.pk)
    # The importer strips cells, so a tab- or CR-led value is reported without it.
    return rows_of(client.get(f"/contacts/import/{job.session_id}/failed.csv")), [
        p.strip() for p in PAYLOADS
    ]


def api_import_failures(client, admin_user):
    from config.core.api_keys import api_key_create
    from tests.support.api import APIClient

    _, secret = api_key_create(name="full", rights="full", created_by=admin_user)
    key = type("Key", (), {"secret": secret})()
    contacts = [{"channels": [{"type": "email", "value": p}], "firstName": p} for p in PAYLOADS]
    response = APIClient(client).post("/api/v1/contacts", key=key, body={"contacts": contacts})
    job = ImportJob.objects.get(session_id=response.json()["asyncSessionId"])
    import_job_run(job_id=job.pk)
    rows = rows_of(client.get(f"/contacts/import/{job.session_id}/failed.csv"))
    # The data column is the row as JSON; what matters is that it starts no formula.
    assert [json.loads(row[2])["firstName"] for row in rows[1:]] == PAYLOADS
    return rows, []


def campaign_people(client, admin_user):
    campaign = make_campaign()
    run = make_run(campaign)
    now = timezone.now()
    for n, payload in enumerate(PAYLOADS):
        engaged = make_delivery(
            run,
            2 * n,
            status="unsubscribed",
            sent_at=now,
            opened_at=now,
            clicked_at=now,
            open_count=1,
            click_count=1,
        )
        bounced = make_delivery(run, 2 * n + 1, status="bounced", sent_at=now, failed_at=now)
        Contact.objects.filter(pk__in=[engaged.contact_id, bounced.contact_id]).update(
            first_name=payload
        )
    rows = []
    for kind in ("opened", "clicked", "bounced", "unsubscribed"):
        listed = rows_of(client.get(f"/campaigns/{campaign.pk}/report/{kind}.csv"))
        assert len(listed) == 1 + len(PAYLOADS), kind
        rows += listed
    # The name column is first and last name joined and stripped.
    return rows, [p.strip() for p in PAYLOADS]


def campaign_promo_codes(client, admin_user):
    campaign = make_campaign()
    run = make_run(campaign)
    pool = promo_pool_create(name="Spring", key="SPRING")
    for n, payload in enumerate(PAYLOADS):
        delivery = make_delivery(run, n, status="sent", sent_at=timezone.now())
        PromoCode.objects.create(
            pool=pool,
            code=payload,
            source=CodeSource.UPLOADED,
            delivery=delivery,
            contact_id=delivery.contact_id,
            assigned_at=timezone.now(),
        )
    return rows_of(client.get(f"/campaigns/{campaign.pk}/promo-codes.csv")), PAYLOADS


# URL name (or "admin:<model>.<action>") → the export's exercise.
EXPORTS = {
    "contacts_export_csv": contacts_export,
    "admin:contacts.contact.export_csv": contacts_admin_export,
    "import_failures_csv": file_import_failures,
    "import_failures_csv (API import)": api_import_failures,
    "campaign_report_people_csv": campaign_people,
    "campaign_promo_codes_csv": campaign_promo_codes,
}


def _csv_url_names(patterns) -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            names |= _csv_url_names(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and ".csv" in str(pattern.pattern):
            names.add(pattern.name)
    return names


def _admin_csv_actions() -> set[str]:
    found = set()
    for model, model_admin in admin.site._registry.items():
        for action in model_admin.actions or ():
            name = action if isinstance(action, str) else action.__name__
            if "csv" in name or "export" in name:
                found.add(f"admin:{model._meta.label_lower}.{name}")
    return found


def test_every_csv_export_is_covered():
    covered = {name.split(" ")[0] for name in EXPORTS}
    assert _csv_url_names(get_resolver().url_patterns) | _admin_csv_actions() == covered


@pytest.mark.parametrize("export", EXPORTS.values(), ids=EXPORTS.keys())
def test_formula_like_values_are_inert_in_every_csv_export(client, admin_user, export):
    client.force_login(admin_user)
    rows, shown = export(client, admin_user)
    assert len(rows) > len(PAYLOADS) // 2, rows
    assert_inert(rows)
    assert_payloads_quoted([cell for row in rows for cell in row], shown)


TRICKY = [
    *PAYLOADS,
    "'=1+2",  # a value that really starts with a quote before a formula
    "''-3",
    "'plain",  # a quote before text: no formula, left as it is
    "'",
    "a=b",
    "50% off",
]


@pytest.mark.parametrize("value", TRICKY)
def test_restoring_an_inert_cell_gives_the_value_back(value):
    cell = cell_inert(value)
    assert not cell or cell[0] not in FORMULA_PREFIXES
    assert cell_restored(cell) == value


def test_contacts_export_imports_formula_like_and_quoted_values_back_unchanged(client, marketer):
    text = CustomFieldFactory(group_key="NOTES", key="TEXT", type="text")
    for n, value in enumerate(TRICKY):
        ContactFactory(
            email=f"t{n}@example.com",
            first_name=value.strip(),  # cells are stripped on import
            last_name="x" + value.strip(),
            tags=[value.strip()] if value.strip() else [],
            fields={str(text.pk): value.strip()},
        )
    client.force_login(marketer)
    response = client.get("/contacts/export.csv")
    content = b"".join(response.streaming_content)
    columns = ["email", "first_name", "last_name", "tags", "fields"]
    before = list(Contact.objects.order_by("email").values(*columns))
    Contact.objects.all().delete()

    job = csv_import_start(options={"dedupeOn": "email"}, file_name="export.csv")
    upload_save(job, content)
    csv_import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FINISHED, job.description
    assert job.failed_count == 0, list(job.failures.values_list("reason", flat=True))
    assert list(Contact.objects.order_by("email").values(*columns)) == before
