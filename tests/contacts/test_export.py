"""CSV export: the import's format, custom field columns, segments, formula neutralising."""

import csv
import io

import pytest
from django.utils import timezone

from config.core.csv_safe import cell_inert
from contacts.csv_files import STANDARD_HEADERS, upload_save
from contacts.csv_import import csv_import_run
from contacts.export import EXPORT_PAGE
from contacts.imports import csv_import_start
from contacts.models import Contact, ImportStatus, Segment, SegmentKind
from tests.contacts.factories import ContactFactory, CustomFieldFactory


def export(client, query: str = "") -> list[list[str]]:
    response = client.get(f"/contacts/export.csv{query}")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="contacts-')
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.fixture
def logged_in(client, marketer):
    client.force_login(marketer)
    return client


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+380942583691", "'+380942583691"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (42, "42"),
        (-5, "'-5"),
        (True, "true"),
    ],
)
def test_cells_that_a_spreadsheet_would_run_are_neutralised(value, expected):
    assert cell_inert(value) == expected


def test_export_has_documented_columns_custom_fields_and_neutralised_cells(logged_in):
    points = CustomFieldFactory(group_key="LOYALTY", key="POINTS", type="number")
    vip = CustomFieldFactory(group_key="PERSONAL", key="VIP", type="boolean")
    ContactFactory(
        first_name="=cmd|' /C calc'!A0",
        last_name="Smith",
        email="john@example.com",
        phone="+380942583691",
        town="London",
        external_customer_id="crm-1",
        fields={str(points.id): 12, str(vip.id): True},
        tags=["vip", "=sum"],
    )
    ContactFactory(first_name="Gone", deleted_at=timezone.now())
    rows = export(logged_in)
    assert rows[0] == [*STANDARD_HEADERS, "Tags", "LOYALTY.POINTS", "PERSONAL.VIP"]
    assert len(rows) == 2, "deleted contacts are not exported"
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["First name"] == "'=cmd|' /C calc'!A0"
    assert row["Sms"] == "'+380942583691"
    assert row["City"] == "London"
    assert row["Contact id"] == "crm-1"
    assert row["LOYALTY.POINTS"] == "12"
    assert row["PERSONAL.VIP"] == "true"
    assert row["Tags"] == "vip, =sum"


def test_export_of_one_static_or_dynamic_segment(logged_in):
    inside = ContactFactory(email="in@example.com", tags=["vip"])
    ContactFactory(email="out@example.com")
    static = Segment.objects.create(name="List", kind=SegmentKind.STATIC)
    static.contacts.add(inside)
    dynamic = Segment.objects.create(
        name="VIPs", kind=SegmentKind.DYNAMIC, filter={"tags": {"$in": ["vip"]}}
    )
    for segment in (static, dynamic):
        rows = export(logged_in, f"?segment={segment.pk}")
        assert [r[STANDARD_HEADERS.index("Email")] for r in rows[1:]] == ["in@example.com"]
    assert len(export(logged_in)) == 3


@pytest.mark.parametrize("segment", ["999999", "abc"])
def test_export_of_an_unknown_segment_is_404(logged_in, segment):
    assert logged_in.get(f"/contacts/export.csv?segment={segment}").status_code == 404


def test_export_pages_through_many_contacts_in_id_order(logged_in):
    Contact.objects.bulk_create(
        Contact(email=f"p{i}@example.com", first_name=f"P{i}") for i in range(EXPORT_PAGE + 7)
    )
    rows = export(logged_in)
    emails = [r[STANDARD_HEADERS.index("Email")] for r in rows[1:]]
    assert len(emails) == EXPORT_PAGE + 7
    assert emails[0] == "p0@example.com" and emails[-1] == f"p{EXPORT_PAGE + 6}@example.com"


def test_an_export_imports_back_unchanged(logged_in, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    points = CustomFieldFactory(group_key="LOYALTY", key="POINTS", type="number")
    ContactFactory(
        first_name="-Dash",
        last_name="@At",
        email="a@example.com",
        phone="+380942583691",
        address="1 Main St, Apt 2",
        region="West",
        town="London",
        postcode="12345",
        language_code="en",
        time_zone="Europe/London",
        external_customer_id="crm-1",
        fields={str(points.id): -3},
    )
    response = logged_in.get("/contacts/export.csv")
    content = b"".join(response.streaming_content)
    columns = [
        "first_name",
        "last_name",
        "email",
        "phone",
        "address",
        "region",
        "town",
        "postcode",
        "language_code",
        "time_zone",
        "external_customer_id",
        "fields",
    ]
    before = list(Contact.objects.values(*columns))
    Contact.objects.all().delete()

    job = csv_import_start(options={"dedupeOn": "email"}, file_name="export.csv")
    upload_save(job, content)
    csv_import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FINISHED, job.description
    assert job.failed_count == 0, list(job.failures.values_list("reason", flat=True))
    assert list(Contact.objects.values(*columns)) == before
