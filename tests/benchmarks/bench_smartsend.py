"""Smartsend: N personalised emails end to end into a local SMTP server vs raw smtplib.

Herald's path: one POST /api/v1/message/{id}/smartsend with N recipients (each a jsonParam
with an order of 3 items; half of them known contacts, half created by the call), through
Django's test client in this process, then the send task — in a real Celery worker process
(`--mode worker`, the default) or run in this process (`--mode inline`) — claims, renders
(Velocity engine, CSS inlining), adds tracking (click redirects, pixel, List-Unsubscribe),
builds the MIME message and sends over one SMTP connection, recording each outcome in the
ledger. The clock stops when the SMTP server holds all N messages and the ledger says sent.

The floor sends N comparable messages (same HTML size, multipart/alternative built with
email.mime from a pre-rendered string) with smtplib over one connection to the same server
in the same run. Everything runs in a database of its own (`herald_bench_send`), dropped
afterwards.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid

from tests.benchmarks import support

DATABASE_NAME = "herald_bench_send"

HTML = """<style>td { padding: 4px 8px; } .total { font-weight: bold; }</style>
<h1>Hello $!contact.firstName,</h1>
<p>Your order <b>$data.get('orderId')</b> is on its way.</p>
<table>#foreach($item in $data.get('items'))<tr><td>$item.get('name')</td>
<td>$item.get('qty') x $item.get('price')</td></tr>#end</table>
<p class="total">Total: $data.get('total')</p>
<p><a href="https://shop.example/orders/$data.get('orderId')">Track your parcel</a></p>"""


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench smartsend", description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1000, help="recipients (≤ 1000)")
    parser.add_argument(
        "--mode",
        choices=["worker", "inline"],
        default="worker",
        help="send in a Celery worker process (default) or in this process",
    )
    parser.add_argument(
        "--concurrency", type=int, default=2, help="worker processes (--mode worker)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)
    if not 1 <= args.recipients <= 1000:
        parser.error("--recipients must be 1..1000 (the API's limit per call)")

    if support.ran_apart("tests.benchmarks.bench_smartsend", argv):
        return
    with support.scratch_database(DATABASE_NAME, keep=args.keep, environ=_environ(args)):
        _run(args)


def _recipients(count: int) -> list[dict]:
    recipients = []
    for n in range(count):
        items = [
            {"name": f"Item {n}-{i}", "qty": 1 + (n + i) % 3, "price": 5 + (n * 7 + i) % 40}
            for i in range(3)
        ]
        params = {
            "orderId": f"A-{n:05d}",
            "items": items,
            "total": sum(item["qty"] * item["price"] for item in items),
        }
        recipients.append({"locator": f"person{n}@example.com", "jsonParam": json.dumps(params)})
    return recipients


def _environ(args) -> dict[str, str]:
    environ = {
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "HERALD_VAR_DIR": tempfile.mkdtemp(prefix="herald-bench-send-"),
        # A queue of its own, so a running dev worker cannot take the benchmark's task.
        "HERALD_QUEUE": f"bench_send_{os.getpid()}",
    }
    if args.mode == "inline":
        # The task runs inside the API call's on_commit, in this process.
        environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    return environ


def _run(args) -> None:
    from django.conf import settings
    from django.test import Client

    from campaigns.models import Delivery
    from config.core.api_keys import api_key_create
    from contacts.models import Contact
    from templates.services import template_create, template_publish
    from tests.support.api import APIClient
    from tests.support.smtp import SMTPSink
    from tests.support.worker import CeleryWorker

    template = template_create(
        name="Order shipped",
        subject="Order $data.get('orderId') shipped",
        from_name="Shop",
        from_email="orders@shop.example",
        html=HTML,
    )
    template_publish(template=template)
    recipients = _recipients(args.recipients)
    Contact.objects.bulk_create(
        [
            Contact(email=f"person{n}@example.com", first_name=f"Person{n}")
            for n in range(0, args.recipients, 2)
        ]
    )
    _key, secret = api_key_create(name="bench", rights="messages")
    api = APIClient(Client())
    print(
        f"{args.recipients} recipients, mode {args.mode}"
        + (f" ({args.concurrency} worker processes)" if args.mode == "worker" else "")
        + f"; database {DATABASE_NAME}; "
        f"{os.cpu_count()} CPUs (shared)",
        flush=True,
    )

    with SMTPSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        worker = None
        if args.mode == "worker":
            worker = CeleryWorker(
                concurrency=args.concurrency, env={"EMAIL_URL": sink.url}
            ).__enter__()
        try:
            began = time.perf_counter()
            response = api.post(
                f"/api/v1/message/{template.pk}/smartsend",
                key=secret,
                body={"recipients": recipients},
            )
            answered = time.perf_counter() - began
            assert response.status_code == 200, response.content[:500]
            send_request_id = response.json()["id"]
            deadline = time.monotonic() + 600
            while len(sink.received) < args.recipients:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"only {len(sink.received)} messages after 600 s"
                        + (f"\n{worker.output()[-3000:]}" if worker else "")
                    )
                time.sleep(0.02)
            received = time.perf_counter() - began
            while Delivery.objects.filter(
                send_request_id=send_request_id, status="sent"
            ).count() < (args.recipients):
                time.sleep(0.02)
            recorded = time.perf_counter() - began
        finally:
            if worker is not None:
                worker.__exit__(None, None, None)
        herald_count = len(sink.received)
        sample = sink.received[0].raw
        floor_seconds = _raw_smtplib(sink, args.recipients, len(sample))

    herald_rate = args.recipients / recorded
    floor_rate = args.recipients / floor_seconds
    what = "sending included: eager task" if args.mode == "inline" else "deliveries queued"
    print(f"  API answer ({args.recipients} recipients, {what}): {answered:.2f} s")
    print(
        f"  Herald smartsend end to end: {herald_count} messages in the sink after "
        f"{received:.2f} s, all recorded sent after {recorded:.2f} s → {herald_rate:.0f} msg/s"
    )
    print(
        f"  raw smtplib, same sink, comparable messages: {floor_seconds:.2f} s "
        f"→ {floor_rate:.0f} msg/s"
    )
    print(f"  ratio raw/Herald: {floor_rate / herald_rate:.1f}x  (message size ~{len(sample)} B)")


def _raw_smtplib(sink, count: int, size: int) -> float:
    """Pre-rendered, comparable messages over one smtplib connection."""
    import smtplib

    sink.received.clear()
    body = "<p>" + "x" * max(size // 2 - 200, 100) + "</p>"
    text = "x" * max(size // 4, 100)
    began = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
        for n in range(count):
            message = MIMEMultipart("alternative")
            message["Subject"] = f"Order A-{n:05d} shipped"
            message["From"] = "Shop <orders@shop.example>"
            message["To"] = f"person{n}@example.com"
            message["Date"] = formatdate()
            message["Message-ID"] = make_msgid(domain="shop.example")
            message.attach(MIMEText(text, "plain", "utf-8"))
            message.attach(MIMEText(body, "html", "utf-8"))
            smtp.sendmail(
                "orders@shop.example", [message["To"]], message.as_bytes(policy=SMTP_POLICY)
            )
    while len(sink.received) < count:
        time.sleep(0.01)
    return time.perf_counter() - began


if __name__ == "__main__":
    main(sys.argv[1:])
