"""Branchy rules of the contact services, called directly."""

import pytest

from contacts.bulk.jobs import import_job_run
from contacts.bulk.upsert import contacts_upsert_batch
from contacts.channels import phone_normalise
from contacts.errors import ContactError
from contacts.models import Contact, ImportFailure, ImportJob, ImportStatus, SegmentMembership
from contacts.services import (
    contact_create_or_update,
    contact_delete,
    contact_restore,
    contact_subscribe,
)
from contacts.validation import contact_parse
from tests.contacts.factories import ContactFactory, CustomFieldFactory, SegmentFactory

pytestmark = pytest.mark.django_db

OPTIONS = {"dedupeOn": "email"}


def test_batch_reports_failures_at_start_index_offsets():
    job = ImportJob.objects.create()

    contacts_upsert_batch(
        contacts=[
            {"channels": [{"type": "email", "value": "a@example.com"}]},
            {"channels": [{"type": "email", "value": "broken"}]},
            None,  # already reported by the caller
        ],
        options=OPTIONS,
        job=job,
        start_index=3000,
    )

    job.refresh_from_db()
    assert list(ImportFailure.objects.values_list("index", flat=True)) == [3001]
    assert (job.created_count, job.failed_count, job.processed) == (1, 1, 2)


def test_batches_accumulate_on_one_job():
    job = ImportJob.objects.create()
    for start, address in ((0, "one@example.com"), (1, "two@example.com")):
        contacts_upsert_batch(
            contacts=[{"channels": [{"type": "email", "value": address}]}],
            options=OPTIONS,
            job=job,
            start_index=start,
        )

    job.refresh_from_db()
    assert job.created_count == 2
    assert job.processed == 2
    assert len(job.contact_ids) == 2


def test_batch_update_changes_only_the_columns_a_row_gives():
    points = CustomFieldFactory(type="number")
    color = CustomFieldFactory()
    full = ContactFactory(
        email="full@example.com",
        first_name="Ann",
        last_name="Lee",
        town="Kyiv",
        external_customer_id="crm-1",
        tags=["vip"],
        extra_channels=[{"type": "telegram", "value": "@ann"}],
        fields={str(points.id): 5, str(color.id): "teal"},
    )
    bare = ContactFactory(email="bare@example.com", first_name="Bo", town="Lviv", tags=["a"])
    job = ImportJob.objects.create()

    contacts_upsert_batch(
        contacts=[
            {
                "channels": [{"type": "email", "value": "FULL@example.com"}],
                "lastName": "",
                "externalCustomerId": "",
                "tags": ["new"],
                "fields": [{"id": points.id, "value": None}, {"id": color.id, "value": "red"}],
            },
            {"channels": [{"type": "email", "value": "bare@example.com"}], "firstName": "Bob"},
        ],
        options=OPTIONS,
        job=job,
    )

    full.refresh_from_db()
    bare.refresh_from_db()
    # Given: set, even to blank or NULL; a custom value of null removes it; the rest stays.
    assert (full.first_name, full.last_name, full.town) == ("Ann", "", "Kyiv")
    assert full.external_customer_id is None
    assert full.tags == ["new"]
    assert full.extra_channels == [{"type": "telegram", "value": "@ann"}]
    assert full.fields == {str(color.id): "red"}
    assert (bare.first_name, bare.town, bare.tags, bare.fields) == ("Bob", "Lviv", ["a"], {})
    job.refresh_from_db()
    assert (job.updated_count, job.created_count) == (2, 0)
    assert job.contact_ids == [full.pk, bare.pk]


