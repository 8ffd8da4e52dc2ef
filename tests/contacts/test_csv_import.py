"""CSV imports: the file format, the job lifecycle, the upload API and the marketer pages."""

import csv
import gc
import io
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts import csv_import
from contacts.csv_files import upload_exists, upload_save, work_dir
from contacts.csv_import import CHUNK_ROWS, csv_import_run
from contacts.custom_fields import custom_fields_load
from contacts.imports import csv_import_start
from contacts.models import Contact, ImportJob, ImportStatus, Segment, SegmentKind
from contacts.validation import contact_parse, errors_reason
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory, CustomFieldFactory
from tests.contacts.http_server import body, server_fixture  # noqa: F401 (fixture)

STANDARD_HEADER = (
    "First name,Last name,Address,Region,City,Postcode,Email,Sms,Language code,Timezone,Contact id"
)


@pytest.fixture(autouse=True)
def uploads_in_tmp(settings, tmp_path):
    settings.VAR_DIR = tmp_path


def run_import(text: str | bytes, *, options: dict | None = None) -> ImportJob:
    """Store the file as an upload would and run the worker's service in-process."""
    job = csv_import_start(options=options or {"dedupeOn": "email"}, file_name="t.csv")
    data = text.encode() if isinstance(text, str) else text
    upload_save(job, data)
    csv_import_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def test_documented_columns_create_contacts(db):
    job = run_import(
        STANDARD_HEADER + "\n"
        "John,Smith,First str. 1,West,London,12345,mail@example.com,380942583691,en,"
        "Europe/London,crm-1\n"
    )
    assert job.status == ImportStatus.FINISHED, job.description
    assert (job.total, job.processed, job.created_count, job.failed_count) == (1, 1, 1, 0)
    contact = Contact.objects.get()
    assert contact.first_name == "John"
    assert contact.last_name == "Smith"
    assert (contact.address, contact.region, contact.town, contact.postcode) == (
        "First str. 1",
        "West",
        "London",
        "12345",
    )
    assert contact.email == "mail@example.com"
    assert contact.phone == "+380942583691"
    assert contact.language_code == "en"
    assert contact.time_zone == "Europe/London"
    assert contact.external_customer_id == "crm-1"
    assert contact.confirmed
    assert job.contact_ids == [contact.pk]
    assert not upload_exists(job), "the file is removed after the import"


def test_bom_and_header_case_are_accepted(db):
    job = run_import("\ufeffEMAIL,first_name,LAST NAME\r\nann@example.com,Ann,Lee\r\n".encode())
    assert job.status == ImportStatus.FINISHED, job.description
    assert Contact.objects.get().first_name == "Ann"


def test_quoted_fields_with_commas_quotes_and_newlines(db):
    job = run_import(
        "Email,Address,First name\n"
        'a@example.com,"1 Main St, Apt 2\nSecond line","Jo ""JJ"""\n'
        "b@example.com,Plain,Bo\n"
    )
    assert job.status == ImportStatus.FINISHED, job.description
    a = Contact.objects.get(email="a@example.com")
    assert a.address == "1 Main St, Apt 2\nSecond line"
    assert a.first_name == 'Jo "JJ"'
    assert Contact.objects.get(email="b@example.com").first_name == "Bo"


def test_custom_field_columns_are_group_key_dot_key(db):
    points = CustomFieldFactory(group_key="LOYALTY", key="POINTS", type="number")
    city = CustomFieldFactory(group_key="PERSONAL", key="FAV_COLOR")
    job = run_import("Email,loyalty.points,PERSONAL.FAV_COLOR\nann@example.com,42,teal\n")
    assert job.status == ImportStatus.FINISHED, job.description
    assert Contact.objects.get().fields == {str(points.id): 42, str(city.id): "teal"}


