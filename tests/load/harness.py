"""Herald under a bounded mixed load, run the way production runs it.

The stack is what `bin/run` (`manage.py herald_up`) starts: gunicorn with threaded workers
(`config.wsgi`, 2 workers x 4 threads), a Celery worker (prefork, concurrency 2) and celery
beat, on PostgreSQL and the configured broker, sending mail to a real SMTP sink. A small
email campaign is sent first, through that worker, so the open pixels and click links the
load hits are the ones in real messages.

The load is a closed loop of user threads, each with one keep-alive connection (as an
integration's HTTP client or a browser keeps one), going round a fixed mix of request kinds:
Generate event (the eSputnik v1 API and v2 with nested params, both served by the event
API's fast path), contact upserts (add, update by id, bulk add/update of 25; some new
addresses sent by every user and import in the same half second), tracking hits
(open pixel, click redirect) and a logged-in marketer's pages (dashboard, contacts list,
campaign report). Threads and http.client rather than locust: the client's work per request
is tiny next to Herald's, it needs no gevent monkey-patching inside a process that also runs
Django, and it adds no dependency.

Figures per kind and in total: requests, req/s, p50/p99 latency, errors and 5xx, and the RSS
of every gunicorn worker and Celery process (read from /proc) after a warm-up and at the
end. `work_check` then waits until the work the answers promised is done (events processed,
imports finished, contacts stored and none twice, hits in the ledger) and says what is
missing.

Run: `pytest -m load tests/load` (HERALD_LOAD_SECONDS=180 for the full run);
`python -m tests.benchmarks load` adds the no-op endpoint's throughput under the same load.
"""

import contextlib
import http.client
import json
import os
import re
import statistics
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tests.benchmarks.support import LOOPBACK, Gunicorn

# The same shape as `herald_up` (bin/run) starts.
WEB_WORKERS = 2
WEB_THREADS = 4
WORKER_CONCURRENCY = 2

CAMPAIGN_RECIPIENTS = 20
BULK_ROWS = 25
# New addresses that single adds and bulk imports of every user send at once.
SHARED_EMAILS = 3
LOAD_DOMAIN = "load.example"
EVENT_TYPES = ("load.viewed", "load.cart")
CLIENT_TIMEOUT = 30

# One round of the mix, in order; every user thread goes round it from its own offset, so
# the kinds interleave. Weights: events and tracking hits are the busiest traffic, pages
# the rarest (and the dearest).
MIX = (
    ("event v1", 6),
    ("event v2", 2),
    ("contact add", 3),
    ("contact update", 2),
    ("contacts bulk", 1),
    ("open pixel", 5),
    ("click redirect", 4),
    ("dashboard", 1),
    ("contacts list", 1),
    ("campaign report", 1),
)
ROUND = [kind for kind, weight in MIX for _ in range(weight)]
EXPECTED_STATUS = {"click redirect": 302}

TEMPLATE_HTML = (
    "<p>Hello $!contact.firstName,</p>"
    '<p><a href="https://shop.example/spring">The spring sale</a> and '
    '<a href="https://shop.example/new">what is new</a>.</p>'
)


# --- Processes and memory ------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    """Resident set size of a process in kB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(child) for child in (task / "children").read_text().split()]
    return sorted(found)


@dataclass
class Stack:
    """The running processes: gunicorn's workers and Celery's (main process and pool)."""

    web_master: int
    worker_main: int
    smtp: object
    base_url: str

    @property
    def port(self) -> int:
        return int(self.base_url.rpartition(":")[2])

    def processes(self) -> dict[int, str]:
        named = {pid: "gunicorn worker" for pid in children(self.web_master)}
        named[self.worker_main] = "celery worker"
        named.update({pid: "celery pool" for pid in children(self.worker_main)})
        return named

    def memory(self) -> dict[int, tuple[str, int]]:
        return {pid: (name, rss_kb(pid)) for pid, name in self.processes().items()}


