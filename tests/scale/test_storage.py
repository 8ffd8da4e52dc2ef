"""Shared storage: what one process stores, any other reads (config.core.storage), and a
browser upload imported by a worker on another machine."""

import datetime as dt
import io
import json
import os
import subprocess
import sys

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from config.core.models import StoredFile, StoredFileChunk
from config.core.storage import DatabaseStorage, stored_files_forget
from contacts.csv_files import upload_exists
from contacts.models import Contact, ImportJob, ImportStatus
from tests.conftest import wait_for
from tests.scale.machines import WorkerMachine, machines_ready


@pytest.fixture
def small_chunks():
    return DatabaseStorage(chunk_size=1000)


def test_a_file_is_stored_in_chunks_and_read_back_byte_for_byte(db, small_chunks):
    content = os.urandom(2500)
    name = small_chunks.save("imports/big.csv", ContentFile(content))
    assert name == "imports/big.csv"
    assert StoredFileChunk.objects.filter(file__name=name).count() == 3
    assert small_chunks.size(name) == 2500
    with small_chunks.open(name) as handle:
        assert handle.read() == content
    with small_chunks.open(name) as handle:
        handle.seek(1990)
        assert handle.read(20) == content[1990:2010], "a read across a chunk boundary"
        handle.seek(-5, io.SEEK_END)
        assert handle.read() == content[-5:]


def test_an_upload_is_stored_without_reading_it_whole(db, small_chunks):
    upload = SimpleUploadedFile("a.csv", b"x" * 4321, content_type="text/csv")
    name = small_chunks.save("imports/a.csv", upload)
    pieces = StoredFileChunk.objects.filter(file__name=name).order_by("number")
    assert [len(bytes(piece.data)) for piece in pieces] == [1000, 1000, 1000, 1000, 321]


def test_a_taken_name_gets_another_and_names_list_by_folder(db, small_chunks):
    first = small_chunks.save("templates/logo.png", ContentFile(b"one"))
    second = small_chunks.save("templates/logo.png", ContentFile(b"two"))
    assert first != second and small_chunks.exists(second)
    small_chunks.save("templates/icons/x.png", ContentFile(b"x"))
    directories, files = small_chunks.listdir("templates")
    assert directories == ["icons"] and sorted(files) == sorted(
        name.split("/")[-1] for name in (first, second)
    )
    small_chunks.delete(first)
    assert not small_chunks.exists(first)
    assert not StoredFileChunk.objects.filter(file__name=first).exists()


def test_a_missing_file_is_file_not_found_and_cannot_be_opened_for_writing(db, small_chunks):
    with pytest.raises(FileNotFoundError):
        small_chunks.open("imports/none.csv")
    small_chunks.save("imports/one.csv", ContentFile(b"1"))
    with pytest.raises(ValueError, match="save"):
        small_chunks.open("imports/one.csv", "wb")


def test_old_uploads_are_forgotten_and_editor_images_kept(db):
    old_upload = default_storage.save("imports/old.csv", ContentFile(b"a"))
    new_upload = default_storage.save("imports/new.csv", ContentFile(b"b"))
    image = default_storage.save("templates/editor/old.png", ContentFile(b"c"))
    long_ago = timezone.now() - dt.timedelta(days=8)
    StoredFile.objects.filter(name__in=[old_upload, image]).update(created_at=long_ago)
    assert stored_files_forget(days=7) == 1
    assert not default_storage.exists(old_upload)
    assert default_storage.exists(new_upload) and default_storage.exists(image)


def test_the_storage_backend_is_chosen_by_setting():
    script = (
        "from django.core.files.storage import storages; s = storages['default']; "
        "print(type(s).__name__, s.location)"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "HERALD_STORAGE_BACKEND": "django.core.files.storage.FileSystemStorage",
        "HERALD_STORAGE_OPTIONS": json.dumps({"location": "/srv/herald-files"}),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["FileSystemStorage", "/srv/herald-files"]
    env["HERALD_STORAGE_OPTIONS"] = "[1]"
    refused = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert b"HERALD_STORAGE_OPTIONS must be a JSON object" in refused.stderr


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_browser_upload_is_imported_by_a_worker_on_another_machine_and_exported_back(
    client, marketer, settings, tmp_path
):
    settings.VAR_DIR = tmp_path / "web"  # the web machine's own disk
    rows = "".join(f"Person{i},person{i}@example.com\n" for i in range(300))
    with WorkerMachine("worker-b") as machine:
        client.force_login(marketer)
        response = client.post(
            "/contacts/import/",
            {
                "file": SimpleUploadedFile(
                    "people.csv", ("First name,Email\n" + rows).encode(), "text/csv"
                ),
                "dedupe_on": "email",
            },
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        job = ImportJob.objects.get(session_id=response["Location"].split("/")[3])
        page = client.get(f"/contacts/import/{job.session_id}/columns/")
        form = page.context["form"]
        data = {name: form[name].value() or "" for name in form.fields}
        machines_ready(machine)
        response = client.post(
            f"/contacts/import/{job.session_id}/columns/", {**data, "action": "import"}
        )
        assert response.status_code == 302
        job = wait_for(
            lambda: (
                ImportJob.objects.exclude(status__in=[ImportStatus.STARTED, ImportStatus.IMPORTING])
                .filter(pk=job.pk)
                .first()
            ),
            timeout=90,
        )
        assert job.status == ImportStatus.FINISHED, (job.description, machine.output()[-3000:])
        assert job.created_count == 300
        assert not upload_exists(job), "the worker removed the stored upload"
        assert not list((machine.var_dir / "work").iterdir()), "nor left its local copy"
    assert Contact.objects.count() == 300
    exported = b"".join(client.get("/contacts/export.csv").streaming_content).decode()
    assert exported.count("@example.com") == 300
    assert not (tmp_path / "web" / "uploads").exists(), "nothing went to the web's disk"


def test_the_hourly_beat_task_forgets_uploads_older_than_the_setting(db, settings):
    from config.core.tasks import stored_files_forget as task

    entry = settings.CELERY_BEAT_SCHEDULE["core-stored-files-forget"]
    assert entry["task"] == task.name
    name = default_storage.save("imports/left.csv", ContentFile(b"a"))
    settings.HERALD_STORED_FILES_DAYS = 1
    task()
    assert default_storage.exists(name)
    StoredFile.objects.filter(name=name).update(created_at=timezone.now() - dt.timedelta(days=2))
    task()
    assert not default_storage.exists(name)