def test_bad_row_among_good_ones_is_reported_with_its_row_number(db):
    points = CustomFieldFactory(group_key="LOYALTY", key="POINTS", type="number")
    job = run_import(
        "Email,First name,LOYALTY.POINTS\n"
        "good1@example.com,Ann,1\n"
        "not-an-email,Bob,2\n"
        "good2@example.com,Cy,lots\n"
        "good3@example.com,Di,4\n"
    )
    assert job.status == ImportStatus.FINISHED
    assert (job.processed, job.created_count, job.failed_count) == (4, 2, 2)
    failures = list(job.failures.all())
    assert [f.index for f in failures] == [3, 4]
    assert "not-an-email" in failures[0].reason
    assert "'lots' is not a number" in failures[1].reason
    assert failures[1].data["fields"] == [{"id": points.id, "value": "lots"}]
    assert set(Contact.objects.values_list("email", flat=True)) == {
        "good1@example.com",
        "good3@example.com",
    }


def test_failed_rows_carry_the_reasons_of_the_full_validators(db):
    """Rows the fast path refuses are decided by contact_parse: the same reasons as a JSON
    import of the same contact, whatever cell of the row is wrong."""
    points = CustomFieldFactory(group_key="LOYALTY", key="POINTS", type="number")
    job = run_import(
        "Email,Sms,First name,Timezone,LOYALTY.POINTS\n"
        "good1@example.com,380501234567,Ann,Europe/Kyiv,1\n"
        "not-an-email,380501234568,Bob,,2\n"
        "good2@example.com,0501234567,Cy,,3\n"
        f"good3@example.com,,{'D' * 41},Mars/Base,lots\n"
        "'=good4@example.com,'+380501234569,'-Di,,4\n"
        '"good5@example.com","380 50 123 45 70","Eve\nSecond line",,5\n'
    )
    assert job.status == ImportStatus.FINISHED, job.description

    def channels(email, sms=None):
        given = [{"type": "email", "value": email}]
        return given + ([{"type": "sms", "value": sms}] if sms else [])

    # Each failed row as the eSputnik Contact object it stands for: the report's data, and what
    # a JSON import of it would be told.
    expected = {
        3: {
            "channels": channels("not-an-email", "380501234568"),
            "firstName": "Bob",
            "fields": [{"id": points.id, "value": "2"}],
        },
        4: {
            "channels": channels("good2@example.com", "0501234567"),
            "firstName": "Cy",
            "fields": [{"id": points.id, "value": "3"}],
        },
        5: {
            "channels": channels("good3@example.com"),
            "firstName": "D" * 41,
            "timeZone": "Mars/Base",
            "fields": [{"id": points.id, "value": "lots"}],
        },
    }
    custom_fields = custom_fields_load()
    reasons = {f.index: f.reason for f in job.failures.all()}
    assert set(reasons) == set(expected)
    for index, contact in expected.items():
        _, errors = contact_parse(contact, custom_fields=custom_fields)
        assert reasons[index] == errors_reason(errors)
        assert job.failures.get(index=index).data == contact
    assert (job.processed, job.created_count, job.failed_count) == (6, 3, 3)
    stored = {c.email: c for c in Contact.objects.all()}
    assert set(stored) == {"good1@example.com", "=good4@example.com", "good5@example.com"}
    # The formula quote comes off every cell; spaces in a phone go to the full parser.
    assert (stored["=good4@example.com"].phone, stored["=good4@example.com"].first_name) == (
        "+380501234569",
        "-Di",
    )
    assert stored["good5@example.com"].phone == "+380501234570"
    assert stored["good5@example.com"].first_name == "Eve\nSecond line"
    assert stored["good1@example.com"].fields == {str(points.id): 1}


def test_a_quoted_row_with_an_extra_cell_fails_alone(db):
    job = run_import(
        "Email,First name\n"
        '"a@example.com","Ann"\n'
        '"b@example.com, c@example.com","Bob","x,y"\n'
        '"d@example.com","Di\n"\n'
    )
    assert job.status == ImportStatus.FINISHED, job.description
    failure = job.failures.get()
    assert failure.index == 3
    assert failure.data == {"cells": ["b@example.com, c@example.com", "Bob", "x,y"]}
    assert set(Contact.objects.values_list("email", "first_name")) == {
        ("a@example.com", "Ann"),
        ("d@example.com", "Di"),
    }


