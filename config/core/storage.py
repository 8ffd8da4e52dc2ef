"""Files every Herald process can read, whichever machine wrote them.

DatabaseStorage, the default storage (settings.STORAGES["default"]), keeps each file in
PostgreSQL as numbered chunks (config.core.models.StoredFile/StoredFileChunk): a browser
upload saved by a web process is read by a worker on another machine, with nothing shared but
the database both already use. Reading and writing hold one chunk in memory at a time, so a
100 MB CSV is never in memory whole. HERALD_STORAGE_BACKEND swaps it for any Django storage
(django-storages' S3Storage, for one) without a change to the code that uses it.

Files under these folders are working copies that age out (stored_files_forget):
imports/ (uploaded CSV files waiting for or in an import).
"""

import io
import logging
from datetime import timedelta
from urllib.parse import urljoin

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.deconstruct import deconstructible
from django.utils.encoding import filepath_to_uri

from config.core.models import StoredFile, StoredFileChunk

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024  # a round trip per megabyte: cheap to hold, few rows per file
# Folders of working copies that stored_files_forget removes once they are old.
AGING_FOLDERS = ("imports",)


class _ChunkReader(io.RawIOBase):
    """A read-only, seekable byte stream over a stored file's chunks, fetched one at a time."""

    def __init__(self, stored: StoredFile) -> None:
        super().__init__()
        self._file_id = stored.pk
        self._size = stored.size
        self._chunk_size = stored.chunk_size
        self._position = 0
        self._chunk_number = -1
        self._chunk = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        if self._position >= self._size:
            return 0
        number, start = divmod(self._position, self._chunk_size)
        if number != self._chunk_number:
            self._chunk = bytes(
                StoredFileChunk.objects.filter(file_id=self._file_id, number=number)
                .values_list("data", flat=True)
                .get()
            )
            self._chunk_number = number
        piece = self._chunk[start : start + len(buffer)]
        buffer[: len(piece)] = piece
        self._position += len(piece)
        return len(piece)


def _pieces(content: File, size: int):
    """The content in pieces of exactly `size` bytes (the last may be shorter), whatever
    sizes the upload's own chunks come in."""
    pending = bytearray()
    for chunk in content.chunks(size):
        pending += chunk if isinstance(chunk, bytes) else chunk.encode()
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


@deconstructible(path="config.core.storage.DatabaseStorage")
class DatabaseStorage(Storage):
    """Django's storage API over PostgreSQL (see the module's docstring)."""

    def __init__(self, base_url: str | None = None, chunk_size: int = CHUNK_BYTES) -> None:
        self.base_url = base_url
        self.chunk_size = chunk_size

    def _stored(self, name: str) -> StoredFile:
        try:
            return StoredFile.objects.get(name=name)
        except StoredFile.DoesNotExist:
            raise FileNotFoundError(f"No stored file named {name!r}.") from None

    def _open(self, name: str, mode: str = "rb") -> File:
        if any(flag in mode for flag in "wax+"):
            raise ValueError("Stored files are written with save(), not opened for writing.")
        stream = io.BufferedReader(_ChunkReader(self._stored(name)), buffer_size=self.chunk_size)
        return File(stream, name=name)

    def _save(self, name: str, content: File) -> str:
        # Two processes may pick the same free name at once: the unique name decides, and
        # the loser asks for the next free one, as FileSystemStorage does with O_EXCL.
        while True:
            try:
                with transaction.atomic():
                    return self._write(name, content)
            except IntegrityError:
                name = self.get_available_name(name)
                if hasattr(content, "seek"):
                    content.seek(0)

    def _write(self, name: str, content: File) -> str:
        stored = StoredFile.objects.create(name=name, chunk_size=self.chunk_size)
        size = 0
        for number, piece in enumerate(_pieces(content, self.chunk_size)):
            StoredFileChunk.objects.create(file=stored, number=number, data=piece)
            size += len(piece)
        StoredFile.objects.filter(pk=stored.pk).update(size=size)
        return name

    def delete(self, name: str) -> None:
        StoredFile.objects.filter(name=name).delete()

    def exists(self, name: str) -> bool:
        return StoredFile.objects.filter(name=name).exists()

    def size(self, name: str) -> int:
        return self._stored(name).size

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        directories, files = set(), []
        for name in StoredFile.objects.filter(name__startswith=prefix).values_list(
            "name", flat=True
        ):
            head, slash, _rest = name[len(prefix) :].partition("/")
            if slash:
                directories.add(head)
            else:
                files.append(head)
        return sorted(directories), sorted(files)

    def url(self, name: str | None) -> str:
        base = self.base_url if self.base_url is not None else settings.MEDIA_URL
        return urljoin(base, filepath_to_uri(name))

    def get_created_time(self, name: str):
        return self._stored(name).created_at

    get_modified_time = get_created_time
    get_accessed_time = get_created_time


def stored_files_forget(*, days: int) -> int:
    """Remove working copies (AGING_FOLDERS) older than `days` → how many. Through the storage
    API, so it works on whichever backend is configured; an import still running holds its
    own local copy, so removing its stored file does not disturb it."""
    cutoff = timezone.now() - timedelta(days=days)
    removed = 0
    for folder in AGING_FOLDERS:
        try:
            _directories, names = default_storage.listdir(folder)
        except FileNotFoundError:  # a file system storage that never had one
            continue
        for name in names:
            path = f"{folder}/{name}"
            try:
                if default_storage.get_created_time(path) < cutoff:
                    default_storage.delete(path)
                    removed += 1
            except FileNotFoundError:
                continue  # removed meanwhile by its import
    if removed:
        logger.info("removed %s stored file(s) older than %s days", removed, days)
    return removed
