"""CSV import: N rows through Herald's csv_import path vs a raw COPY of the same file.

Herald's path, in this process, no HTTP: a file job is created as the upload API or page
creates it, its file put in place, then `csv_import_run` does what the Celery task does:
claim the job, check and count the file (first pass), stream 10,000-row chunks to
`contacts_upsert_batch` (the validators, with contact_parse — email-validator, phonenumbers —
deciding every row the flat fast path refuses; custom field typing; set-based matching;
COPY into contacts and UPDATE … FROM; job counters), finish the job.
The floor is `COPY … FROM STDIN (FORMAT csv, HEADER)` of the very same file into a plain
table with the same columns (all text, logged like contacts_contact, no index, no validation).
Everything runs in a database of its own (`herald_bench_csv`), dropped afterwards; the CSV
is written under /tmp and removed unless --keep.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.benchmarks import support

DATABASE_NAME = "herald_bench_csv"
HEADER = [
    "First name",
    "Last name",
    "Address",
    "Region",
    "City",
    "Postcode",
    "Email",
    "Sms",
    "Language code",
    "Timezone",
    "Contact id",
    "PERSONAL.SCORE",
]
RAW_TABLE = """
CREATE TABLE IF NOT EXISTS raw_csv_contacts (
    first_name text, last_name text, address text, region text, city text, postcode text,
    email text, sms text, language_code text, timezone text, contact_id text, score text
)"""


def write_csv(path: Path, rows: int) -> int:
    """A realistic file: every standard column, a quoted address with a comma, a custom field."""
    import csv

    cities = ["Kyiv", "Lviv", "London", "Berlin", "Warsaw", "Odesa", "Paris"]
    zones = ["Europe/Kyiv", "Europe/London", "Europe/Berlin", "Europe/Warsaw", "Europe/Paris"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow(
                [
                    f"First{i}",
                    f"Last{i % 997}",
                    f"{i % 300} Main St, apt {i % 50}",
                    "West",
                    cities[i % len(cities)],
                    f"{10000 + i % 89999}",
                    f"bench.person{i}@example.com",
                    f"38050{i:07d}",
                    "en" if i % 3 else "uk",
                    zones[i % len(zones)],
                    f"bench-{i}",
                    str(i % 1000),
                ]
            )
    return path.stat().st_size


def herald_pass(path: Path) -> tuple[float, object]:
    from contacts.csv_import import csv_import_run, csv_import_start, upload_path
    from contacts.models import ImportStatus

    job = csv_import_start(options={"dedupeOn": "email"}, file_name=path.name)
    shutil.copyfile(path, upload_path(job))  # what the upload or the download leaves behind
    began = time.perf_counter()
    csv_import_run(job_id=job.pk)
    seconds = time.perf_counter() - began
    job.refresh_from_db()
    assert job.status == ImportStatus.FINISHED, job.description
    assert job.failed_count == 0, list(job.failures.values_list("reason", flat=True)[:3])
    return seconds, job


def copy_pass(database_url: str, path: Path) -> float:
    import psycopg

    with psycopg.connect(database_url) as conn:
        conn.execute(RAW_TABLE)
        conn.execute("TRUNCATE raw_csv_contacts")
        conn.commit()
        began = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY raw_csv_contacts FROM STDIN (FORMAT csv, HEADER true)") as copy,
            open(path, "rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        conn.commit()
        return time.perf_counter() - began


def _empty_contacts() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE contacts_contact, contacts_importjob CASCADE")
        cursor.execute("VACUUM ANALYZE contacts_contact")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench csv_import", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows (contacts)")
    parser.add_argument("--keep", action="store_true", help="keep the database and the CSV")
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_csv_import", argv):
        return
    csv_path = Path(f"/tmp/herald_bench_csv_{args.rows}.csv")  # noqa: S108 (bench scratch file)
    environ = {
        # The enqueued task stays in this process's memory: the job is run here, explicitly.
        "CELERY_BROKER_URL": "memory://",
        "DEBUG": "0",
        "HERALD_VAR_DIR": tempfile.mkdtemp(prefix="herald-bench-csv-"),
    }
    try:
        with support.scratch_database(
            DATABASE_NAME, keep=args.keep, environ=environ
        ) as database_url:
            _run(args, database_url, csv_path)
    finally:
        if not args.keep:
            csv_path.unlink(missing_ok=True)


def _run(args, database_url: str, csv_path: Path) -> None:
    from contacts.models import CustomField

    CustomField.objects.create(name="Score", group_key="PERSONAL", key="SCORE", type="number")

    began = time.perf_counter()
    size = write_csv(csv_path, args.rows)
    host = urlsplit(database_url).hostname or "embedded server"
    print(
        f"{args.rows} rows, {len(HEADER)} columns, {size / 1e6:.1f} MB at {csv_path} "
        f"(written in {time.perf_counter() - began:.1f} s); database {DATABASE_NAME} on {host}; "
        f"{os.cpu_count()} CPUs (shared)",
        flush=True,
    )
    results = {}
    for label in ("create", "update"):
        if label == "create":
            _empty_contacts()
        seconds, job = herald_pass(csv_path)
        results[label] = seconds
        print(
            f"herald {label}: {args.rows / seconds:8.0f} rows/s ({seconds:.1f} s; "
            f"created {job.created_count}, updated {job.updated_count})",
            flush=True,
        )
    seconds = copy_pass(database_url, csv_path)
    print(f"COPY   load  : {args.rows / seconds:8.0f} rows/s ({seconds:.1f} s)", flush=True)
    for label in ("create", "update"):
        ratio = seconds / results[label]
        print(f"ratio  {label}: {ratio:.3f} (herald / COPY throughput; target ≥ 0.5)")
    shutil.rmtree(os.environ["HERALD_VAR_DIR"], ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