def test_rows_with_wrong_cell_count_and_blank_lines_keep_numbers_right(db):
    job = run_import(
        "Email,First name\n"
        "a@example.com,A\n"
        "\n"
        "b@example.com,B,extra\n"
        "c@example.com\n"
        "bad,D\n"
        "e@example.com,E\n"
    )
    assert job.status == ImportStatus.FINISHED
    reasons = {f.index: f.reason for f in job.failures.all()}
    assert set(reasons) == {4, 5, 6}
    assert "3 value(s) but the header has 2" in reasons[4]
    assert "1 value(s)" in reasons[5]
    assert "bad" in reasons[6]
    assert job.failures.get(index=4).data == {"cells": ["b@example.com", "B", "extra"]}
    assert set(Contact.objects.values_list("email", flat=True)) == {
        "a@example.com",
        "e@example.com",
    }
    assert (job.total, job.processed, job.failed_count) == (5, 5, 3)


def test_unknown_columns_fail_the_job_before_anything_is_stored(db):
    CustomFieldFactory(group_key="PERSONAL", key="BIRTHDAY")
    job = run_import("Email,Nickname,PERSONAL.SHOE_SIZE,First name\na@example.com,x,42,A\n")
    assert job.status == ImportStatus.ERROR
    assert "Unknown column(s): Nickname, PERSONAL.SHOE_SIZE" in job.description
    assert "PERSONAL.BIRTHDAY" in job.description
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty"),
        (b"Email,Email\na@example.com,b@example.com\n", "Columns given twice"),
        ("Email,First name\na@example.com,Zo\xeb\n".encode("latin-1"), "not UTF-8"),
        (b'Email,First name\na@example.com,"unterminated\n', "not valid CSV"),
        (b'Email,First name\n"a@example.com"x,Ann\n', "not valid CSV"),
    ],
)
def test_broken_files_fail_the_job_with_a_clear_description(db, content, message):
    job = run_import(content)
    assert job.status == ImportStatus.ERROR
    assert message in job.description
    assert not Contact.objects.exists()


def test_rows_of_a_utf8_file_with_bytes_that_are_not_utf8_fail_alone(db):
    """A surrogate written out as CESU-8 (ED A0 80), or a broken character, in a file whose
    other rows are UTF-8: those rows fail, naming why, and the others are imported."""
    content = (
        "Email,First name\nzoe@example.com,Zo\u00eb\nbad@example.com,Bro\u0301ken\n".encode()
        + b"cesu@example.com,Emoji \xed\xa0\xbd\xed\xb8\x80\n"
        + b"cut@example.com,Cut \xc3\n"
        + "ok@example.com,\u041e\u043b\u0435\u043d\u0430\n".encode()
    )

    job = run_import(content)

    assert job.status == ImportStatus.FINISHED, job.description
    assert (job.total, job.created_count, job.failed_count) == (5, 3, 2)
    failures = {failure.index: failure for failure in job.failures.all()}
    assert sorted(failures) == [4, 5]
    assert "not UTF-8" in failures[4].reason
    assert failures[4].data == {"cells": ["cesu@example.com", "Emoji " + "\ufffd" * 6]}
    assert sorted(Contact.objects.values_list("first_name", flat=True)) == [
        "Bro\u0301ken",
        "Zo\u00eb",
        "\u041e\u043b\u0435\u043d\u0430",
    ]


def test_a_header_with_bytes_that_are_not_utf8_fails_the_file(db):
    content = "Email,First name\nzoe@example.com,Zo\u00eb\n".encode().replace(
        b"Email", b"E\xffmail"
    )
    job = run_import(content)
    assert job.status == ImportStatus.ERROR
    assert "header row is not UTF-8" in job.description
    assert not Contact.objects.exists()


def test_existing_contacts_are_updated_and_empty_cells_keep_values(db):
    ContactFactory(email="ann@example.com", first_name="Ann", last_name="Old", town="Kyiv")
    job = run_import("Email,Last name,City\nANN@example.com,New,\n")
    assert (job.created_count, job.updated_count) == (0, 1)
    contact = Contact.objects.get()
    assert (contact.last_name, contact.town) == ("New", "Kyiv")


