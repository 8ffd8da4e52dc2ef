"""CSV import: N rows through Herald's csv_import path vs a raw COPY of the same file.

Herald's path, in this process, no HTTP: a file job is created as the upload API or page
creates it, its file put in place, then `csv_import_run` does what the Celery task does:
claim the job, check and count the file (first pass), stream 10,000-row chunks to
`contacts_upsert_batch` (the validators, with contact_parse — email-validator, phonenumbers —
deciding every row the flat fast path refuses; custom field typing; set-based matching;
COPY into contacts and UPDATE … FROM; job counters), finish the job.
Two raw `COPY … FROM STDIN (FORMAT csv, HEADER)` loads of the very same file, no validation:
- into `raw_contacts`, a copy of contacts_contact made with `LIKE … INCLUDING ALL` (its
  columns, identity and every index the contact queries need), the file's columns mapped
  straight onto it (the custom field's cell into `fields`, as JSON), the other NOT NULL
  columns filled by column defaults. This is the ratio's baseline: what PostgreSQL itself
  takes to put the file into a table shaped and indexed as contacts are;
- into `raw_csv_contacts`, a plain table of the file's columns (all text, no index), printed
  for scale: most of the difference between the two is index maintenance.
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
PLAIN_TABLE = """
CREATE TABLE IF NOT EXISTS raw_csv_contacts (
    first_name text, last_name text, address text, region text, city text, postcode text,
    email text, sms text, language_code text, timezone text, contact_id text, score text
)"""
CONTACTS_TABLE = [
    "CREATE TABLE IF NOT EXISTS raw_contacts (LIKE contacts_contact INCLUDING ALL)",
    """ALTER TABLE raw_contacts
         ALTER extra_channels SET DEFAULT '[]', ALTER tags SET DEFAULT '{}',
         ALTER fields SET DEFAULT '{}', ALTER confirmed SET DEFAULT true,
         ALTER source SET DEFAULT 'import', ALTER created_at SET DEFAULT now(),
         ALTER updated_at SET DEFAULT now()""",
]
# The file's columns, in its order, as raw_contacts names them.
CONTACTS_COLUMNS = (
    "first_name, last_name, address, region, town, postcode, email, phone, language_code, "
    "time_zone, external_customer_id, fields"
)


def write_csv(path: Path, rows: int, *, changed: bool = False) -> int:
    """A realistic file: every standard column, a quoted address with a comma, a custom field.
    `changed`: the same people with another first name and score on every row."""
    import csv

    cities = ["Kyiv", "Lviv", "London", "Berlin", "Warsaw", "Odesa", "Paris"]
    zones = ["Europe/Kyiv", "Europe/London", "Europe/Berlin", "Europe/Warsaw", "Europe/Paris"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow(
                [
                    f"Changed{i}" if changed else f"First{i}",
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
                    str((i + changed) % 1000),
                ]
            )
    return path.stat().st_size


def herald_pass(path: Path, *, mapped: bool = False) -> tuple[float, object]:
    from django.core.files import File

    from contacts.csv_files import upload_save
    from contacts.csv_import import csv_import_run
    from contacts.csv_mapping import mapping_guess
    from contacts.custom_fields import custom_field_columns
    from contacts.imports import csv_import_start
    from contacts.models import ImportJob, ImportStatus

    job = csv_import_start(options={"dedupeOn": "email"}, file_name=path.name)
    if mapped:
        # As the mapping screen leaves a browser upload: its columns mapped by their names.
        job.payload = {
            **job.payload,
            "mapping": mapping_guess(HEADER, custom_field_columns()),
            "encoding": "utf-8",
            "delimiter": ",",
            "tagSeparator": ",",
        }
        ImportJob.objects.filter(pk=job.pk).update(payload=job.payload)
    with path.open("rb") as handle:
        upload_save(job, File(handle))  # what the upload leaves behind
    began = time.perf_counter()
    csv_import_run(job_id=job.pk)
    seconds = time.perf_counter() - began
    job.refresh_from_db()
    assert job.status == ImportStatus.FINISHED, job.description
    assert job.failed_count == 0, list(job.failures.values_list("reason", flat=True)[:3])
    return seconds, job


def copy_pass(database_url: str, path: Path, *, indexed: bool) -> float:
    import psycopg

    with psycopg.connect(database_url) as conn:
        if indexed:
            for statement in CONTACTS_TABLE:
                conn.execute(statement)
            table, target = "raw_contacts", f"raw_contacts ({CONTACTS_COLUMNS})"
        else:
            conn.execute(PLAIN_TABLE)
            table = target = "raw_csv_contacts"
        conn.execute(f"TRUNCATE {table}")
        conn.commit()
        began = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy(f"COPY {target} FROM STDIN (FORMAT csv, HEADER true)") as copy,
            open(path, "rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        conn.commit()
        return time.perf_counter() - began


PASSES = {
    "create": "into an empty table",
    "re-import": "the same file again: every row matches a contact and changes nothing",
    "update": "every row matches and changes (first name, custom field)",
}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench csv_import", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="CSV rows (contacts)")
    parser.add_argument("--keep", action="store_true", help="keep the database and the CSV")
    parser.add_argument(
        "--mapped",
        action="store_true",
        help="import as a browser upload does, with its columns mapped (mapping screen)",
    )
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_csv_import", argv):
        return
    csv_path = Path(f"/tmp/herald_bench_csv_{args.rows}.csv")  # noqa: S108 (bench scratch file)
    changed_path = csv_path.with_name(f"herald_bench_csv_{args.rows}_changed.csv")
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
            _run(args, database_url, csv_path, changed_path)
    finally:
        if not args.keep:
            csv_path.unlink(missing_ok=True)
            changed_path.unlink(missing_ok=True)


def _run(args, database_url: str, csv_path: Path, changed_path: Path) -> None:
    from contacts.models import CustomField

    CustomField.objects.create(name="Score", group_key="PERSONAL", key="SCORE", type="number")

    began = time.perf_counter()
    size = write_csv(csv_path, args.rows)
    write_csv(changed_path, args.rows, changed=True)
    host = urlsplit(database_url).hostname or "embedded server"
    print(
        f"{args.rows} rows, {len(HEADER)} columns, {size / 1e6:.1f} MB at {csv_path} "
        f"(two files written in {time.perf_counter() - began:.1f} s); database {DATABASE_NAME} "
        f"on {host}; {os.cpu_count()} CPUs (shared)",
        flush=True,
    )
    results = {}
    for label, path in (("create", csv_path), ("re-import", csv_path), ("update", changed_path)):
        if label == "create":
            support.empty_contacts()
        seconds, job = herald_pass(path, mapped=args.mapped)
        results[label] = seconds
        print(
            f"herald {label:9}: {args.rows / seconds:8.0f} rows/s ({seconds:.1f} s; created "
            f"{job.created_count}, updated {job.updated_count}) — {PASSES[label]}",
            flush=True,
        )
    seconds = copy_pass(database_url, csv_path, indexed=True)
    print(
        f"COPY into a contacts-shaped table: {args.rows / seconds:8.0f} rows/s ({seconds:.1f} s)",
        flush=True,
    )
    plain = copy_pass(database_url, csv_path, indexed=False)
    print(
        f"COPY into a plain text table     : {args.rows / plain:8.0f} rows/s ({plain:.1f} s)",
        flush=True,
    )
    for label in PASSES:
        print(
            f"ratio  {label:9}: {seconds / results[label]:.3f} (herald / COPY into the "
            f"contacts-shaped table; target ≥ 0.5); {plain / results[label]:.3f} of the plain COPY"
        )
    shutil.rmtree(os.environ["HERALD_VAR_DIR"], ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