@contextlib.contextmanager
def herald_running(*, database_url: str, settings_module: str = "config.settings") -> Iterator:
    """SMTP sink, gunicorn, a Celery worker and beat on `database_url`; yields a Stack.

    Django must be set up in this process (its settings give the broker and the queue).
    """
    from tests.campaigns.support import CeleryBeat
    from tests.support.smtp import SMTPSink
    from tests.support.worker import CeleryWorker

    with SMTPSink() as sink:
        web = Gunicorn(
            workers=WEB_WORKERS,
            threads=WEB_THREADS,
            ready_path="/healthz",
            environ={"DJANGO_SETTINGS_MODULE": settings_module, "DATABASE_URL": database_url},
        )
        base_url = f"http://{LOOPBACK}:{web.port}"
        # Links in the campaign's mail point at this gunicorn, as bin/run's do.
        env = {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": settings_module,
            "EMAIL_URL": sink.url,
            "HERALD_BASE_URL": base_url,
            "LOG_LEVEL": "WARNING",
        }
        web.environ.update({"EMAIL_URL": sink.url, "HERALD_BASE_URL": base_url})
        worker = CeleryWorker(concurrency=WORKER_CONCURRENCY, env=env)
        services = [worker, CeleryBeat(env=env), web]
        # Started and stopped side by side: each waits seconds for its process to be ready
        # (or gone), which on a busy machine adds up.
        with contextlib.ExitStack() as running:
            running.callback(_together, [partial(s.__exit__, None, None, None) for s in services])
            _together([s.__enter__ for s in services])
            yield Stack(web.process.pid, worker.process.pid, sink, base_url)


def _together(calls: list[Callable]) -> None:
    with ThreadPoolExecutor(len(calls)) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()


# --- What the load works on ----------------------------------------------------------------


@dataclass
class Targets:
    events_auth: str
    contacts_auth: str
    session_cookie: str
    campaign_id: int
    contact_ids: list[int]
    emails: list[str]
    open_paths: list[str]
    click_paths: list[str]


def _basic(secret: str) -> str:
    return "Basic " + b64encode(f"load:{secret}".encode()).decode()


def targets_prepare(stack: Stack, *, timeout: float = 120) -> Targets:
    """API keys, a logged-in marketer's session, and a small campaign sent through the
    running worker; the open and click links are read from the mail the SMTP sink got."""
    from django.test import Client

    from campaigns import lifecycle
    from campaigns.models import Campaign, CampaignRun, RunStatus
    from config.core.api_keys import api_key_create
    from contacts.models import ChannelType, Contact
    from templates.services import template_create, template_publish
    from tests.factories import UserFactory

    _, events_secret = api_key_create(name="load events", rights="events")
    _, contacts_secret = api_key_create(name="load contacts", rights="contacts")
    client = Client()
    client.force_login(UserFactory(username="load-marketer", role="marketer"))

    people = Contact.objects.bulk_create(
        Contact(
            email=f"reader{n}@{LOAD_DOMAIN}", first_name=f"Reader{n}", confirmed=True, tags=["load"]
        )
        for n in range(CAMPAIGN_RECIPIENTS)
    )
    template = template_create(
        name="Load spring",
        subject="Spring, $!contact.firstName",
        from_name="Shop",
        from_email="news@shop.example",
        html=TEMPLATE_HTML,
    )
    template_publish(template=template)
    campaign = Campaign.objects.create(
        name="Load spring sale",
        channels=[ChannelType.EMAIL],
        template=template,
        status="draft",
        audience_filter={"tags": {"$in": ["load"]}},
    )
    run = lifecycle.campaign_launch_now(campaign=campaign)
    deadline = time.monotonic() + timeout
    while len(stack.smtp.received) < CAMPAIGN_RECIPIENTS:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the campaign sent {len(stack.smtp.received)} messages")
        time.sleep(0.2)
    while not CampaignRun.objects.filter(pk=run.pk, status=RunStatus.COMPLETED).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the campaign's run did not complete")
        time.sleep(0.2)
    opens, clicks = _tracking_paths(stack)
    return Targets(
        events_auth=_basic(events_secret),
        contacts_auth=_basic(contacts_secret),
        session_cookie=client.cookies["sessionid"].value,
        campaign_id=campaign.pk,
        contact_ids=[person.pk for person in people],
        emails=[person.email for person in people],
        open_paths=opens,
        click_paths=clicks,
    )


def _tracking_paths(stack: Stack) -> tuple[list[str], list[str]]:
    opens, clicks = [], []
    for message in stack.smtp.messages:
        html = message.get_body(("html",)).get_content()
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            url = url.replace("&amp;", "&")
            if not url.startswith(stack.base_url):
                continue
            path = url[len(stack.base_url) :]
            if path.startswith("/t/o/"):
                opens.append(path)
            elif path.startswith("/t/c/"):
                clicks.append(path)
    if not opens or not clicks:
        raise RuntimeError(f"no tracking links in the campaign's mail ({stack.base_url})")
    return opens, clicks


