"""What every fault test shares: an audience, a campaign sent by real Celery workers through
a private Redis broker into an SMTP sink, a recovery loop standing in for beat, the faults
themselves (a killed worker, a killed broker, a database that refuses connections, a relay
that answers 421), and the check that the ledger and the sink agree.

The check is the pipeline's promise (campaigns.pipeline, "Why it is safe to crash
anywhere"): every recipient gets the message; a copy is possible only for messages in flight
at the fault (at most RECORD_EVERY per pool process per fault) and carries the first copy's
Message-ID; every ledger row ends sent, one per recipient; the run completes.
"""

import contextlib
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from django.db import connection

from campaigns import lifecycle, pipeline
from campaigns.models import CampaignRun, Delivery, DeliveryStatus, RunStatus
from contacts.models import Contact
from tests.campaigns.test_pipeline import make_campaign
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker

# Recipients per run: the normal suite's bounded size unless HERALD_FAULT_RECIPIENTS says
# otherwise (the full run: 20000).
NORMAL_RECIPIENTS = 500
# Worker pool processes: each may have up to RECORD_EVERY messages sent but not yet
# recorded when a fault hits, which bounds the copies a fault may cause.
CONCURRENCY = 2
# The claim lease the workers and the recovery loop agree on: far above the time a batch
# takes on a busy two-core machine, short enough that a dead worker's claims come back soon.
CLAIM_LEASE = timedelta(seconds=15)
# The recovery loop (beat's campaigns.runs_recover, on a faster clock) runs this often and
# restarts senders of a run idle for STALL.
RECOVERY_EVERY = 2.0
STALL = timedelta(seconds=5)
# How long a run may take, per recipient and at least. Generous: after a 421 the provider's
# rate is cut and grows back over minutes (campaigns.delivery.rate), ~5 messages/s at first.
SECONDS_PER_RECIPIENT = 0.05
MIN_TIMEOUT = 120.0


def fault_runs() -> int:
    return int(os.environ.get("HERALD_FAULT_RUNS") or 2)


def fault_recipients() -> int:
    return int(os.environ.get("HERALD_FAULT_RECIPIENTS") or NORMAL_RECIPIENTS)


def fault_seed() -> int:
    """HERALD_FAULT_SEED replays a failed run's random moments; else a fresh seed."""
    seed = os.environ.get("HERALD_FAULT_SEED")
    return int(seed) if seed else random.SystemRandom().randrange(1, 10**9)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the broker ----------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of this test's own on a free loopback port, without persistence: killed,
    it forgets every queued task, the worst a broker restart can do."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="herald-faults-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not listen on {self.port}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> "PrivateRedis":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def publishing_to(url: str) -> Iterator[None]:
    """This process's Celery app (launches and the recovery loop enqueue senders) publishes
    to `url` meanwhile; its connection pools are dropped on the way in and out. Celery reads
    the environment's broker URLs before its configuration, so the write URL is set there
    (workers started meanwhile inherit it: the same broker)."""
    from config.celery import app

    previous = os.environ.get(WRITE_URL)
    os.environ[WRITE_URL] = url
    _pools_drop(app)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(WRITE_URL, None)
        else:
            os.environ[WRITE_URL] = previous
        _pools_drop(app)


def _pools_drop(app) -> None:
    """Forget the app's broker connections and producers, as Celery does after a fork: the
    next publish connects to the broker URL of the moment. kombu keeps the pools in global
    groups keyed by connection (Celery's app.pool is one of them), so those are emptied too:
    a pool closed but left there fails every later publish of this process ("Acquire on
    closed pool"), the next tests' included."""
    from kombu import pools

    pools.reset()
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


WRITE_URL = "CELERY_BROKER_WRITE_URL"


# --- the database --------------------------------------------------------------------------