def test_groups_options_apply_to_imported_contacts(db):
    old = Segment.objects.create(name="Prospects", kind=SegmentKind.STATIC)
    existing = ContactFactory(email="a@example.com")
    old.contacts.add(existing)
    job = run_import(
        "Email\na@example.com\nb@example.com\n",
        options={
            "dedupeOn": "email",
            "groupNames": ["Customers"],
            "groupNamesExclude": ["Prospects"],
        },
    )
    assert job.status == ImportStatus.FINISHED
    customers = Segment.objects.get(name="Customers")
    assert set(customers.contacts.values_list("email", flat=True)) == {
        "a@example.com",
        "b@example.com",
    }
    assert not old.contacts.exists()


def test_large_file_is_imported_in_chunks_with_row_numbers(db):
    rows = CHUNK_ROWS + 10
    lines = ["Email,First name"]
    for i in range(rows):
        email = "broken" if i == CHUNK_ROWS + 2 else f"p{i}@example.com"
        lines.append(f"{email},P{i}")
    job = run_import("\n".join(lines) + "\n")
    assert job.status == ImportStatus.FINISHED
    assert (job.total, job.processed, job.created_count, job.failed_count) == (
        rows,
        rows,
        rows - 1,
        1,
    )
    # header = row 1, first contact = row 2
    assert job.failures.get().index == CHUNK_ROWS + 2 + 2


def test_a_claimed_job_is_not_run_twice(db):
    job = run_import("Email\na@example.com\n")
    csv_import_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.created_count) == (ImportStatus.FINISHED, 1)


# --- POST /api/v1/contacts/upload ----------------------------------------------------------


def test_upload_answers_with_a_session_and_imports_from_the_link(
    api, full_key, server, settings, django_capture_on_commit_callbacks
):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True
    server.routes["/contacts.csv"] = body(
        (STANDARD_HEADER + "\nJohn,Smith,,,,,mail@example.com,,,,\n").encode()
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(
            "/api/v1/contacts/upload",
            key=full_key,
            body={
                "link": f"http://user:secret@127.0.0.1:{server.server_address[1]}/contacts.csv",
                "dedupeOn": "email",
                "groupNames": ["Customers"],
                "restoreDeleted": False,
                "eventKeyForNewContacts": "newContact",
            },
        )
    assert response.status_code == 200, response.content
    session_id = response.json()["asyncSessionId"]
    job = ImportJob.objects.get(session_id=uuid.UUID(session_id))
    assert job.status == ImportStatus.STARTED
    assert len(callbacks) == 1
    csv_import_run(job_id=job.pk)  # what the enqueued task does
    status = api.get(f"/api/v1/importstatus/{session_id}", key=full_key).json()
    assert status["status"] == "FINISHED"
    assert status["created"] == 1
    assert Contact.objects.get().segments.get().name == "Customers"
    assert server.seen[0]["headers"]["Authorization"].startswith("Basic ")
    job.refresh_from_db()
    assert job.source_url == f"http://user:***@127.0.0.1:{server.server_address[1]}/contacts.csv"


@pytest.mark.parametrize(
    ("payload", "field", "problem"),
    [
        ({}, "link", "is required"),
        ({"link": ""}, "link", "is required"),
        ({"link": 42}, "link", "is required"),
        ({"link": "ftp://example.com/c.csv"}, "link", "http or https"),
        ({"link": "file:///etc/passwd"}, "link", "http or https"),
        ({"link": "http:///c.csv"}, "link", "must name a host"),
        ({"link": "http://example.com:99999/c.csv"}, "link", "not a valid URL"),
        ({"link": "http://169.254.169.254/latest/"}, "link", "link-local"),
        ({"link": "http://[::1]/c.csv"}, "link", "loopback"),
        ({"link": "http://example.com/c.csv", "dedupeOn": "name"}, "dedupeOn", "must be one of"),
        ({"link": "http://example.com/c.csv", "groupNames": "x"}, "groupNames", "list"),
    ],
)
def test_upload_rejects_bad_bodies_naming_the_field(api, full_key, payload, field, problem):
    response = api.post("/api/v1/contacts/upload", key=full_key, body=payload)
    assert response.status_code == 400
    assert problem in " ".join(response.json()[field])
    assert not ImportJob.objects.exists()


def test_upload_accepts_form_encoded_body_and_trailing_slash(
    client, full_key, django_capture_on_commit_callbacks
):
    from tests.support.api import APIClient

    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            "/api/v1/contacts/upload/",
            {"link": "https://files.example.com/c.csv", "groupNames": ["A", "B"]},
            headers={"Authorization": APIClient.basic(full_key.secret)},
        )
    assert response.status_code == 200, response.content
    job = ImportJob.objects.get()
    assert job.payload["options"]["groupNames"] == ["A", "B"]
    assert job.source_url == "https://files.example.com/c.csv"


