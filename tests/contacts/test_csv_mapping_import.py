"""Browser uploads that forgive: detected encoding and delimiter, columns mapped by the
marketer (pre-mapped by name), tags, reasons in words, failed rows uploaded again, and an
export that imports back unchanged."""

# Ukrainian and Russian text is the point here.
# ruff: noqa: RUF001

import codecs
import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from contacts.csv_dialect import csv_detect, csv_preview, delimiter_detect, encoding_detect
from contacts.csv_files import tags_split, upload_save
from contacts.csv_import import csv_import_run
from contacts.csv_mapping import column_guess, mapping_guess, mapping_problems
from contacts.import_reasons import reason_for_people
from contacts.models import Contact, CustomField, ImportJob, ImportStatus
from tests.contacts.factories import ContactFactory, CustomFieldFactory


@pytest.fixture(autouse=True)
def uploads_in_tmp(settings, tmp_path):
    settings.VAR_DIR = tmp_path


CYRILLIC = "Ім'я;Телефон;Email;Теги\nОлена;+380501234567;olena@example.com;vip, нові\n"


# Detection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Email,Name\na@example.com,Zoë\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "Email,Ім'я\na@example.com,Олена\n".encode(), "utf-8-sig"),
        ("Email,Ім'я\na@example.com,Олена\n".encode("utf-16"), "utf-16"),
        (codecs.BOM_UTF16_BE + "Email,Ім'я\n".encode("utf-16-be"), "utf-16"),
        (CYRILLIC.encode("cp1251"), "windows-1251"),
        (
            "Email;Name;City\na@example.com;Zoë;Köln\nb@example.com;José;Sevilla\n".encode(
                "cp1252"
            ),
            "windows-1252",
        ),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le", "utf-16-be", "windows-1251", "windows-1252"],
)
def test_each_encoding_is_detected(data, expected):
    assert encoding_detect(data) == expected


@pytest.mark.parametrize(
    ("delimiter", "name"), [(",", "comma"), (";", "semicolon"), ("\t", "tab"), ("|", "pipe")]
)
def test_each_delimiter_is_detected(delimiter, name):
    rows = [
        ["Email", "First name", "City"],
        ["a@example.com", "Ann", "Kyiv"],
        ["b@example.com", 'Bob "B", Jr', "Lviv"],
    ]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    assert delimiter_detect(buffer.getvalue()) == delimiter


def test_a_one_column_file_reads_as_comma_separated():
    assert delimiter_detect("Email\na@example.com\nb@example.com\n") == ","


def test_preview_decodes_the_first_rows_with_the_chosen_reading(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(CYRILLIC.encode("cp1251"))
    assert csv_detect(path) == ("windows-1251", ";")
    preview = csv_preview(path, "windows-1251", ";")
    assert preview.header == ["Ім'я", "Телефон", "Email", "Теги"]
    assert preview.rows == [["Олена", "+380501234567", "olena@example.com", "vip, нові"]]
    assert not preview.problem
    wrong = csv_preview(path, "utf-8", ";")
    assert wrong.problem, "a reading that garbles the letters says so"


# Mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("E-mail", "email"),
        ("Email Address", "email"),
        ("EMAIL", "email"),
        ("Телефон", "phone"),
        ("Mobile phone", "phone"),
        ("Ім'я", "first_name"),
        ("Имя", "first_name"),
        ("first_name", "first_name"),
        ("Прізвище", "last_name"),
        ("Zip code", "postcode"),
        ("Місто", "town"),
        ("Contact id", "external_id"),
        ("Tags", "tags"),
        ("Теги", "tags"),
        ("row", "ignore"),
        ("reason", "ignore"),
        ("Favourite colour", "ignore"),
    ],
)
def test_columns_are_pre_mapped_by_their_header(db, header, key):
    assert column_guess(header, []) == key


def test_custom_fields_are_pre_mapped_by_key_or_name(db):
    age = CustomFieldFactory(name="Вік", group_key="PERSONAL", key="AGE", type="number")
    points = CustomFieldFactory(name="Loyalty points", group_key="LOYALTY", key="POINTS")
    fields = list(CustomField.objects.all())
    assert column_guess("personal.age", fields) == f"field:{age.pk}"
    assert column_guess("Вік", fields) == f"field:{age.pk}"
    assert column_guess("Loyalty Points", fields) == f"field:{points.pk}"


