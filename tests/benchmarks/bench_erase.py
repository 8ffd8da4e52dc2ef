"""Privacy erasure of one person with a long history: `contact_delete(erase=True)`.

Into a database of its own (`herald_bench_erase`), two contacts with `--deliveries`
deliveries each (two status events per delivery) and `--events` events each, amid
`--others` events of other people (which the erasure reads for mentions of the person), all
by `INSERT … SELECT … FROM generate_series`. Measured in the same run:

- raw: the least any erasure must do, two plain UPDATEs blanking the first contact's
  deliveries (locator, params) and events (key_value, params) by contact id;
- erase: `contact_delete(erase=True)` on the second contact: every app's eraser
  (config.core.privacy) in one transaction, the audit log included.

Then it checks that no delivery or event of the erased contact keeps its address.
"""

import argparse
import sys
import time

from tests.benchmarks import support

DATABASE_NAME = "herald_bench_erase"

DELIVERIES_SQL = """
INSERT INTO campaigns_delivery (
    request_id, step, channel, locator, params, language_code, message_id, provider,
    provider_message_id, status, error, attempts, created_at, sent_at, open_count, click_count,
    contact_id)
SELECT gen_random_uuid(), 0, 'email', %(email)s, jsonb_build_object('n', i), '', '', 'smtp',
       '', 'sent', '', 1, now(), now(), 0, 0, %(contact)s
  FROM generate_series(1, %(count)s) AS i
"""
HISTORY_SQL = """
INSERT INTO campaigns_deliveryevent (delivery_id, status, at, detail, url, provider_event_id,
                                     machine)
SELECT d.id, s.status, now(), '', '', '', false
  FROM campaigns_delivery d, (VALUES ('sent'), ('delivered')) AS s(status)
 WHERE d.contact_id = %(contact)s
"""
EVENTS_SQL = """
INSERT INTO marketing_event (event_type_id, key_value, params, contact_id, created_at,
                             occurred_at, source_key)
SELECT %(type)s, %(key)s, jsonb_build_object('page', '/item/' || i), %(contact)s, now(), now(),
       ''
  FROM generate_series(1, %(count)s) AS i
"""


def _person(n: int, args) -> object:
    from django.db import connection

    from contacts.models import Contact
    from marketing.models import EventType

    email = f"person{n}@erase-bench.example"
    contact = Contact.objects.create(email=email, first_name=f"Person{n}", phone=f"+38050000000{n}")
    kind, _ = EventType.objects.get_or_create(key="viewed")
    with connection.cursor() as cursor:
        cursor.execute(
            DELIVERIES_SQL, {"email": email, "contact": contact.pk, "count": args.deliveries}
        )
        cursor.execute(HISTORY_SQL, {"contact": contact.pk})
        cursor.execute(
            EVENTS_SQL, {"type": kind.pk, "key": email, "contact": contact.pk, "count": args.events}
        )
    return contact


def _run(args) -> None:
    from django.db import connection, transaction

    from campaigns.models import Delivery
    from contacts.services import contact_delete
    from marketing.models import Event, EventType

    began = time.perf_counter()
    baseline, erased = _person(1, args), _person(2, args)
    others, _ = EventType.objects.get_or_create(key="others")
    with connection.cursor() as cursor:
        cursor.execute(
            EVENTS_SQL, {"type": others.pk, "key": "someone", "contact": None, "count": args.others}
        )
        cursor.execute("VACUUM ANALYZE")
    print(f"  data: {time.perf_counter() - began:.1f}s", flush=True)

    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_delivery SET locator = '', params = '{}' WHERE contact_id = %s",
            [baseline.pk],
        )
        cursor.execute(
            "UPDATE marketing_event SET key_value = '', params = '{}' WHERE contact_id = %s",
            [baseline.pk],
        )
    raw_seconds = time.perf_counter() - began

    began = time.perf_counter()
    contact_delete(contact=erased, erase=True)
    erase_seconds = time.perf_counter() - began

    rows = args.deliveries * 3 + args.events
    print(f"  person: {args.deliveries} deliveries, {args.deliveries * 2} status events, ")
    print(f"          {args.events} events; {args.others} events of other people")
    print(f"  raw, two UPDATEs by contact id     {raw_seconds:7.2f} s")
    print(f"  contact_delete(erase=True)         {erase_seconds:7.2f} s  ({rows} rows touched)")
    print(f"  ratio erase / raw: {erase_seconds / raw_seconds:.2f}", flush=True)

    left = Delivery.objects.filter(contact=erased).exclude(locator="").count()
    left += Event.objects.filter(contact=erased).exclude(key_value="").count()
    if left:
        raise SystemExit(f"{left} rows of the erased contact keep its address")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench erase", description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=100_000, help="deliveries per person")
    parser.add_argument("--events", type=int, default=20_000, help="events per person")
    parser.add_argument("--others", type=int, default=200_000, help="events of other people")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    if min(args.deliveries, args.events) < 1 or args.others < 0:
        parser.error("--deliveries and --events must be at least 1, --others 0 or more")

    if support.ran_apart("tests.benchmarks.bench_erase", argv):
        return
    environ = {"CELERY_BROKER_URL": "memory://", "DEBUG": "0"}
    with support.scratch_database(DATABASE_NAME, keep=args.keep, environ=environ):
        _run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
