"""Bulk contacts: N contacts through POST /api/v1/contacts vs a raw INSERT … unnest … ON CONFLICT.

Herald's path, end to end, measured two ways:
- deployed: Herald as `bin/run` starts it, gunicorn (2 processes of 4 threads) answering and
  a Celery worker (prefork, 2 processes) importing, on the broker CELERY_BROKER_URL names
  (else the file-system broker in a scratch folder, which polls once a second: with few
  requests that wait is most of the time). One client posts the 3000-contact
  requests one after another over a kept-alive connection, then waits until every import
  session is FINISHED: contacts/s from the first request to the last session finished.
  This is the ratio's figure;
- one process: Django's test Client posts each request (authentication, JSON parsing, shape
  checks, the stored job payload), then its job runs here with `import_job_run` (validation
  with email-validator and phonenumbers, set-based matching, COPY into contacts and
  UPDATE … FROM, job counters): requests and jobs take turns, nothing overlaps. Printed to
  show what each contact costs.
The floor is one psycopg connection sending the same, already normalised rows as
`INSERT … SELECT … FROM unnest(…) ON CONFLICT (external_customer_id) DO UPDATE`.
Passes: create (into an empty table), update (every contact's first name changes), and for
Herald also re-send (the update's rows again: every contact matches and none changes, so none
is rewritten; the raw statement rewrites every row whatever it holds, as in its update).
Everything happens in a database of its own (`herald_bench_contacts`), dropped afterwards.
"""

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import time
from urllib.parse import urlsplit

from tests.benchmarks import support

DATABASE_NAME = "herald_bench_contacts"
BATCH = 3000


def rows(count: int, *, changed: bool = False) -> list[dict]:
    return [
        {
            "channels": [
                {"type": "email", "value": f"Bench.Person{i}@Example.com"},
                {"type": "sms", "value": f"38050{i:07d}"},
            ],
            "firstName": f"Changed{i}" if changed else f"First{i}",
            "lastName": f"Last{i % 997}",
            "externalCustomerId": f"bench-{i}",
        }
        for i in range(count)
    ]


def _bodies(contacts: list[dict]) -> list[str]:
    # Encoded up front: what a client spends building its JSON is not Herald's throughput.
    return [
        json.dumps({"contacts": contacts[start : start + BATCH], "dedupeOn": "email"})
        for start in range(0, len(contacts), BATCH)
    ]


def deployed_pass(port: int, auth: str, contacts: list[dict]) -> float:
    """Seconds from the first request until every import session has finished."""
    import http.client

    from contacts.models import ImportJob, ImportStatus

    bodies = _bodies(contacts)
    sessions = []
    conn = http.client.HTTPConnection(support.LOOPBACK, port, timeout=120)
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    began = time.perf_counter()
    for body in bodies:
        conn.request("POST", "/api/v1/contacts", body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        assert response.status == 200, answer[:500]
        sessions.append(json.loads(answer)["asyncSessionId"])
    conn.close()
    jobs = ImportJob.objects.filter(session_id__in=sessions)
    while jobs.exclude(status__in=[ImportStatus.FINISHED, ImportStatus.ERROR]).exists():
        if time.perf_counter() - began > 600:
            raise RuntimeError("import sessions still unfinished after 10 minutes")
        time.sleep(0.02)
    seconds = time.perf_counter() - began
    assert not jobs.exclude(status=ImportStatus.FINISHED).exists(), "an import job failed"
    assert not jobs.exclude(failed_count=0).exists(), "an import job reported failed rows"
    return seconds


def herald_pass(client, auth: str, contacts: list[dict]) -> tuple[float, float]:
    """Seconds spent answering the requests, seconds running their jobs."""
    from contacts.bulk.jobs import import_job_run
    from contacts.models import ImportJob, ImportStatus

    bodies = _bodies(contacts)
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


PASSES = ("create", "update", "re-send")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="bench contacts_bulk", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--contacts", type=int, default=100_000, help="contacts per pass")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_contacts_bulk", argv):
        return
    broker = os.environ.get("CELERY_BROKER_URL", "")
    deployed_environ = {
        "HERALD_BROKER_DIR": tempfile.mkdtemp(prefix="herald-bench-broker-"),
        "HERALD_QUEUE": "bench-contacts",  # where the web processes send, the worker takes
    }
    deployed_environ["CELERY_BROKER_URL"] = (
        broker if broker and not broker.startswith("memory") else "filesystem://"
    )
    # This process's own enqueued tasks (one-process passes) stay in its memory: jobs are run
    # here, explicitly.
    environ = {"CELERY_BROKER_URL": "memory://", "DEBUG": "0"}
    try:
        with support.scratch_database(
            DATABASE_NAME, keep=args.keep, environ=environ
        ) as database_url:
            _run(args, database_url, deployed_environ)
    finally:
        shutil.rmtree(deployed_environ["HERALD_BROKER_DIR"], ignore_errors=True)


def _run(args, database_url: str, deployed_environ: dict[str, str]) -> None:
    from django.db import connection
    from django.test import Client

    from config.core.api_keys import api_key_create
    from tests.support.worker import CeleryWorker

    _, secret = api_key_create(name="bench", rights="contacts")
    auth = "Basic " + base64.b64encode(f"bench:{secret}".encode()).decode()
    data = {
        "create": rows(args.contacts),
        "update": rows(args.contacts, changed=True),
        "re-send": rows(args.contacts, changed=True),
    }
    host = urlsplit(database_url).hostname or "embedded server"
    print(
        f"{args.contacts} contacts (email + sms + names + externalCustomerId) in {BATCH}-contact "
        f"requests; database {DATABASE_NAME} on {host}; broker "
        f"{deployed_environ['CELERY_BROKER_URL'].split('://')[0]}; {os.cpu_count()} CPUs (shared)",
        flush=True,
    )
    results = {}
    support.empty_contacts()
    connection.close()  # the web and worker processes start without this one's
    with (
        support.Gunicorn(workers=2, threads=4, environ=deployed_environ) as web,
        CeleryWorker(
            concurrency=2,
            queue=deployed_environ["HERALD_QUEUE"],
            env={**deployed_environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "0"},
        ),
    ):
        for label in PASSES:
            seconds = deployed_pass(web.port, auth, data[label])
            results[("deployed", label)] = seconds
            print(
                f"herald deployed   {label:7}: {args.contacts / seconds:8.0f} contacts/s "
                f"({seconds:.2f} s)",
                flush=True,
            )
    client = Client()
    for label in PASSES:
        if label == "create":
            support.empty_contacts()
        posting, running = herald_pass(client, auth, data[label])
        results[("serial", label)] = posting + running
        print(
            f"herald one process {label:7}: {args.contacts / (posting + running):8.0f} "
            f"contacts/s (requests {posting:.2f} s, jobs {running:.2f} s)",
            flush=True,
        )
    for label in ("create", "update"):
        if label == "create":
            support.empty_contacts()
        seconds = raw_pass(database_url, data[label])
        results[("raw", label)] = seconds
        print(
            f"raw                {label:7}: {args.contacts / seconds:8.0f} contacts/s "
            f"({seconds:.2f} s)"
        )
    for label in PASSES:
        raw = results[("raw", "update" if label == "re-send" else label)]
        print(
            f"ratio  {label:7}: {raw / results[('deployed', label)]:.2f} deployed (herald / raw "
            f"throughput; target ≥ 0.5); {raw / results[('serial', label)]:.2f} one process"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