class PostgresProxy:
    """A TCP proxy between the workers and PostgreSQL. `outage(seconds)` cuts every open
    connection and, for that long, closes each new one at once (the client sees the server
    refuse it), as a failover or a restart of the server would; the server itself is never
    touched."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refusing_until = 0.0
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.cut = self.refused = 0
        self.closed = False

    def __enter__(self) -> "PostgresProxy":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.closed = True
        self.listener.close()
        self._cut_all()

    def database_url(self) -> str:
        """The test database's URL through the proxy."""
        db = connection.settings_dict
        return f"postgres://{quote(db['USER'], safe='')}@127.0.0.1:{self.port}/{db['NAME']}"

    def outage(self, seconds: float) -> None:
        self.refusing_until = time.monotonic() + seconds
        self._cut_all()

    def _cut_all(self) -> None:
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            self.cut += 1
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.refusing_until:
                self.refused += 1
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


# --- one run -------------------------------------------------------------------------------


@dataclass
class Figures:
    fault: str
    recipients: int
    received: int
    duplicates: int
    bound: int
    seconds: float
    moments: list[tuple[float, int]]

    def __str__(self) -> str:
        moments = ", ".join(f"{at:.1f}s after {sent} sent" for at, sent in self.moments)
        return (
            f"{self.fault}: {self.recipients} recipients, {self.received} messages received, "
            f"{self.duplicates} duplicates (bound {self.bound}), {self.seconds:.1f}s; "
            f"faults at {moments}"
        )