def test_values_with_copy_and_array_syntax_are_stored_as_given():
    """Rows travel by COPY: its separators and escapes, and array literal syntax in tags,
    must arrive as plain characters, on insert and on update alike."""
    awkward = 'a\tb\\c\nd,"e"{f}\\N'
    tags = ["x,y", 'q"uote', "back\\slash", "{braces}", "NULL"]
    existing = ContactFactory(email="old@example.com")
    job = ImportJob.objects.create()

    contacts_upsert_batch(
        contacts=[
            {
                "channels": [{"type": "email", "value": "new@example.com"}],
                "address": {"address": awkward},
                "tags": tags,
            },
            {
                "channels": [{"type": "email", "value": "old@example.com"}],
                "address": {"address": awkward},
                "tags": tags,
            },
        ],
        options=OPTIONS,
        job=job,
    )

    for contact in (
        Contact.objects.get(email="new@example.com"),
        Contact.objects.get(pk=existing.pk),
    ):
        assert contact.address == awkward.strip()
        assert contact.tags == tags


@pytest.mark.parametrize("dedupe_on", ["email", "sms", "id", "fieldId"])
def test_a_key_shared_by_several_contacts_matches_the_oldest_live_one(dedupe_on):
    """Live before deleted, then oldest: for the keys probed through their index (email,
    phone, id) and for a custom field's value (read in one scan)."""
    from django.utils import timezone

    code = CustomFieldFactory(type="text")
    shared = {
        "email": "shared@example.com",
        "phone": "+380501234567",
        "fields": {str(code.id): "C-1"},
    }
    deleted = ContactFactory(**shared, deleted_at=timezone.now())
    oldest_live = ContactFactory(**shared)
    newer_live = ContactFactory(**shared)
    row = {"firstName": "Matched"}
    options = {"dedupeOn": dedupe_on}
    if dedupe_on == "email":
        row["channels"] = [{"type": "email", "value": "Shared@Example.com"}]
    elif dedupe_on == "sms":
        row["channels"] = [{"type": "sms", "value": "380501234567"}]
    elif dedupe_on == "id":
        row["id"] = oldest_live.id
    else:
        row["fields"] = [{"id": code.id, "value": "C-1"}]
        options["fieldId"] = code.id
    job = ImportJob.objects.create()

    ids = contacts_upsert_batch(contacts=[row], options=options, job=job)

    assert ids == [oldest_live.id]
    names = dict(Contact.objects.values_list("id", "first_name"))
    assert names[oldest_live.id] == "Matched"
    assert "Matched" not in (names[deleted.id], names[newer_live.id])
    assert Contact.objects.count() == 3


def test_a_deleted_contact_is_matched_when_no_live_one_has_the_key():
    from django.utils import timezone

    older = ContactFactory(email="gone@example.com", deleted_at=timezone.now())
    ContactFactory(email="gone@example.com", deleted_at=timezone.now())
    job = ImportJob.objects.create()

    ids = contacts_upsert_batch(
        contacts=[{"channels": [{"type": "email", "value": "gone@example.com"}]}],
        options={"dedupeOn": "email", "restoreDeleted": True},
        job=job,
    )

    assert ids == [older.id]
    older.refresh_from_db()
    assert older.deleted_at is None


def test_email_or_sms_rows_reaching_one_contact_merge_into_one_update():
    contact = ContactFactory(email="e@example.com", phone="+380942583691")
    job = ImportJob.objects.create()

    contacts_upsert_batch(
        contacts=[
            {"channels": [{"type": "email", "value": "e@example.com"}], "firstName": "ByEmail"},
            {"channels": [{"type": "sms", "value": "+380942583691"}], "lastName": "ByPhone"},
        ],
        options={"dedupeOn": "email_or_sms"},
        job=job,
    )

    contact.refresh_from_db()
    assert (contact.first_name, contact.last_name) == ("ByEmail", "ByPhone")
    assert Contact.objects.count() == 1
    job.refresh_from_db()
    assert (job.created_count, job.updated_count) == (0, 1)


