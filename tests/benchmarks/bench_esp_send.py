"""Campaign send through an email service: N personalised, tracked emails through Herald's
delivery engine and django-anymail to a local server speaking the service's sending API
(Postmark's by default; tests/support/fake_esp.py), beside the same campaign through the
SMTP path into Postfix's smtp-sink, in the same run and the same worker.

Herald, both paths: the contacts, template and campaign of bench_campaign_send (`populate`),
then a second campaign with the same audience and template that names an Integration of
the service; the clock runs from `campaign_launch_now` until no delivery of the run is queued,
with a real Celery worker (prefork, SENDER_TASKS processes) sending over SENDER_TASKS
connections (HTTP keep-alive sessions, or SMTP connections). Also printed: the CPU time per
message of the worker's processes and of this process, where the local service runs (on a
busy machine the wall-clock rates move; the CPU figures much less).

Raw HTTP floor: the request Anymail made for one message, posted N times over SENDER_TASKS
keep-alive connections from as many processes (http.client, no Django, no database), to the
same server: what the local service costs by itself.

Needs PostgreSQL (DATABASE_URL or the embedded server) and a Redis broker (CELERY_BROKER_URL,
default redis://127.0.0.1:6379/15); smtp-sink as bench_campaign_send finds it. The database
herald_bench_esp is created and dropped after.
"""

import argparse
import http.client
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks import support
from tests.benchmarks.bench_campaign_send import SMTPSinkServer, populate
from tests.support.fake_esp import FAKES, Call, FakeESP

BASE_DIR = Path(__file__).resolve().parents[2]
DATABASE_NAME = "herald_bench_esp"
QUEUE = "q_bench_esp"


# --- Herald --------------------------------------------------------------------------------


class Worker:
    """A Celery worker (prefork, SENDER_TASKS processes) on the benchmark's queue."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.log = Path(tempfile.mkstemp(prefix="bench-esp-worker-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Worker":
        from campaigns.delivery import policy

        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": self.database_url,
            "DEBUG": "0",
        }
        with self.log.open("wb") as handle:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "config", "worker",
                    "--loglevel", "WARNING", "--pool", "prefork",
                    "--concurrency", str(policy.SENDER_TASKS), "-Q", QUEUE,
                    "--without-heartbeat", "--without-mingle", "--without-gossip",
                ],
                env=env, cwd=BASE_DIR, stdout=handle, stderr=subprocess.STDOUT,
            )  # fmt: skip
        # The pool is up once its processes are: celery reports "ready" only at INFO.
        import psutil

        deadline = time.monotonic() + 120
        main = psutil.Process(self.process.pid)
        while len(main.children()) < policy.SENDER_TASKS:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("worker did not start:\n" + self.log.read_text())
            time.sleep(0.2)
        time.sleep(1)
        return self

    def cpu_seconds(self) -> float:
        """CPU time the worker's processes have used so far."""
        import psutil

        assert self.process is not None
        main = psutil.Process(self.process.pid)
        total = 0.0
        for process in [main, *main.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)
        self.log.unlink(missing_ok=True)


def send_pass(campaign, worker: Worker) -> dict:
    """Launch the campaign and time it until none of its deliveries is queued; CPU seconds
    per message of the worker and of this process (where the local service runs)."""
    import psutil

    from campaigns.lifecycle import campaign_launch_now
    from campaigns.models import Delivery

    here = psutil.Process()
    cpu_worker, cpu_here = worker.cpu_seconds(), sum(here.cpu_times()[:2])
    began = time.perf_counter()
    run = campaign_launch_now(campaign=campaign)
    support.run_sent_wait(run.pk)
    elapsed = time.perf_counter() - began
    cpu_worker = worker.cpu_seconds() - cpu_worker
    cpu_here = sum(here.cpu_times()[:2]) - cpu_here
    rows = Delivery.objects.filter(run_id=run.pk)
    sent = rows.filter(status="sent").count()
    return {
        "seconds": elapsed,
        "sent": sent,
        "failed": rows.filter(status="failed").count(),
        "with_id": rows.exclude(provider_message_id="").count(),
        "providers": sorted(set(rows.values_list("provider", flat=True).distinct())),
        "rate": sent / elapsed,
        "cpu_worker_ms": 1000 * cpu_worker / max(sent, 1),
        "cpu_here_ms": 1000 * cpu_here / max(sent, 1),
    }


def esp_campaign(smtp_campaign, fake: FakeESP):
    """The SMTP campaign's twin that goes through an Integration of the fake's service."""
    from campaigns.models import Campaign
    from config.core.models import Integration
    from config.core.secrets import secrets_seal

    config, secrets = fake.integration_settings()
    integration = Integration.objects.create(
        kind=fake.esp,
        name=f"{fake.esp} bench",
        channels=["email"],
        settings=config,
        secrets_sealed=secrets_seal(secrets),
    )
    return Campaign.objects.create(
        name=f"{smtp_campaign.name} ({fake.esp})",
        channels=["email"],
        audience_filter=smtp_campaign.audience_filter,
        template=smtp_campaign.template,
        integration=integration,
    )