def test_upload_needs_the_contacts_right(api, limited_key, outsider):
    response = api.post(
        "/api/v1/contacts/upload", key=limited_key, body={"link": "https://example.com/c.csv"}
    )
    assert response.status_code == 403
    assert api.post("/api/v1/contacts/upload", body={"link": "x"}).status_code == 401


def test_link_to_private_host_fails_the_job_in_the_worker(db, settings):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = False
    job = csv_import_start(options={"dedupeOn": "email"}, link="http://localhost:1/c.csv")
    csv_import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.ERROR
    assert "Refusing to download from localhost" in job.description


def test_oversize_download_fails_the_job(db, settings, server, monkeypatch):
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True
    monkeypatch.setattr("contacts.fetch.MAX_DOWNLOAD_BYTES", 1000)
    server.routes["/big.csv"] = body(b"Email\n" + b"a@example.com\n" * 200)
    job = csv_import_start(options={"dedupeOn": "email"}, link=f"{server.base}/big.csv")
    csv_import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.ERROR
    assert "larger than" in job.description
    assert not Contact.objects.exists()
    assert not list(work_dir().iterdir()), "no partial download is left behind"


@pytest.fixture
def private_urls_worker(monkeypatch, settings, transactional_db):
    """A real worker process that may fetch from 127.0.0.1 (the test server)."""
    from tests.support.worker import CeleryWorker

    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True
    # The worker is another process: it reads the setting from its environment.
    monkeypatch.setenv("HERALD_IMPORT_ALLOW_PRIVATE_URLS", "1")
    with CeleryWorker() as worker:
        yield worker


@pytest.mark.worker
def test_upload_end_to_end_through_a_real_worker(api, full_key, server, private_urls_worker):
    points = CustomFieldFactory(group_key="LOYALTY", key="POINTS", type="number")
    server.routes["/c.csv"] = body(
        "\ufeffEmail,First name,LOYALTY.POINTS\n"
        "ann@example.com,Ann,10\n"
        "oops,Bob,3\n"
        'cy@example.com,"Cy, Jr",7\n'.encode()
    )
    response = api.post(
        "/api/v1/contacts/upload", key=full_key, body={"link": f"{server.base}/c.csv"}
    )
    assert response.status_code == 200, response.content
    session_id = response.json()["asyncSessionId"]

    def finished():
        data = api.get(f"/api/v1/importstatus/{session_id}", key=full_key).json()
        return data if data["status"] in ("FINISHED", "ERROR") else None

    status = wait_for(finished, timeout=60)
    assert status["status"] == "FINISHED", (status, private_urls_worker.output())
    assert (status["created"], status["failed"]) == (2, 1)
    assert status["failedContacts"][0]["index"] == 3
    assert Contact.objects.get(email="cy@example.com").fields == {str(points.id): 7}


# --- pages ----------------------------------------------------------------------------------


def upload(client, content: bytes, name="contacts.csv", **options):
    data = {
        "file": SimpleUploadedFile(name, content, content_type="text/csv"),
        "dedupe_on": "email",
    }
    data.update(options)
    return client.post("/contacts/import/", data)