def test_custom_field_values_are_typed_and_checked():
    number = CustomFieldFactory(type="number")
    date = CustomFieldFactory(type="date")
    choice = CustomFieldFactory(type="combobox", allowed_values=["red", "green"])
    fields = {f.pk: f for f in (number, date, choice)}

    good, errors = contact_parse(
        {
            "fields": [
                {"id": number.pk, "value": "42"},
                {"id": date.pk, "value": "2024-02-29"},
                {"id": choice.pk, "value": "red"},
            ]
        },
        custom_fields=fields,
    )
    _, bad = contact_parse(
        {
            "fields": [
                {"id": number.pk, "value": "many"},
                {"id": date.pk, "value": "31/12/2024"},
                {"id": choice.pk, "value": "blue"},
            ]
        },
        custom_fields=fields,
    )

    assert errors == []
    assert good["fields"] == {str(number.pk): 42, str(date.pk): "2024-02-29", str(choice.pk): "red"}
    assert [field for field, _ in bad] == ["fields[0].value", "fields[1].value", "fields[2].value"]


def test_phone_without_plus_is_normalised_to_e164():
    assert phone_normalise("380942583691") == ("+380942583691", None)
    assert phone_normalise("+44 20 7946 0958") == ("+442079460958", None)
    assert phone_normalise("12")[0] is None


def test_subscribe_without_channel_is_refused():
    with pytest.raises(ContactError) as caught:
        contact_subscribe(data={"firstName": "x"}, groups=[], form_type=None)

    assert caught.value.errors[0][0] == "contact.channels"


def test_subscribe_into_dynamic_segment_is_refused():
    SegmentFactory(name="Smart", kind="dynamic")

    with pytest.raises(ContactError):
        contact_subscribe(
            data={"channels": [{"type": "email", "value": "s@example.com"}]},
            groups=["Smart"],
            form_type=None,
        )
    assert not Contact.objects.exists()


def test_create_or_update_prefers_external_id_match():
    by_ext = ContactFactory(email="a@example.com", external_customer_id="X1")
    ContactFactory(email="b@example.com")

    contact, created = contact_create_or_update(
        data={
            "externalCustomerId": "X1",
            "channels": [{"type": "email", "value": "b@example.com"}],
        },
        source="api",
    )

    assert (contact.pk, created) == (by_ext.pk, False)


def test_delete_then_restore_keeps_data_and_erase_drops_groups():
    contact = ContactFactory(email="r@example.com")
    SegmentMembership.objects.create(segment=SegmentFactory(), contact=contact)

    contact_delete(contact=contact, erase=False)
    restored = contact_restore(contact=contact)
    assert restored.deleted_at is None
    assert restored.email == "r@example.com"
    assert SegmentMembership.objects.filter(contact=contact).exists()

    contact_delete(contact=contact, erase=True)
    assert not SegmentMembership.objects.filter(contact=contact).exists()


def test_job_with_bad_stored_options_ends_in_error_not_importing():
    job = ImportJob.objects.create(
        payload={"contacts": [{"channels": []}], "options": {"dedupeOn": "shoe size"}}
    )

    import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ImportStatus.ERROR
    assert "dedupeOn" in job.description
    assert job.finished_at is not None


def test_job_with_corrupt_payload_ends_in_error():
    job = ImportJob.objects.create(payload={"contacts": "not a list", "options": {}})

    import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ImportStatus.ERROR
    assert job.description


@pytest.mark.parametrize(
    "address",
    [
        "a@example.com",
        "A.B+tag@Sub.Example.CO.uk",
        "o'neil@example.com",
        "a..b@example.com",
        ".a@example.com",
        "a.@example.com",
        "a@localhost",
        "a@x.test",
        "a@123.45",
        "a@-bad.com",
        "a@b_c.com",
        "a@ex..com",
        '"quoted"@example.com',
        "x" * 65 + "@example.com",
        "a@xn--80ak6aa92e.com",
        "я@example.com",
        "a@пример.рф",
        " padded@example.com ",
    ],
)
def test_email_fast_path_agrees_with_email_validator(address):
    from email_validator import EmailNotValidError, validate_email

    from contacts.channels import email_normalise

    try:
        expected = validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        expected = None

    assert email_normalise(address)[0] == expected