def anymail_request(fake: FakeESP, campaign) -> Call:
    """The HTTP request Anymail makes for one message of the campaign, as the server got it
    (sent to a probe delivery, removed after)."""
    from campaigns.delivery.content import SendContent
    from campaigns.delivery.providers import provider_of
    from campaigns.delivery.senders import Message
    from campaigns.models import Delivery
    from templates.services import RenderedMessage

    content = SendContent(
        template_version=campaign.template.versions.first(), tags=["campaign-0", "run-0"]
    )
    sender = provider_of(campaign.integration).sender(content, [])
    probe = Delivery.objects.create(
        channel="email", locator="person1@example.com", message_id="<probe@shop.example>"
    )
    rendered = RenderedMessage(
        subject="Spring sale for Person1",
        html="<h1>Hello Person1,</h1><p>Spring prices in Lviv are down this week.</p>"
        '<p><a href="https://shop.example/spring?utm_source=herald">See the sale</a></p>',
        text="Hello Person1,\n\nSpring prices in Lviv are down this week.\n",
    )
    try:
        outcomes = sender.send([Message(delivery=probe, rendered=rendered)])
    finally:
        sender.close()
        probe.delete()
    assert [o.status for o in outcomes.values()] == ["accepted"], outcomes
    return next(call for call in fake.calls if call.method == "POST")


# --- raw HTTP floor ------------------------------------------------------------------------


def _raw_worker(port: int, call: Call, count: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    headers = {k: v for k, v in call.headers.items() if k not in ("content-length", "connection")}
    for _ in range(count):
        connection.request(call.method, call.path, body=call.body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"raw request refused: {response.status}")
    connection.close()


def raw_pass(fake: FakeESP, call: Call, count: int, connections: int) -> dict:
    step = -(-count // connections)
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_raw_worker, args=(fake.port, call, min(step, count - n * step)))
        for n in range(connections)
    ]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    return {"seconds": elapsed, "rate": count / elapsed}


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench esp_send", description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--service", choices=sorted(FAKES), default="postmark")
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_esp_send", argv):
        return
    scratch = Path(tempfile.mkdtemp(prefix="herald-bench-esp-"))
    try:
        with SMTPSinkServer() as sink, FAKES[args.service]() as fake:
            environ = {
                "CELERY_BROKER_URL": os.environ.get(
                    "CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"
                ),
                "HERALD_QUEUE": QUEUE,
                "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
                "DEBUG": "0",
                "HERALD_VAR_DIR": str(scratch / "var"),
            }
            with support.scratch_database(
                DATABASE_NAME, keep=args.keep, environ=environ
            ) as database_url:
                _run(args, database_url, sink, fake)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(args, database_url: str, sink: SMTPSinkServer, fake: FakeESP) -> None:
    from campaigns.delivery import policy

    count = args.recipients
    connections = policy.SENDER_TASKS
    print(
        f"{count:,} recipients, {connections} connections, {fake.esp} API on port {fake.port}, "
        f"smtp-sink on port {sink.port}, database {DATABASE_NAME}, {os.cpu_count()} CPUs",
        flush=True,
    )
    smtp_campaign = populate(count)
    with Worker(database_url) as worker:
        # SMTP first: once an email integration exists, a campaign that names none goes
        # through it rather than through EMAIL_URL.
        smtp = send_pass(smtp_campaign, worker)
        campaign = esp_campaign(smtp_campaign, fake)
        call = anymail_request(fake, campaign)
        fake.record = False  # 100k kept messages would only cost the server memory
        fake.calls.clear()
        fake.messages.clear()
        accepted_before = fake.accepted
        esp = send_pass(campaign, worker)
    print(
        f"Herald → {fake.esp}: {esp['sent']:,} sent ({esp['failed']} failed, "
        f"{esp['with_id']:,} with the service's message id; the service accepted "
        f"{fake.accepted - accepted_before:,}) in {esp['seconds']:.1f} s = "
        f"{esp['rate']:,.0f} msg/s; provider {', '.join(esp['providers'])}; CPU per message: "
        f"worker {esp['cpu_worker_ms']:.1f} ms, local service {esp['cpu_here_ms']:.1f} ms",
        flush=True,
    )
    print(
        f"Herald → SMTP: {smtp['sent']:,} sent ({smtp['failed']} failed) in "
        f"{smtp['seconds']:.1f} s = {smtp['rate']:,.0f} msg/s (EMAIL_URL); CPU per message: "
        f"worker {smtp['cpu_worker_ms']:.1f} ms",
        flush=True,
    )
    print(f"{fake.esp}/SMTP = {esp['rate'] / smtp['rate']:.2f}", flush=True)
    if not args.skip_raw:
        raw = raw_pass(fake, call, count, connections)
        print(
            f"raw HTTP:      {count:,} of Anymail's request in {raw['seconds']:.1f} s = "
            f"{raw['rate']:,.0f} req/s → Herald {fake.esp}/raw HTTP = "
            f"{esp['rate'] / raw['rate']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
