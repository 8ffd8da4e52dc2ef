"""Bulk contacts: N contacts through POST /api/v1/contacts vs a raw INSERT … unnest … ON CONFLICT.

Herald's path, end to end and in this process: Django's test Client posts 3000-contact
requests (authentication, JSON parsing, shape checks, the stored job payload), then each
import job runs with `import_job_run` (validation with email-validator and phonenumbers,
set-based matching, COPY into contacts and UPDATE … FROM, job counters) until it is
FINISHED. The broker is kombu's in-memory transport, so the enqueued tasks go nowhere and no
worker competes. Only the job's id is looked up between the two, as the task carries it.
The floor is one psycopg connection sending the same, already normalised rows as
`INSERT … SELECT … FROM unnest(…) ON CONFLICT (external_customer_id) DO UPDATE`.
Both run twice on the same rows: into an empty table (creates), then again (updates).
Everything happens in a database of its own (`herald_bench_contacts`), dropped afterwards.
"""

import argparse
import base64
import json
import os
import sys
import time
from urllib.parse import urlsplit

from tests.benchmarks import support

DATABASE_NAME = "herald_bench_contacts"
BATCH = 3000


def rows(count: int) -> list[dict]:
    return [
        {
            "channels": [
                {"type": "email", "value": f"Bench.Person{i}@Example.com"},
                {"type": "sms", "value": f"38050{i:07d}"},
            ],
            "firstName": f"First{i}",
            "lastName": f"Last{i % 997}",
            "externalCustomerId": f"bench-{i}",
        }
        for i in range(count)
    ]


def herald_pass(client, auth: str, contacts: list[dict]) -> tuple[float, float]:
    """Seconds spent answering the requests, seconds running their jobs."""
    from contacts.models import ImportJob, ImportStatus
    from contacts.services import import_job_run

    # Encoded up front: what a client spends building its JSON is not Herald's throughput.
    bodies = [
        json.dumps({"contacts": contacts[start : start + BATCH], "dedupeOn": "email"})
        for start in range(0, len(contacts), BATCH)
    ]
    posting = running = 0.0
    for body in bodies:
        began = time.perf_counter()
        response = client.post(
            "/api/v1/contacts",
            data=body,
            content_type="application/json",
            headers={"Authorization": auth},
        )
        posted = time.perf_counter()
        assert response.status_code == 200, response.content[:500]
        # Only the id, as the enqueued task carries it: loading the stored 3000-contact
        # payload here would bill Herald's throughput for the benchmark's own lookup.
        job_id = ImportJob.objects.values_list("pk", flat=True).get(
            session_id=response.json()["asyncSessionId"]
        )
        import_job_run(job_id=job_id)
        running += time.perf_counter() - posted
        posting += posted - began
        job = ImportJob.objects.defer("payload").get(pk=job_id)
        assert job.status == ImportStatus.FINISHED, job.description
        assert job.failed_count == 0, list(job.failures.values_list("reason", flat=True)[:3])
    return posting, running


RAW_SQL = """
INSERT INTO contacts_contact (
    first_name, last_name, email, phone, extra_channels, region, town, address, postcode,
    language_code, time_zone, external_customer_id, tags, fields, confirmed, confirmed_at,
    source, created_at, updated_at, deleted_at)
SELECT v.first_name, v.last_name, v.email, v.phone, '[]'::jsonb, '', '', '', '', '', '',
       v.external_customer_id, '{}', '{}'::jsonb, true, now(), 'import', now(), now(), NULL
  FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
       AS v(first_name, last_name, email, phone, external_customer_id)
ON CONFLICT (external_customer_id) WHERE external_customer_id IS NOT NULL DO UPDATE
   SET first_name = excluded.first_name, last_name = excluded.last_name,
       email = excluded.email, phone = excluded.phone, updated_at = now()
"""


def raw_pass(database_url: str, contacts: list[dict]) -> float:
    import psycopg

    columns = [
        [c["firstName"] for c in contacts],
        [c["lastName"] for c in contacts],
        [c["channels"][0]["value"].lower() for c in contacts],
        ["+" + c["channels"][1]["value"] for c in contacts],
        [c["externalCustomerId"] for c in contacts],
    ]
    with psycopg.connect(database_url) as conn:
        began = time.perf_counter()
        for start in range(0, len(contacts), BATCH):
            conn.execute(RAW_SQL, [column[start : start + BATCH] for column in columns])
            conn.commit()
        return time.perf_counter() - began


def _empty_contacts() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE contacts_contact, contacts_importjob CASCADE")
        cursor.execute("VACUUM ANALYZE contacts_contact")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="bench contacts_bulk", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--contacts", type=int, default=100_000, help="contacts per pass")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_contacts_bulk", argv):
        return
    # Enqueued tasks stay in this process's memory: jobs are run here, explicitly.
    environ = {"CELERY_BROKER_URL": "memory://", "DEBUG": "0"}
    with support.scratch_database(DATABASE_NAME, keep=args.keep, environ=environ) as database_url:
        _run(args, database_url)


def _run(args, database_url: str) -> None:
    from django.test import Client

    from integrations.services import api_key_create

    _, secret = api_key_create(name="bench", rights="contacts")
    auth = "Basic " + base64.b64encode(f"bench:{secret}".encode()).decode()
    contacts = rows(args.contacts)
    client = Client()

    host = urlsplit(database_url).hostname or "embedded server"
    print(
        f"{args.contacts} contacts (email + sms + names + externalCustomerId) in {BATCH}-contact "
        f"requests; database {DATABASE_NAME} on {host}; {os.cpu_count()} CPUs (shared)",
        flush=True,
    )
    results = {}
    for label in ("create", "update"):
        if label == "create":
            _empty_contacts()
        posting, running = herald_pass(client, auth, contacts)
        results[("herald", label)] = posting + running
        print(
            f"herald {label}: {args.contacts / (posting + running):8.0f} contacts/s "
            f"(requests {posting:.2f} s, jobs {running:.2f} s)",
            flush=True,
        )
    for label in ("create", "update"):
        if label == "create":
            _empty_contacts()
        seconds = raw_pass(database_url, contacts)
        results[("raw", label)] = seconds
        print(f"raw    {label}: {args.contacts / seconds:8.0f} contacts/s ({seconds:.2f} s)")
    for label in ("create", "update"):
        ratio = results[("raw", label)] / results[("herald", label)]
        print(f"ratio  {label}: {ratio:.2f} (herald / raw throughput; target ≥ 0.5)")


if __name__ == "__main__":
    main(sys.argv[1:])
