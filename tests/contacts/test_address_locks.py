"""Writers creating a contact for the same new address at the same time make one contact.

Found by the load suite (tests/load): two bulk imports sending one new address within the
same moment each created it. Here the first writer is held inside its transaction, after it
created the contact and before it commits, while the second runs: the second must wait for
it and then update its contact.
"""

import threading
import time

import pytest
from django.db import connection, transaction

from contacts.bulk.upsert import contacts_upsert_batch
from contacts.models import Contact, ImportJob
from contacts.services import contact_create_or_update

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESS = "twin@example.com"


def _bulk(first_name: str) -> None:
    contacts_upsert_batch(
        contacts=[{"channels": [{"type": "email", "value": ADDRESS}], "firstName": first_name}],
        options={"dedupeOn": "email"},
        job=ImportJob.objects.create(),
    )


def _add(first_name: str) -> None:
    contact_create_or_update(
        data={"channels": [{"type": "email", "value": ADDRESS}], "firstName": first_name},
        source="api",
    )


def _waiting_on_a_lock(thread: threading.Thread) -> bool:
    """Whether the second writer is blocked on a lock (or has already finished)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock')"
        )
        return cursor.fetchone()[0] or not thread.is_alive()


def _second_writer_while_first_is_uncommitted(first, second) -> None:
    created, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                first("First")
                created.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def run() -> None:
        try:
            second("Second")
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert created.wait(timeout=30)
    writer = threading.Thread(target=run)
    writer.start()
    deadline = time.monotonic() + 30
    while not _waiting_on_a_lock(writer) and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    holder.join()
    writer.join()


@pytest.mark.parametrize(
    ("first", "second"),
    [(_bulk, _bulk), (_add, _bulk), (_bulk, _add)],
    ids=["import-import", "add-import", "import-add"],
)
def test_two_writers_of_one_new_address_at_once_make_one_contact(first, second):
    _second_writer_while_first_is_uncommitted(first, second)

    contacts = list(Contact.objects.filter(email=ADDRESS).values_list("first_name", flat=True))
    assert contacts == ["Second"]