class FaultRun:
    """One campaign to `recipients` fresh contacts, sent by real workers on `broker` into a
    fresh sink. `database_url` points the workers elsewhere (a proxy) than the test database;
    `lease` is the claim lease of its workers and recovery loop."""

    def __init__(
        self,
        *,
        fault: str,
        recipients: int,
        broker: PrivateRedis,
        database_url: str | None = None,
        lease: timedelta = CLAIM_LEASE,
    ) -> None:
        self.fault = fault
        self.lease = lease
        self.recipients = recipients
        self.broker = broker
        self.database_url = database_url
        self.sink = SMTPSink()
        self.workers: list[CeleryWorker] = []
        # (seconds after the launch, messages received) at each fault.
        self.moments: list[tuple[float, int]] = []
        self.started = 0.0
        self.next_recovery = 0.0
        self.run: CampaignRun | None = None
        self.emails: list[str] = []

    # --- set-up ---

    def audience(self) -> str:
        """Insert the run's contacts, tagged for this run alone; return the tag."""
        tag = f"fault{time.monotonic_ns()}"
        self.emails = [f"r{i}.{tag}@faults.example" for i in range(self.recipients)]
        Contact.objects.bulk_create(
            (Contact(email=email, tags=[tag], confirmed=True) for email in self.emails),
            batch_size=2000,
        )
        return tag

    def worker_start(self) -> CeleryWorker:
        env = {
            "EMAIL_URL": self.sink.url,
            "CELERY_BROKER_URL": self.broker.url,
            "HERALD_RETRY_BASE": "1",
            "HERALD_CLAIM_TIMEOUT": str(int(self.lease.total_seconds())),
        }
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        worker = CeleryWorker(concurrency=CONCURRENCY, env=env)
        worker.__enter__()
        self.workers.append(worker)
        return worker

    def __enter__(self) -> "FaultRun":
        # aiosmtpd logs every SMTP command: tens of thousands of lines per run.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.sink.__enter__()
        self.publishing = publishing_to(self.broker.url)
        self.publishing.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for worker in self.workers:
            worker.__exit__()
        self.publishing.__exit__(None, None, None)
        self.sink.__exit__()

    def launch(self) -> None:
        tag = self.audience()
        self.worker_start()
        campaign = make_campaign(
            name=f"Faults: {self.fault}", status="draft", audience_filter={"tags": {"$in": [tag]}}
        )
        self.started = time.monotonic()
        self.run = lifecycle.campaign_launch_now(campaign=campaign)

    # --- during the run ---

    def sent(self) -> int:
        return len(self.sink.received)

    def completed(self) -> bool:
        return CampaignRun.objects.filter(pk=self.run.pk, status=RunStatus.COMPLETED).exists()

    def recover(self) -> None:
        """Beat's recovery task, run here on a faster clock. A broker that is down refuses the
        senders it would start; beat would fail the same way and try again next time."""
        try:
            pipeline.runs_recover(older_than=self.lease, stall=STALL)
        except Exception as exc:  # kombu's errors differ by transport
            print(f"  recovery could not enqueue: {type(exc).__name__}: {exc}")

    def wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(
                    f"{self.fault}: {what} not within {timeout:.0f}s\n" + self.state()
                )
            if now >= self.next_recovery:
                self.next_recovery = now + RECOVERY_EVERY
                self.recover()
            time.sleep(0.2)

    def at_random_moments(
        self, rng: random.Random, fault: Callable[[], None], *, count: int = 1
    ) -> None:
        """Inject `fault` `count` times, each once a random share (0 to 80 %: right after the
        launch, with the senders still queued, up to late in the run) of the audience has
        been received."""
        for share in sorted(rng.uniform(0.0, 0.8) for _ in range(count)):
            threshold = int(self.recipients * share)
            self.wait(
                lambda threshold=threshold: self.sent() >= threshold or self.completed(),
                timeout=MIN_TIMEOUT + self.recipients * SECONDS_PER_RECIPIENT,
                what=f"{threshold} messages received",
            )
            self.moments.append((time.monotonic() - self.started, self.sent()))
            fault()

    def finish(self) -> None:
        self.wait(
            self.completed,
            timeout=MIN_TIMEOUT + self.recipients * SECONDS_PER_RECIPIENT,
            what="the run completed",
        )

    def state(self) -> str:
        """What a stuck run looks like: the ledger by status and claim, the last worker log."""
        ledger = Counter(
            (status, claimed is not None)
            for status, claimed in Delivery.objects.filter(run=self.run).values_list(
                "status", "claimed_at"
            )
        )
        run = CampaignRun.objects.get(pk=self.run.pk)
        log = self.workers[-1].output()[-3000:] if self.workers else ""
        return (
            f"run {run.status}, received {self.sent()}, ledger (status, claimed): "
            f"{dict(ledger)}\nlast worker log:\n{log}"
        )

    # --- the check ---

    def check(self) -> Figures:
        """Assert the promise (module docstring) and return the run's figures."""
        seconds = time.monotonic() - self.started
        copies: dict[str, list[str]] = defaultdict(list)
        for recipient, message_id in self.sink.message_ids():
            copies[recipient].append(message_id)
        bound = len(self.moments) * CONCURRENCY * pipeline.RECORD_EVERY
        duplicates = sum(len(ids) - 1 for ids in copies.values())
        figures = Figures(
            self.fault,
            self.recipients,
            sum(len(ids) for ids in copies.values()),
            duplicates,
            bound,
            seconds,
            self.moments,
        )
        print(figures)

        lost = set(self.emails) - set(copies)
        assert not lost, f"{len(lost)} recipients got nothing, e.g. {sorted(lost)[:3]}"
        assert set(copies) == set(self.emails)
        mixed = {r: ids for r, ids in copies.items() if len(set(ids)) > 1}
        assert not mixed, f"copies with different Message-IDs: {list(mixed.items())[:3]}"
        assert duplicates <= bound, f"{duplicates} duplicates, more than {bound} in flight"

        ledger = list(
            Delivery.objects.filter(run=self.run).values_list(
                "locator", "status", "message_id", "contact_id"
            )
        )
        assert len(ledger) == self.recipients
        assert len({contact for *_, contact in ledger}) == self.recipients
        unfinished = Counter(status for _, status, *_ in ledger if status != DeliveryStatus.SENT)
        assert not unfinished, f"ledger rows not sent: {dict(unfinished)}"
        assert {locator: message_id for locator, _, message_id, _ in ledger} == {
            recipient: ids[0] for recipient, ids in copies.items()
        }
        run = CampaignRun.objects.get(pk=self.run.pk)
        assert run.status == RunStatus.COMPLETED
        assert run.campaign.status == "completed"
        return figures


def database_host_port() -> tuple[str, int]:
    return (
        connection.settings_dict["HOST"] or "127.0.0.1",
        int(connection.settings_dict.get("PORT") or 5432),
    )