def test_a_second_column_for_the_same_field_is_left_ignored(db):
    assert mapping_guess(["Email", "E-mail", "Phone"], []) == ["email", "ignore", "phone"]


def test_a_mapping_needs_a_way_to_find_contacts_and_no_field_twice():
    assert mapping_problems(["first_name", "ignore"], ["Name", "Other"])
    problems = mapping_problems(["email", "email"], ["Email", "Mail"])
    assert any("Mail" in p for p in problems)
    assert mapping_problems(["phone", "tags"], ["Phone", "Tags"]) == []


@pytest.mark.parametrize(
    ("cell", "separator", "tags"),
    [
        ("vip, new ,vip", ",", ["vip", "new"]),
        ("vip;new", ";", ["vip", "new"]),
        ("vip|new|", "|", ["vip", "new"]),
        ("vip  new\tb2b", " ", ["vip", "new", "b2b"]),
        ("a, b", ";", ["a, b"]),
    ],
)
def test_tags_are_split_on_the_chosen_separator(cell, separator, tags):
    assert tags_split(cell, separator) == tags


# The pages -------------------------------------------------------------------------------


def upload(client, content: bytes, name="contacts.csv", dedupe_on="email"):
    response = client.post(
        "/contacts/import/",
        {
            "file": SimpleUploadedFile(name, content, content_type="text/csv"),
            "dedupe_on": dedupe_on,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return ImportJob.objects.get(session_id=response["Location"].split("/")[3])


def mapping_data(client, job) -> dict:
    """The mapping screen's form as it is offered (the pre-mapping accepted as it is)."""
    page = client.get(f"/contacts/import/{job.session_id}/columns/")
    assert page.status_code == 200
    form = page.context["form"]
    data = {name: form[name].value() for name in form.fields}
    return {k: ("" if v is None else v) for k, v in data.items()}


def confirm(client, job, data: dict, django_capture_on_commit_callbacks) -> ImportJob:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            f"/contacts/import/{job.session_id}/columns/", {**data, "action": "import"}
        )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert len(callbacks) == 1
    csv_import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FINISHED, job.description
    return job


def test_a_windows_1251_semicolon_file_is_read_mapped_and_imported_with_tags(
    client, marketer, django_capture_on_commit_callbacks
):
    client.force_login(marketer)
    ContactFactory(email="olena@example.com", tags=["old"])
    job = upload(client, (CYRILLIC + "Петро;;petro@example.com;\n").encode("cp1251"))
    data = mapping_data(client, job)
    assert (data["encoding"], data["delimiter"]) == ("windows-1251", "semicolon")
    assert [data[f"column_{i}"] for i in range(4)] == ["first_name", "phone", "email", "tags"]
    job = confirm(client, job, data, django_capture_on_commit_callbacks)
    assert (job.created_count, job.updated_count, job.failed_count) == (1, 1, 0)
    olena = Contact.objects.get(email="olena@example.com")
    assert olena.first_name == "Олена" and olena.phone == "+380501234567"
    assert olena.tags == ["old", "vip", "нові"], "a tags column adds, never removes"
    assert Contact.objects.get(email="petro@example.com").first_name == "Петро"


def test_changing_the_encoding_re_reads_the_preview(client, marketer):
    client.force_login(marketer)
    job = upload(client, CYRILLIC.encode("cp1251"))
    response = client.post(
        f"/contacts/import/{job.session_id}/columns/",
        {"action": "preview", "encoding": "windows-1252", "delimiter": "semicolon"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert b"<html" not in response.content, "htmx gets the form alone"
    assert "Îëåíà" in response.content.decode(), "Windows-1252 reads the bytes as Latin letters"
    response = client.post(
        f"/contacts/import/{job.session_id}/columns/",
        {"action": "preview", "encoding": "windows-1251", "delimiter": "semicolon"},
        headers={"HX-Request": "true"},
    )
    assert "Олена" in response.content.decode()


def test_an_unknown_column_is_offered_and_a_custom_field_made_for_it_on_the_spot(
    client, marketer, django_capture_on_commit_callbacks
):
    client.force_login(marketer)
    job = upload(client, b"Email,Shoe size,Notes\na@example.com,42,hello\n")
    data = mapping_data(client, job)
    assert data["column_1"] == "ignore" and data["column_2"] == "ignore"
    response = client.post(
        f"/contacts/import/{job.session_id}/columns/",
        {
            **data,
            "action": "create_field",
            "new_field_column": "1",
            "new_field_name": "Shoe size",
            "new_field_type": "number",
        },
    )
    assert response.status_code == 200
    field = CustomField.objects.get(name="Shoe size")
    assert (field.type, field.key) == ("number", "SHOE_SIZE")
    form = response.context["form"]
    assert form["column_1"].value() == f"field:{field.pk}"
    data = {name: form[name].value() or "" for name in form.fields}
    job = confirm(client, job, data, django_capture_on_commit_callbacks)
    contact = Contact.objects.get()
    assert contact.fields == {str(field.pk): 42}, "the ignored Notes column is not stored"


def test_a_mapping_without_email_phone_or_id_is_refused_with_a_reason(client, marketer):
    client.force_login(marketer)
    job = upload(client, b"Email,Name\na@example.com,A\n")
    data = mapping_data(client, job)
    data["column_0"] = "ignore"
    response = client.post(
        f"/contacts/import/{job.session_id}/columns/", {**data, "action": "import"}
    )
    assert response.status_code == 400
    assert b"Map a column to Email, Phone or Contact id" in response.content
    job.refresh_from_db()
    assert job.payload.get("awaitingMapping")


def test_the_mapping_screen_speaks_ukrainian(client, marketer):
    client.force_login(marketer)
    job = upload(client, b"Email\na@example.com\n")
    page = client.get(
        f"/contacts/import/{job.session_id}/columns/", headers={"Accept-Language": "uk"}
    )
    assert "Зіставте стовпці" in page.content.decode()


def test_failed_rows_have_human_reasons_and_the_file_uploads_again_as_it_is(
    client, marketer, django_capture_on_commit_callbacks
):
    client.force_login(marketer)
    age = CustomFieldFactory(name="Age", group_key="PERSONAL", key="AGE", type="number")
    job = upload(
        client,
        b"Email,Phone,Age,Notes\n"
        b"good@example.com,,30,x\n"
        b"no-at.example.com,,31,y\n"
        b"p@example.com,12,32,z\n"
        b"q@example.com,,abc,w\n",
    )
    data = mapping_data(client, job)
    assert data["column_2"] == f"field:{age.pk}"
    job = confirm(client, job, data, django_capture_on_commit_callbacks)
    assert (job.created_count, job.failed_count) == (1, 3)

    page = client.get(f"/contacts/import/{job.session_id}/").content.decode()
    assert "the email address &#x27;no-at.example.com&#x27; has no @" in page
    assert "is not a valid international number (+380…)" in page
    assert "the custom field &#x27;Age&#x27; expects a number, got &#x27;abc&#x27;" in page
    assert "channels[" not in page and "fields[" not in page

    report = client.get(f"/contacts/import/{job.session_id}/failed.csv")
    text = b"".join(report.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["row", "reason", "Email", "Phone", "Age", "Notes"]
    assert rows[1][0] == "3" and rows[1][2:] == ["no-at.example.com", "", "31", "y"]
    assert rows[3][1] == "the custom field 'Age' expects a number, got 'abc'"

    with translation.override("uk"):
        report = client.get(
            f"/contacts/import/{job.session_id}/failed.csv", headers={"Accept-Language": "uk"}
        )
        ukrainian = b"".join(report.streaming_content).decode("utf-8-sig")
    assert "очікує число" in ukrainian

    fixed = (
        text.replace("no-at.example.com", "fixed@example.com")
        .replace(",12,", ",+380501234567,")
        .replace(",abc,", ",33,")
    )
    again = upload(client, fixed.encode("utf-8-sig"), name="failed.csv")
    data = mapping_data(client, again)
    assert [data[f"column_{i}"] for i in range(6)] == [
        "ignore",
        "ignore",
        "email",
        "phone",
        f"field:{age.pk}",
        "ignore",
    ]
    assert data["new_field_column"] == 5, "a new field is offered for Notes, not row or reason"
    again = confirm(client, again, data, django_capture_on_commit_callbacks)
    assert (again.created_count, again.failed_count) == (3, 0)
    assert Contact.objects.get(email="q@example.com").fields == {str(age.pk): 33}


@pytest.mark.parametrize(
    ("reason", "data", "expected"),
    [
        (
            "channels[0].value: 'x' is not a valid email address "
            "(The email address is not valid. It must have exactly one @-sign.)",
            {"channels": [{"type": "email", "value": "x"}]},
            "the email address 'x' has no @",
        ),
        (
            "channels[0].value: '12' is not a valid phone number "
            "(international format, e.g. +380942583691)",
            {"channels": [{"type": "sms", "value": "12"}]},
            "the phone number '12' is not a valid international number (+380…)",
        ),
        (
            "channels: a new contact needs an email or sms channel",
            {},
            "the row has no email address and no phone number, so no contact can be made",
        ),
        (
            "contact 5 was deleted; send restoreDeleted=true to restore it",
            {},
            "this contact was deleted; tick “Restore deleted contacts” "
            "to bring it back with this import",
        ),
        (
            "row has 3 value(s) but the header has 2 column(s)",
            {"cells": ["a", "b", "c"]},
            "the row has 3 cells but the header has 2 columns",
        ),
        (
            "firstName: must be at most 40 characters",
            {},
            "the first name is longer than 40 characters",
        ),
        (
            "timeZone: 'Mars' is not an IANA time zone (e.g. Europe/Kyiv)",
            {},
            "'Mars' is not a time zone (such as Europe/Kyiv)",
        ),
        (
            "fields: custom field 3 (Birthday) is required",
            {},
            "the custom field 'Birthday' is required, and the row has no value for it",
        ),
    ],
)
def test_reasons_are_worded_for_people(db, reason, data, expected):
    assert reason_for_people(reason, data) == expected


def test_a_reason_of_a_choice_field_names_the_allowed_values(db):
    plan = CustomFieldFactory(
        name="Plan", key="PLAN", type="combobox", allowed_values=["free", "pro"]
    )
    reason = "fields[0].value: 'gold' is not one of the allowed values (free, pro)"
    data = {"fields": [{"id": plan.pk, "value": "gold"}]}
    assert reason_for_people(reason, data) == (
        "the custom field 'Plan' accepts only free, pro, got 'gold'"
    )


# Export and import again -----------------------------------------------------------------


COLUMNS = [
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
    "tags",
    "fields",
]


def test_an_export_imports_back_through_the_mapping_screen_with_no_change(
    client, marketer, django_capture_on_commit_callbacks
):
    client.force_login(marketer)
    points = CustomFieldFactory(name="Points", group_key="LOYALTY", key="POINTS", type="number")
    vip = CustomFieldFactory(name="VIP", group_key="PERSONAL", key="VIP", type="boolean")
    born = CustomFieldFactory(name="Born", group_key="PERSONAL", key="BORN", type="date")
    note = CustomFieldFactory(name="Note", group_key="PERSONAL", key="NOTE")
    ContactFactory(
        first_name="-Dash",
        last_name="Шевченко",
        email="a@example.com",
        phone="+380942583691",
        address="1 Main St, Apt 2",
        region="West",
        town="Київ",
        postcode="12345",
        language_code="uk",
        time_zone="Europe/Kyiv",
        external_customer_id="crm-1",
        tags=["vip", "нові клієнти"],
        fields={
            str(points.pk): -3,
            str(vip.pk): True,
            str(born.pk): "1990-05-01",
            str(note.pk): "=1+1",
        },
    )
    ContactFactory(email="b@example.com", phone="", tags=[], fields={})
    ContactFactory(email="", phone="+380501234567", tags=["sms-only"], fields={str(vip.pk): False})
    before = list(Contact.objects.order_by("pk").values("updated_at", *COLUMNS))

    exported = b"".join(client.get("/contacts/export.csv").streaming_content)
    job = upload(client, exported, name="export.csv", dedupe_on="email_or_sms")
    data = mapping_data(client, job)
    assert data["encoding"] == "utf-8-sig" and data["delimiter"] == "comma"
    assert "ignore" not in [data[f"column_{i}"] for i in range(16)]
    job = confirm(client, job, data, django_capture_on_commit_callbacks)
    assert (job.processed, job.created_count, job.updated_count, job.failed_count) == (3, 0, 3, 0)
    assert list(Contact.objects.order_by("pk").values("updated_at", *COLUMNS)) == before


def test_a_field_without_a_name_is_explained_in_place_over_htmx(client, marketer):
    client.force_login(marketer)
    job = upload(client, b"Email,Shoe size\na@example.com,42\n")
    data = mapping_data(client, job)
    response = client.post(
        f"/contacts/import/{job.session_id}/columns/",
        {**data, "action": "create_field", "new_field_column": "1", "new_field_name": " "},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200, "htmx swaps only 2xx answers in"
    assert b"Give the new field a name" in response.content
    assert not CustomField.objects.exists()


@pytest.mark.parametrize(
    ("encoding", "stored", "delimiter"),
    [("utf-16", "utf-16", "\t"), ("cp1252", "windows-1252", "|"), ("utf-8", "utf-8", ";")],
)
def test_files_in_each_encoding_import_with_the_confirmed_reading(
    client, marketer, django_capture_on_commit_callbacks, encoding, stored, delimiter
):
    client.force_login(marketer)
    text = delimiter.join(["Email", "First name", "City", "Tags"]) + "\r\n"
    text += delimiter.join(["zoe@example.com", "Zoë", "Köln", "neu"]) + "\r\n"
    job = upload(client, text.encode(encoding))
    data = mapping_data(client, job)
    assert data["encoding"] == stored
    job = confirm(client, job, data, django_capture_on_commit_callbacks)
    assert (job.created_count, job.failed_count) == (1, 0)
    contact = Contact.objects.get()
    assert (contact.first_name, contact.town, contact.tags) == ("Zoë", "Köln", ["neu"])


def test_the_fixed_columns_of_a_link_import_take_a_tags_column(db):
    from contacts.imports import csv_import_start

    ContactFactory(email="a@example.com", tags=["old"])
    job = csv_import_start(options={"dedupeOn": "email"}, file_name="t.csv")
    upload_save(job, b'Email,Tags\na@example.com,"vip, old"\nb@example.com,new\n')
    csv_import_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.created_count, job.updated_count) == (ImportStatus.FINISHED, 1, 1)
    assert Contact.objects.get(email="a@example.com").tags == ["old", "vip"]
    assert Contact.objects.get(email="b@example.com").tags == ["new"]


def test_a_second_import_of_the_same_tags_changes_nothing(db):
    from contacts.imports import csv_import_start

    contact = ContactFactory(email="a@example.com", tags=["vip", "b2b"])
    stamp = contact.updated_at
    job = csv_import_start(options={"dedupeOn": "email"}, file_name="t.csv")
    upload_save(job, b"Email,Tags\na@example.com,b2b\n")
    csv_import_run(job_id=job.pk)
    contact.refresh_from_db()
    assert (contact.tags, contact.updated_at) == (["vip", "b2b"], stamp)


def test_a_field_deleted_after_mapping_stops_the_import_saying_which_column(
    client, marketer, django_capture_on_commit_callbacks
):
    client.force_login(marketer)
    size = CustomFieldFactory(name="Shoe size", key="SHOE", type="number")
    job = upload(client, b"Email,Shoe size\na@example.com,42\n")
    data = mapping_data(client, job)
    assert data["column_1"] == f"field:{size.pk}"
    with django_capture_on_commit_callbacks(execute=False):
        client.post(f"/contacts/import/{job.session_id}/columns/", {**data, "action": "import"})
    size.delete()
    csv_import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.ERROR and not Contact.objects.exists()
    assert "'Shoe size'" in job.description, "the API keeps the English description"
    page = client.get(f"/contacts/import/{job.session_id}/", headers={"Accept-Language": "uk"})
    assert "більше не існує" in page.content.decode()
