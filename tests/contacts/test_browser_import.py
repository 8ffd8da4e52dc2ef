"""The marketer's import journey in a real Chromium with a real Celery worker: a Windows-1251,
semicolon-separated file with a Cyrillic header, a tags column and a column Herald does not
know → the mapping screen → a custom field made on the spot → progress → a failed row in words
→ its file downloaded, fixed and uploaded again. Every import page passes axe and fits a phone.
"""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from contacts.models import Contact, CustomField, ImportJob
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.a11y import assert_accessible, assert_fits_phone
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FILE = (
    "Ім'я;Телефон;Email;Теги;Вік\n"
    "Олена;+380501234567;olena@example.com;vip, нові;34\n"
    "Петро;;petro@example.com;нові;abc\n"
    "Оксана Довгоіменна-Багатопрізвищна;;oksana.with.a.very.long.address@example.com;;29\n"
)


def upload(page, name: str, data: bytes) -> None:
    open_page(page, "/contacts/import/")
    page.get_by_label("CSV file").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": data}
    )
    page.get_by_role("button", name="Upload and map columns").click()
    expect(page.get_by_role("heading", name="Map the columns", level=1)).to_be_visible()


def finished(page) -> None:
    expect(page.get_by_test_id("import-progress")).to_have_attribute(
        "data-status", "FINISHED", timeout=30_000
    )


def test_marketer_maps_imports_fixes_and_reimports_a_cyrillic_file(
    page, marketer, celery_worker, tmp_path
):
    ContactFactory(email="olena@example.com", first_name="", tags=["old"])
    log_in(page, marketer.username, PASSWORD)

    # The upload page, with a form error shown.
    open_page(page, "/contacts/import/")
    page.get_by_role("button", name="Upload and map columns").click()
    expect(page.get_by_test_id("field-error").first).to_be_visible()
    assert_accessible(page, "upload form with errors")
    assert_fits_phone(page, "/contacts/import/")

    upload(page, "клієнти.csv", FILE.encode("cp1251"))
    expect(page.get_by_test_id("encoding")).to_have_value("windows-1251")
    expect(page.get_by_test_id("delimiter")).to_have_value("semicolon")
    expect(page.get_by_test_id("detected")).to_contain_text("(;)")
    preview = page.get_by_test_id("preview")
    expect(preview).to_contain_text("Олена")
    mapping = page.get_by_test_id("mapping")
    expect(mapping.get_by_label("Ім'я")).to_have_value("first_name")
    expect(mapping.get_by_label("Телефон")).to_have_value("phone")
    expect(mapping.get_by_label("Теги")).to_have_value("tags")
    expect(mapping.get_by_label("Вік")).to_have_value("ignore")

    # Another reading re-reads the preview in place; back to the detected one.
    page.get_by_test_id("encoding").select_option("windows-1252")
    expect(preview).to_contain_text("Îëåíà")
    page.get_by_test_id("encoding").select_option("windows-1251")
    expect(page.get_by_test_id("preview")).to_contain_text("Олена")

    # The unknown column becomes a new number field, without leaving the screen.
    page.get_by_text("Create a custom field for a column").click()
    expect(page.get_by_label("For the column")).to_have_value("4")
    expect(page.get_by_label("Field name")).to_have_value("Вік")
    page.get_by_label("Type", exact=True).select_option("number")
    page.get_by_role("button", name="Create and map").click()
    age = wait_for(lambda: CustomField.objects.filter(name="Вік").first())
    expect(page.get_by_test_id("mapping").get_by_label("Вік")).to_have_value(f"field:{age.pk}")
    assert_accessible(page, "mapping screen")
    job = ImportJob.objects.get()
    # Opened afresh, the column keeps its field: it is pre-mapped by the field's name.
    assert_fits_phone(page, f"/contacts/import/{job.session_id}/columns/")
    expect(page.get_by_test_id("mapping").get_by_label("Вік")).to_have_value(f"field:{age.pk}")

    page.get_by_test_id("start-import").click()
    finished(page)
    expect(page.get_by_test_id("count-created")).to_have_text("1")
    expect(page.get_by_test_id("count-updated")).to_have_text("1")
    expect(page.get_by_test_id("count-failed")).to_have_text("1")
    failures = page.get_by_test_id("failures")
    expect(failures).to_contain_text("the custom field 'Вік' expects a number, got 'abc'")
    assert_accessible(page, "import results with a failed row")
    assert_fits_phone(page, f"/contacts/import/{job.session_id}/")

    olena = Contact.objects.get(email="olena@example.com")
    assert (olena.first_name, olena.tags, olena.fields) == (
        "Олена",
        ["old", "vip", "нові"],
        {str(age.pk): 34},
    )

    # The failed rows, downloaded, fixed and uploaded again as they are.
    with page.expect_download() as download:
        page.get_by_test_id("failures-download").click()
    saved = Path(tmp_path) / "failed.csv"
    download.value.save_as(saved)
    text = saved.read_bytes().decode("utf-8-sig")
    assert text.splitlines()[0] == "row,reason,Ім'я,Телефон,Email,Теги,Вік"
    upload(
        page, "failed.csv", text.replace(";abc", ";41").replace(",abc", ",41").encode("utf-8-sig")
    )
    expect(page.get_by_test_id("encoding")).to_have_value("utf-8-sig")
    mapping = page.get_by_test_id("mapping")
    expect(mapping.get_by_label("row", exact=True)).to_have_value("ignore")
    expect(mapping.get_by_label("reason", exact=True)).to_have_value("ignore")
    expect(mapping.get_by_label("Вік")).to_have_value(f"field:{age.pk}")
    page.get_by_test_id("start-import").click()
    finished(page)
    expect(page.get_by_test_id("count-created")).to_have_text("1")
    expect(page.get_by_test_id("count-failed")).to_have_text("0")
    petro = Contact.objects.get(email="petro@example.com")
    assert (petro.first_name, petro.tags, petro.fields) == ("Петро", ["нові"], {str(age.pk): 41})

    # The list of imports, with both.
    open_page(page, "/contacts/import/")
    expect(page.get_by_test_id("import-list").locator("tbody tr")).to_have_count(2)
    assert_accessible(page, "import list")


def test_the_progress_page_while_an_import_waits_for_a_worker(page, marketer):
    """No worker here: the page polls, shows the waiting state, and passes the checks."""
    log_in(page, marketer.username, PASSWORD)
    upload(page, "contacts.csv", b"Email,First name\na@example.com,Ann\n")
    page.get_by_test_id("start-import").click()
    expect(page.get_by_test_id("import-status")).to_have_text("Waiting")
    expect(page.get_by_test_id("import-progress")).to_have_attribute("data-status", "STARTED")
    assert_accessible(page, "import progress")
    job = ImportJob.objects.get()
    assert_fits_phone(page, f"/contacts/import/{job.session_id}/")