def test_marketer_uploads_csv_and_follows_progress_and_failed_rows(
    client, marketer, django_capture_on_commit_callbacks
):
    client.force_login(marketer)
    assert client.get("/contacts/import/").status_code == 200
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(
            client,
            b"Email,First name\na@example.com,A\n=cmd|' /C calc'!A0,Evil\nb@example.com,B\n",
            group_names="Newsletter, VIP",
        )
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert response["Location"] == f"/contacts/import/{job.session_id}/columns/"
    assert job.created_by == marketer
    assert job.payload["options"]["groupNames"] == ["Newsletter", "VIP"]
    assert not callbacks, "nothing runs before the columns are mapped"
    mapping = client.get(response["Location"])
    assert b'value="email" selected' in mapping.content
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            f"/contacts/import/{job.session_id}/columns/",
            {
                "action": "import",
                "encoding": "utf-8",
                "delimiter": "comma",
                "tag_separator": "comma",
                "column_0": "email",
                "column_1": "first_name",
            },
        )
    assert response.status_code == 302
    assert response["Location"] == f"/contacts/import/{job.session_id}/"
    assert len(callbacks) == 1

    page = client.get(response["Location"])
    assert b'hx-trigger="every 1s"' in page.content
    assert b'data-testid="import-status">Waiting<' in page.content

    csv_import_run(job_id=job.pk)

    partial = client.get(
        f"/contacts/import/{job.session_id}/progress/", headers={"HX-Request": "true"}
    )
    assert b"hx-trigger" not in partial.content, "polling stops once the job is done"
    assert partial["HX-Refresh"] == "true"
    assert b'data-status="FINISHED"' in partial.content
    assert b'data-testid="count-created">2<' in partial.content

    page = client.get(f"/contacts/import/{job.session_id}/")
    assert b"the email address &#x27;=cmd|&#x27; /C calc&#x27;!A0&#x27; has no @" in page.content

    report = client.get(f"/contacts/import/{job.session_id}/failed.csv")
    assert report["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["row", "reason", "Email", "First name"]
    assert rows[1][0] == "3"
    assert rows[1][1] == "the email address '=cmd|' /C calc'!A0' has no @"
    assert rows[1][2:] == ["'=cmd|' /C calc'!A0", "Evil"], "report cells are neutralised too"

    listing = client.get("/contacts/import/")
    assert str(job.session_id).encode() in listing.content


def test_upload_form_errors_are_shown_with_400(client, marketer):
    client.force_login(marketer)
    response = upload(client, b"Email\na@example.com\n", event_key="has spaces")
    assert response.status_code == 400
    assert b"latin letters and digits" in response.content
    response = client.post("/contacts/import/", {"dedupe_on": "email"})
    assert response.status_code == 400
    assert not ImportJob.objects.exists()


def test_import_pages_need_the_marketer_role(client, viewer):
    client.force_login(viewer)
    assert client.get("/contacts/import/").status_code == 403
    assert client.get("/contacts/export.csv").status_code == 403
    client.logout()
    assert client.get("/contacts/import/").status_code == 302


def report_rows(client, job) -> list[list[str]]:
    response = client.get(f"/contacts/import/{job.session_id}/failed.csv")
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_failed_rows_report_can_be_fixed_and_imported_again(client, marketer):
    CustomFieldFactory(group_key="LOYALTY", key="POINTS", type="number")
    job = run_import(
        "Email,City,loyalty.points\n"
        "a@example.com,Kyiv,1\n"
        "b@example.com,Lviv,many\n"
        "c@example.com,Odesa\n"
    )
    client.force_login(marketer)
    rows = report_rows(client, job)
    assert rows[0] == ["row", "reason", "Email", "City", "loyalty.points"]
    assert rows[1][0] == "3" and rows[1][2:] == ["b@example.com", "Lviv", "many"]
    assert rows[2][0] == "4" and rows[2][2:] == ["c@example.com", "Odesa"]
    fixed = "Email,City,loyalty.points\nb@example.com,Lviv,2\nc@example.com,Odesa,3\n"
    again = run_import(fixed)
    assert (again.created_count, again.failed_count) == (2, 0)


def test_failed_rows_report_of_an_api_import_lists_index_reason_and_data(
    api, full_key, client, marketer, django_capture_on_commit_callbacks
):
    from contacts.bulk.jobs import import_job_run

    with django_capture_on_commit_callbacks(execute=False):
        response = api.post(
            "/api/v1/contacts",
            key=full_key,
            body={"contacts": [{"channels": [{"type": "email", "value": "nope"}]}]},
        )
    job = ImportJob.objects.get(session_id=response.json()["asyncSessionId"])
    import_job_run(job_id=job.pk)
    client.force_login(marketer)
    rows = report_rows(client, job)
    assert rows[0] == ["index", "reason", "data"]
    assert rows[1][0] == "0"
    assert '"nope"' in rows[1][2]


def test_row_with_a_nul_character_fails_alone(db):
    """PostgreSQL cannot store NUL: that row is reported (shown with U+FFFD), the others stored."""
    job = run_import("Email,First name\na@example.com,A\x00B\nb@example.com,Bob\n")
    assert job.status == ImportStatus.FINISHED, job.description
    assert (job.created_count, job.failed_count) == (1, 1)
    failure = job.failures.get()
    assert failure.index == 2
    assert "NUL character" in failure.reason
    assert failure.data == {"cells": ["a@example.com", "A\ufffdB"]}
    assert list(Contact.objects.values_list("email", flat=True)) == ["b@example.com"]


def test_chunks_prepared_ahead_are_written_in_file_order(db, monkeypatch):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    job = run_import(
        "Email,First name\n"
        "same@example.com,First\n"
        "a@example.com,A\n"
        "b@example.com,B,extra\n"  # malformed, between chunks
        "c@example.com,C\n"
        "same@example.com,Last\n"  # a later chunk: its value wins
        "d@example.com,D\n"
    )
    assert (job.status, job.created_count, job.updated_count, job.failed_count) == (
        ImportStatus.FINISHED,
        4,
        1,
        1,
    )
    assert job.failures.get().index == 4
    assert Contact.objects.get(email="same@example.com").first_name == "Last"
    by_id = dict(Contact.objects.values_list("id", "email"))
    assert [by_id[i] for i in job.contact_ids] == [
        "same@example.com",
        "a@example.com",
        "c@example.com",
        "same@example.com",
        "d@example.com",
    ]


def test_the_next_chunk_is_prepared_while_the_previous_one_is_written(db, monkeypatch):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    monkeypatch.setattr(csv_import._Reader, "STEP_ROWS", 1)
    step, write = csv_import._Reader._step, csv_import.contacts_upsert_batch
    writing, during_a_write = [], []

    def recording_step(reader):
        during_a_write.append(bool(writing))
        return step(reader)

    def flagged_write(**kwargs):
        writing.append(True)
        try:
            return write(**kwargs)
        finally:
            writing.pop()

    monkeypatch.setattr(csv_import._Reader, "_step", recording_step)
    monkeypatch.setattr(csv_import, "contacts_upsert_batch", flagged_write)
    lines = ["Email,First name"] + [f"p{i}@example.com,P{i}" for i in range(6)]
    job = run_import("\n".join(lines) + "\n")
    assert (job.status, job.created_count) == (ImportStatus.FINISHED, 6)
    assert sorted(Contact.objects.values_list("first_name", flat=True)) == [
        f"P{i}" for i in range(6)
    ]
    # The first chunk is read before any write; later ones while the server works.
    assert during_a_write[0] is False
    assert True in during_a_write


def test_rows_are_formatted_as_new_contacts_ahead_only_while_most_rows_are_new(db, monkeypatch):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    ContactFactory(email="old0@example.com", first_name="Old")
    ContactFactory(email="old1@example.com", first_name="Old")
    prepare = csv_import.contacts_batch_preparing
    formatted = []

    def spying_prepare(**kwargs):
        formatted.append(kwargs["format_new"])
        return prepare(**kwargs)

    monkeypatch.setattr(csv_import, "contacts_batch_preparing", spying_prepare)
    # Each chunk is read while the one before is written, before its counts are known: the
    # server's answer may not end that early (on a loaded machine it can arrive before the
    # first row is read, and the reading would wait for it).
    work = csv_import._Reader.work
    monkeypatch.setattr(csv_import._Reader, "work", lambda reader, until=None: work(reader))
    job = run_import(
        "Email,First name\n"
        "old0@example.com,A\nold1@example.com,B\n"  # both matched: the next is not formatted
        "new0@example.com,C\nnew1@example.com,D\n"  # nor is this one, read meanwhile
        "new2@example.com,E\nnew3@example.com,F\n"  # the chunk before was new: formatted
    )
    assert (job.created_count, job.updated_count, job.failed_count) == (4, 2, 0)
    assert formatted == [True, True, False]
    assert dict(Contact.objects.values_list("email", "first_name")) == {
        "old0@example.com": "A",
        "old1@example.com": "B",
        "new0@example.com": "C",
        "new1@example.com": "D",
        "new2@example.com": "E",
        "new3@example.com": "F",
    }


def test_an_error_while_preparing_a_chunk_fails_the_job_and_keeps_earlier_chunks(db, monkeypatch):
    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    prepare = csv_import.contacts_batch_preparing

    def prepare_until_row_four(**kwargs):
        if kwargs["start_index"] >= 4:
            raise RuntimeError("disk gone")
        return prepare(**kwargs)

    # Rows 4-5 are prepared while rows 2-3 are written: that write still completes.
    monkeypatch.setattr(csv_import, "contacts_batch_preparing", prepare_until_row_four)
    lines = ["Email"] + [f"p{i}@example.com" for i in range(6)]
    with pytest.raises(RuntimeError, match="disk gone"):
        run_import("\n".join(lines) + "\n")
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.ERROR
    assert "internal error" in job.description
    assert sorted(Contact.objects.values_list("email", flat=True)) == [
        "p0@example.com",
        "p1@example.com",
    ]
    assert len(job.contact_ids) == 2
    assert gc.isenabled()  # the chunk left half prepared no longer pauses the collector


def test_an_import_that_doubles_the_table_refreshes_its_row_count(db, monkeypatch):
    from django.db import connection

    monkeypatch.setattr(csv_import, "CHUNK_ROWS", 2)
    monkeypatch.setattr(csv_import._Statistics, "FIRST_AFTER", 2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'contacts_contact'")
        before = cursor.fetchone()[0]
        job = run_import("Email\n" + "".join(f"p{i}@example.com\n" for i in range(6)))
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'contacts_contact'")
        after = cursor.fetchone()[0]
    assert job.created_count == 6
    assert before <= 0 < after


def test_rows_formatted_ahead_still_face_the_new_contact_checks(db):
    """A required custom field and a channel are needed to create a contact, not to update
    one: rows read ahead as likely new are only formatted once they pass those checks."""
    consent = CustomFieldFactory(group_key="GDPR", key="CONSENT", type="boolean", required=True)
    ContactFactory(email="known@example.com", first_name="Known")
    job = run_import(
        "Email,First name,GDPR.CONSENT\n"
        "new@example.com,New,yes\n"
        "lacking@example.com,Lacking,\n"  # new, without the required field
        "known@example.com,Renamed,\n"  # existing: the field is not needed
        ",Nobody,yes\n"  # no channel to create a contact with
    )
    assert (job.created_count, job.updated_count, job.failed_count) == (1, 1, 2)
    reasons = dict(job.failures.values_list("index", "reason"))
    assert set(reasons) == {3, 5}
    assert "required" in reasons[3]
    assert "email or sms" in reasons[5]
    assert Contact.objects.get(email="new@example.com").fields == {str(consent.pk): True}
    assert Contact.objects.get(email="known@example.com").first_name == "Renamed"
    assert not Contact.objects.filter(email="lacking@example.com").exists()