# --- The load ------------------------------------------------------------------------------


@dataclass
class KindStats:
    requests: int = 0
    errors: int = 0
    server_errors: int = 0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    def add(self, other: "KindStats") -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.server_errors += other.server_errors
        self.latencies += other.latencies
        self.first_error = self.first_error or other.first_error

    def percentile(self, p: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1]


@dataclass
class Done:
    """What the server acknowledged, for `work_check`."""

    events: int = 0
    opens: int = 0
    clicks: int = 0
    added_emails: set[str] = field(default_factory=set)
    updated_ids: set[int] = field(default_factory=set)
    import_sessions: list[str] = field(default_factory=list)
    bulk_rows: int = 0

    def add(self, other: "Done") -> None:
        self.events += other.events
        self.opens += other.opens
        self.clicks += other.clicks
        self.added_emails |= other.added_emails
        self.updated_ids |= other.updated_ids
        self.import_sessions += other.import_sessions
        self.bulk_rows += other.bulk_rows


@dataclass
class LoadResult:
    seconds: float
    users: int
    kinds: dict[str, KindStats]
    done: Done

    @property
    def total(self) -> KindStats:
        total = KindStats()
        for stats in self.kinds.values():
            total.add(stats)
        return total


class _User:
    """One user thread: a keep-alive connection and its own tally."""

    def __init__(self, port: int, targets: Targets, number: int, tag: str):
        self.port = port
        self.targets = targets
        self.number = number
        self.tag = tag
        self.sent = 0
        self.conn: http.client.HTTPConnection | None = None
        self.kinds = {kind: KindStats() for kind, _ in MIX}
        self.done = Done()

    def request(self, method: str, path: str, body: bytes | None, headers: dict) -> tuple:
        """(status, body). A keep-alive connection the server has closed meanwhile is opened
        again once, as any HTTP client does."""
        for attempt in (1, 2):
            fresh = self.conn is None
            if fresh:
                self.conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=CLIENT_TIMEOUT)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if fresh or attempt == 2:
                    raise
                continue
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return response.status, data
        raise AssertionError("unreachable")

    def next_request(self, kind: str) -> tuple[str, str, bytes | None, dict, Callable]:
        """(method, path, body, headers, on_success) for one request of `kind`."""
        t = self.targets
        n = self.sent
        name = f"{self.tag}-{self.number}-{n}"
        person = n % len(t.emails)
        api = {"Content-Type": "application/json"}
        page = {"Cookie": f"sessionid={t.session_cookie}", "Accept": "text/html"}

        def nothing(data: bytes) -> None:
            pass

        if kind in ("event v1", "event v2"):
            version = kind[-1]
            params = (
                [{"name": "sku", "value": f"SKU-{n % 50}"}, {"name": "price", "value": "12.50"}]
                if version == "1"
                else {"cart": {"items": [{"sku": f"SKU-{n % 50}", "qty": n % 3 + 1}]}}
            )
            body = {
                "eventTypeKey": EVENT_TYPES[int(version) - 1],
                "keyValue": t.emails[person],
                "params": params,
            }

            def stored(data: bytes) -> None:
                self.done.events += 1

            headers = {**api, "Authorization": t.events_auth}
            return "POST", f"/api/v{version}/event", json.dumps(body).encode(), headers, stored
        if kind == "contact add":
            # Of three adds, one is new, one an email this user added before (an update by
            # email) and one an address every user and the bulk imports also send (two
            # clients upserting one new address at once must still make one contact).
            email = (
                f"add-{self.tag}-{self.number}-{n}@{LOAD_DOMAIN}",
                f"add-{self.tag}-{self.number}-{n - 1}@{LOAD_DOMAIN}",
                _shared_email(self.tag, n),
            )[n % 3]
            body = {"channels": [{"type": "email", "value": email}], "firstName": "Added"}

            def added(data: bytes) -> None:
                self.done.added_emails.add(email)

            headers = {**api, "Authorization": t.contacts_auth}
            return "POST", "/api/v1/contact", json.dumps(body).encode(), headers, added
        if kind == "contact update":
            contact_id = t.contact_ids[person]
            body = {"lastName": f"Updated {name}"[:40], "address": {"town": "Kyiv"}}

            def updated(data: bytes) -> None:
                self.done.updated_ids.add(contact_id)

            headers = {**api, "Authorization": t.contacts_auth}
            path = f"/api/v1/contact/{contact_id}"
            return "PUT", path, json.dumps(body).encode(), headers, updated
        if kind == "contacts bulk":
            # About half the rows are new, a few are the addresses every client sends, the
            # rest earlier readers, in an order of their own: creates and updates.
            emails = [f"bulk-{name}-{i}@{LOAD_DOMAIN}" for i in range(BULK_ROWS // 2 - 3)]
            emails += [_shared_email(self.tag, n + i) for i in range(3)]
            emails += t.emails[person:] + t.emails[:person]
            rows = [
                {"channels": [{"type": "email", "value": email}], "firstName": "Bulk"}
                for email in emails[:BULK_ROWS]
            ]
            body = {"contacts": rows, "dedupeOn": "email", "groupNames": ["Load imports"]}

            def accepted(data: bytes) -> None:
                self.done.import_sessions.append(json.loads(data)["asyncSessionId"])
                self.done.bulk_rows += len(rows)

            headers = {**api, "Authorization": t.contacts_auth}
            return "POST", "/api/v1/contacts", json.dumps(body).encode(), headers, accepted
        if kind == "open pixel":

            def opened(data: bytes) -> None:
                self.done.opens += 1

            return "GET", t.open_paths[n % len(t.open_paths)], None, {}, opened
        if kind == "click redirect":

            def clicked(data: bytes) -> None:
                self.done.clicks += 1

            return "GET", t.click_paths[n % len(t.click_paths)], None, {}, clicked
        path = {
            "dashboard": "/",
            "contacts list": "/contacts/",
            "campaign report": f"/campaigns/{t.campaign_id}/report/",
        }[kind]
        return "GET", path, None, page, nothing

    def run_until(self, end: float) -> None:
        position = self.number * 7 % len(ROUND)  # users start at different points of the mix
        while time.monotonic() < end:
            kind = ROUND[position % len(ROUND)]
            position += 1
            self.sent += 1
            method, path, body, headers, on_success = self.next_request(kind)
            stats = self.kinds[kind]
            started = time.monotonic()
            try:
                status, data = self.request(method, path, body, headers)
            except OSError as exc:
                status, data = 0, repr(exc).encode()
            took = time.monotonic() - started
            if status == EXPECTED_STATUS.get(kind, 200):
                stats.requests += 1
                stats.latencies.append(took)
                on_success(data)
            else:
                stats.errors += 1
                stats.server_errors += status >= 500
                stats.first_error = (
                    stats.first_error or f"{method} {path} → {status}: {data[:300]!r}"
                )
        if self.conn is not None:
            self.conn.close()


def _shared_email(tag: str, n: int) -> str:
    """One of a few new addresses that every user sends during the same half second."""
    slot = int(time.time() * 2)
    return f"shared-{tag}-{slot}-{n % SHARED_EMAILS}@{LOAD_DOMAIN}"


def load_run(port: int, targets: Targets, *, seconds: float, users: int, tag: str) -> LoadResult:
    """`users` threads going round the mix for `seconds`; their figures merged."""
    threads_users = [_User(port, targets, number, tag) for number in range(users)]
    end = time.monotonic() + seconds
    threads = [threading.Thread(target=user.run_until, args=(end,)) for user in threads_users]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = LoadResult(time.monotonic() - started, users, {k: KindStats() for k, _ in MIX}, Done())
    for user in threads_users:
        for kind, stats in user.kinds.items():
            result.kinds[kind].add(stats)
        result.done.add(user.done)
    return result


def noop_run(port: int, *, seconds: float, users: int, path: str = "/bench/noop") -> KindStats:
    """The same closed loop on one do-nothing endpoint: the floor of the web stack."""
    stats = [KindStats() for _ in range(users)]

    def loop(mine: KindStats, end: float) -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=CLIENT_TIMEOUT)
        while time.monotonic() < end:
            started = time.monotonic()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection(LOOPBACK, port, timeout=CLIENT_TIMEOUT)
                status = 0
            if status == 200:
                mine.requests += 1
                mine.latencies.append(time.monotonic() - started)
            else:
                mine.errors += 1
                mine.server_errors += status >= 500
        conn.close()

    end = time.monotonic() + seconds
    threads = [threading.Thread(target=loop, args=(mine, end)) for mine in stats]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = KindStats()
    for mine in stats:
        total.add(mine)
    return total


# --- Was the work done? --------------------------------------------------------------------


def work_check(done: Done, targets: Targets, *, timeout: float = 120) -> list[str]:
    """Wait (up to `timeout`) until what the answers acknowledged is done; return what is
    still missing (empty: all done)."""
    deadline = time.monotonic() + timeout
    while True:
        problems = _work_missing(done, targets)
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.5)