def test_national_number_without_country_is_refused_not_guessed():
    assert phone_normalise("0501234567")[0] is None
    assert phone_normalise("00380501234567") == ("+380501234567", None)


def test_job_left_importing_by_a_killed_worker_runs_on_redelivery():
    job = ImportJob.objects.create(
        status=ImportStatus.IMPORTING,
        payload={"contacts": [{"channels": [{"type": "email", "value": "k@example.com"}]}]},
    )

    import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ImportStatus.FINISHED
    assert job.created_count == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_subscribes_of_one_new_address_make_one_contact():
    import threading

    from django.db import connection

    barrier = threading.Barrier(4)
    results = []

    def subscribe(form_type: str) -> None:
        try:
            barrier.wait()
            contact, created = contact_subscribe(
                data={"channels": [{"type": "email", "value": "race@example.com"}]},
                groups=[],
                form_type=form_type,
            )
            results.append((contact.pk, created))
        finally:
            connection.close()

    threads = [threading.Thread(target=subscribe, args=(f"form{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Contact.objects.count() == 1
    assert sorted(created for _, created in results) == [False, False, False, True]


def _row_version(contact) -> tuple:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xmin::text, updated_at FROM contacts_contact WHERE id = %s", [contact.pk]
        )
        return cursor.fetchone()


def test_batch_leaves_contacts_it_would_not_change_unwritten_but_matched():
    score = CustomFieldFactory(type="number")
    same = ContactFactory(
        email="same@example.com", first_name="Ann", fields={str(score.id): 5}, tags=["a"]
    )
    renamed = ContactFactory(email="renamed@example.com", first_name="Bo")
    cleared = ContactFactory(email="cleared@example.com", fields={str(score.id): 7})
    before = {c.pk: _row_version(c) for c in (same, renamed, cleared)}
    segment = SegmentFactory(name="Again")
    job = ImportJob.objects.create()

    ids = contacts_upsert_batch(
        contacts=[
            {
                "channels": [{"type": "email", "value": "same@example.com"}],
                "firstName": "Ann",
                "tags": ["a"],
                "fields": [{"id": score.id, "value": "5"}],
            },
            {"channels": [{"type": "email", "value": "renamed@example.com"}], "firstName": "Cy"},
            {
                "channels": [{"type": "email", "value": "cleared@example.com"}],
                "fields": [{"id": score.id, "value": None}],
            },
        ],
        options={**OPTIONS, "groupNames": ["Again"]},
        job=job,
    )

    job.refresh_from_db()
    assert ids == [same.pk, renamed.pk, cleared.pk]
    assert (job.created_count, job.updated_count, job.failed_count) == (0, 3, 0)
    assert _row_version(same) == before[same.pk]  # not written
    assert _row_version(renamed) != before[renamed.pk]
    assert _row_version(cleared) != before[cleared.pk]
    renamed.refresh_from_db()
    cleared.refresh_from_db()
    assert (renamed.first_name, cleared.fields) == ("Cy", {})
    assert set(
        SegmentMembership.objects.filter(segment=segment).values_list("contact", flat=True)
    ) == {
        same.pk,
        renamed.pk,
        cleared.pk,
    }


def test_batch_still_refuses_a_deleted_contact_it_would_not_change():
    gone = ContactFactory(email="gone@example.com", first_name="Di")
    contact_delete(contact=gone, erase=False)
    job = ImportJob.objects.create()
    row = {"channels": [{"type": "email", "value": "gone@example.com"}], "firstName": "Di"}

    contacts_upsert_batch(contacts=[row], options=OPTIONS, job=job)
    job.refresh_from_db()
    assert (job.updated_count, job.failed_count) == (0, 1)

    contacts_upsert_batch(contacts=[row], options={**OPTIONS, "restoreDeleted": True}, job=job)
    gone.refresh_from_db()
    assert gone.deleted_at is None


COPY_VALUES = [
    "plain",
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "back\\slash",
    "\\N",  # a value that looks like the NULL marker
    "\\",
    "ünïcødé ✓",
    "",
    None,
    42,
    '{"a": "x\\ny"}',  # JSON text with an escape inside
]


def test_copy_lines_read_back_as_the_values_written():
    from django.db import connection

    from contacts.bulk.copy import copy_line

    rows = [
        [COPY_VALUES[i], COPY_VALUES[(i + 3) % len(COPY_VALUES)]] for i in range(len(COPY_VALUES))
    ]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE copy_check (n serial, a text, b text)")
        with cursor.cursor.copy("COPY copy_check (a, b) FROM STDIN") as copy:
            copy.write("".join(copy_line(row) + "\n" for row in rows))
        cursor.execute("SELECT a, b FROM copy_check ORDER BY n")
        stored = cursor.fetchall()
    expected = [tuple(None if v is None else str(v) for v in row) for row in rows]
    assert stored == expected


@pytest.mark.parametrize(
    "value",
    [{"1": 5}, {"2": "x\ny\u2713"}, [{"type": "push", "value": "tok"}], {"a": [1.5, True, None]}],
)
def test_json_text_is_what_json_dumps_writes(value):
    import json

    from contacts.bulk.copy import json_text as _json_text

    assert _json_text(value) == json.dumps(value)


def test_a_statement_run_meanwhile_returns_its_rows_after_the_work_between():
    from django.db import connection

    from contacts.bulk.pipeline import fetch_rows as _fetch

    checks = []

    def meanwhile(until):
        # Works until the result arrives: the first check comes while the server sleeps.
        while True:
            arrived = until()
            checks.append(arrived)
            if arrived:
                return

    with connection.cursor() as cursor:
        rows = _fetch(cursor, "SELECT pg_sleep(0.2), %s::int", [7], meanwhile)
        assert rows == [("", 7)]
        cursor.execute("SELECT 1")  # the connection is usable again, out of the pipeline
        assert cursor.fetchone() == (1,)
    assert checks[0] is False
    assert checks[-1] is True


def test_a_statement_failing_meanwhile_raises_django_s_error_and_leaves_the_connection_usable():
    from django.db import DataError, connection, transaction

    from contacts.bulk.pipeline import fetch_rows as _fetch

    with pytest.raises(DataError), transaction.atomic(), connection.cursor() as cursor:
        _fetch(cursor, "SELECT 1 / %s::int", [0], lambda until: None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)


def test_new_contacts_with_and_without_tags_in_one_batch_get_every_column():
    """Rows without tags or other channels leave those columns (and the timestamps) to the
    database defaults; the others carry them: both kinds in one batch, ids in row order."""
    job = ImportJob.objects.create()
    ids = contacts_upsert_batch(
        contacts=[
            {"channels": [{"type": "email", "value": "lean@example.com"}], "firstName": "Lean"},
            {
                "channels": [
                    {"type": "email", "value": "tagged@example.com"},
                    {"type": "telegram", "value": "@tagged"},
                ],
                "tags": ["vip", 'quote"d', "back\\slash"],
            },
            {"channels": [{"type": "email", "value": "lean2@example.com"}]},
        ],
        options=OPTIONS,
        job=job,
    )
    contacts = [Contact.objects.get(pk=contact_id) for contact_id in ids]
    assert [c.email for c in contacts] == [
        "lean@example.com",
        "tagged@example.com",
        "lean2@example.com",
    ]
    assert contacts[0].first_name == "Lean"
    assert (contacts[1].tags, contacts[1].extra_channels) == (
        ["vip", 'quote"d', "back\\slash"],
        [{"type": "telegram", "value": "@tagged"}],
    )
    for contact in contacts[::2]:
        assert (contact.tags, contact.extra_channels) == ([], [])
    for contact in contacts:
        assert contact.confirmed and contact.source == "import" and contact.deleted_at is None
        assert contact.created_at == contact.updated_at == contact.confirmed_at