def _work_missing(done: Done, targets: Targets) -> list[str]:
    from django.db.models import Count

    from campaigns.models import DeliveryEvent
    from contacts.models import Contact, ImportJob
    from marketing.models import Event

    problems = []
    events = Event.objects.filter(event_type__key__in=EVENT_TYPES)
    stored, unprocessed = events.count(), events.filter(processed_at__isnull=True).count()
    if stored != done.events or unprocessed:
        problems.append(
            f"events: {done.events} acknowledged, {stored} stored, {unprocessed} unprocessed"
        )
    jobs = ImportJob.objects.filter(session_id__in=done.import_sessions)
    finished = jobs.filter(status="FINISHED", failed_count=0).count()
    rows = sum(job.created_count + job.updated_count for job in jobs)
    if finished != len(done.import_sessions) or rows != done.bulk_rows:
        problems.append(
            f"bulk imports: {len(done.import_sessions)} accepted, {finished} finished without "
            f"failures, {rows} of {done.bulk_rows} rows created or updated"
        )
    twice = (
        Contact.objects.alive()
        .filter(email__endswith=f"@{LOAD_DOMAIN}")
        .values("email")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    if twice:
        problems.append(f"{twice} addresses belong to more than one contact")
    added = Contact.objects.filter(email__in=done.added_emails).values("email").distinct().count()
    if added != len(done.added_emails):
        problems.append(f"contact add: {len(done.added_emails)} acknowledged, {added} stored")
    updated = Contact.objects.filter(
        pk__in=done.updated_ids, last_name__startswith="Updated", town="Kyiv"
    ).count()
    if updated != len(done.updated_ids):
        problems.append(f"contact update: {len(done.updated_ids)} acknowledged, {updated} show it")
    hits = DeliveryEvent.objects.filter(delivery__run__campaign_id=targets.campaign_id)
    opens = hits.filter(status="opened").count()
    clicks = hits.filter(status="clicked").count()
    if (opens, clicks) != (done.opens, done.clicks):
        problems.append(
            f"ledger: {done.opens} opens and {done.clicks} clicks answered, "
            f"{opens} and {clicks} recorded"
        )
    return problems


# --- Figures -------------------------------------------------------------------------------


class Phases:
    """Wall time of each phase of a run, to see where a run's time goes."""

    def __init__(self) -> None:
        self.laps: list[tuple[str, float]] = []
        self.last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps.append((name, now - self.last))
        self.last = now

    def __str__(self) -> str:
        return "phases: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.laps)


def stats_line(label: str, stats: KindStats, seconds: float) -> str:
    rate = stats.requests / seconds if seconds else 0.0
    line = (
        f"{label:<16} {stats.requests:7d} req {rate:8.1f} req/s   "
        f"p50 {stats.percentile(50) * 1000:7.1f} ms   p99 {stats.percentile(99) * 1000:7.1f} ms   "
        f"{stats.errors} errors ({stats.server_errors} 5xx)"
    )
    if stats.first_error:
        line += f"\n{'':<16} first error: {stats.first_error}"
    return line


def load_report(result: LoadResult) -> str:
    lines = [
        f"{result.users} users, keep-alive, {result.seconds:.1f} s; "
        f"{os.cpu_count()} CPUs shared by clients, server, worker and database"
    ]
    lines += [stats_line(kind, stats, result.seconds) for kind, stats in result.kinds.items()]
    lines.append(stats_line("total", result.total, result.seconds))
    return "\n".join(lines)


def memory_report(start: dict, end: dict) -> str:
    lines = ["RSS after warm-up → at the end:"]
    for pid, (name, before) in sorted(start.items(), key=lambda item: item[1][0]):
        after = end.get(pid, (name, 0))[1]
        lines.append(
            f"  {name:<16} pid {pid:<7} {before / 1024:7.1f} MB → {after / 1024:7.1f} MB "
            f"({(after - before) / 1024:+.1f} MB)"
        )
    return "\n".join(lines)


def memory_growth_kb(start: dict, end: dict) -> dict[int, int]:
    """Growth per process present at both samples, in kB."""
    return {pid: end[pid][1] - before for pid, (_, before) in start.items() if pid in end}
