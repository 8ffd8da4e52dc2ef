"""Campaign send: N personalised, tracked emails through Herald's delivery engine into Postfix's
smtp-sink, beside raw stdlib email.mime + smtplib and django-post-office, in the same run.

Herald: contacts seeded in SQL, a published template (greeting, a custom field, a link that
is click-tracked, an open pixel, List-Unsubscribe headers), a blast campaign; the clock runs
from `campaign_launch_now` (materialising the ledger) until no delivery is queued, with a
real Celery worker (prefork, SENDER_TASKS processes) sending over SENDER_TASKS connections.
Peak worker memory (RSS of the worker's processes) is sampled while it sends; Celery tasks
per message come from the worker's log.

Raw floor: the same number of personalised multipart messages built with email.mime and
sent with smtplib from SENDER_TASKS processes, one connection each; no database.

django-post-office: `send_many` with a Django template and a per-recipient context, then
`send_queued_mail_until_done` with SENDER_TASKS processes of one thread (the same connection
count); no tracking, no per-recipient ledger beyond its Email rows. It comes with the test
extra (pyproject.toml), is added to INSTALLED_APPS of a temporary settings module only, and
migrated into the benchmark's own database.

Needs PostgreSQL (DATABASE_URL or the embedded server) and a Redis broker (CELERY_BROKER_URL,
default redis://127.0.0.1:6379/15). smtp-sink comes from Debian's postfix package
(`apt-get download postfix && dpkg -x`, done here into var/bench-postfix when missing). The
database herald_bench_campaign is created and dropped after.
"""

import argparse
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.benchmarks import support

BASE_DIR = Path(__file__).resolve().parents[2]
DATABASE_NAME = "herald_bench_campaign"
QUEUE = "q_bench_campaign"
SENDER = "news@shop.example"
CITIES = ["Kyiv", "Lviv", "London", "Berlin", "Warsaw", "Odesa", "Paris"]

HTML = (
    "<h1>Hello $!contact.firstName,</h1>"
    "<p>Spring prices in $!contact.fields.city are down this week.</p>"
    '<p><a href="https://shop.example/spring?utm_source=herald">See the sale</a></p>'
)
POST_OFFICE_HTML = (
    "<h1>Hello {{ first_name }},</h1>"
    "<p>Spring prices in {{ city }} are down this week.</p>"
    '<p><a href="https://shop.example/spring?utm_source=herald">See the sale</a></p>'
)
RAW_HTML = (
    "<h1>Hello {first_name},</h1>"
    "<p>Spring prices in {city} are down this week.</p>"
    '<p><a href="https://shop.example/spring?utm_source=herald">See the sale</a></p>'
)
TEXT = "Hello {first_name},\n\nSpring prices in {city} are down this week.\n"


# --- infrastructure ------------------------------------------------------------------------


def smtp_sink_binary() -> Path:
    """Postfix's smtp-sink: on PATH, else extracted from Debian's package (no MTA installed)."""
    found = shutil.which("smtp-sink")
    if found:
        return Path(found)
    root = BASE_DIR / "var" / "bench-postfix"
    binary = root / "usr" / "sbin" / "smtp-sink"
    if not binary.exists():
        download = Path(tempfile.mkdtemp(prefix="bench-postfix-"))
        subprocess.run(["apt-get", "download", "postfix"], cwd=download, check=True)
        package = next(download.glob("postfix_*.deb"))
        root.mkdir(parents=True, exist_ok=True)  # dpkg -x creates one level only
        subprocess.run(["dpkg", "-x", str(package), str(root)], check=True)
        shutil.rmtree(download, ignore_errors=True)
    return binary


class SMTPSinkServer:
    """smtp-sink on a free loopback port; accepts and discards everything, fast (C)."""

    def __init__(self) -> None:
        self.port = support.free_port()
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "SMTPSinkServer":
        binary = smtp_sink_binary()
        lib = binary.parents[1] / "lib" / "postfix"
        env = {**os.environ}
        if lib.exists():
            env["LD_LIBRARY_PATH"] = str(lib)
        command = [str(binary)]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # it refuses to run as root otherwise
        command += [f"127.0.0.1:{self.port}", "1000"]
        self.process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("smtp-sink did not start")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _settings_module(folder: Path, *, post_office: bool = True) -> str:
    """A temporary settings module: Herald's settings plus django-post-office (left out with
    --skip-post-office, so the benchmark runs where it is not installed)."""
    if not post_office:
        (folder / "bench_campaign_settings.py").write_text(
            "from config.settings import *  # noqa\n"
        )
        sys.path.insert(0, str(folder))
        return "bench_campaign_settings"
    (folder / "bench_campaign_settings.py").write_text(
        "from config.settings import *  # noqa\n"
        'INSTALLED_APPS = [*INSTALLED_APPS, "post_office"]  # noqa: F405\n'
        "POST_OFFICE = {\n"
        '    "BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"},\n'
        '    "THREADS_PER_PROCESS": 1,\n'
        '    "BATCH_SIZE": 1000,\n'
        '    "LOG_LEVEL": 0,\n'
        "}\n"
    )
    sys.path.insert(0, str(folder))
    return "bench_campaign_settings"


# --- Herald --------------------------------------------------------------------------------


def populate(count: int) -> tuple:
    from django.db import connection

    from campaigns.models import Campaign
    from contacts.models import CustomField
    from templates.services import template_create, template_publish

    city = CustomField.objects.create(name="City", key="city", group_key="PERSONAL", type="text")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO contacts_contact (
                first_name, last_name, email, phone, extra_channels, region, town, address,
                postcode, language_code, time_zone, tags, fields, confirmed, source,
                created_at, updated_at)
            SELECT 'Person' || i, 'Bench', 'person' || i || '@example.com', '', '[]', '', '',
                   '', '', 'en', '', ARRAY['vip'],
                   jsonb_build_object(%s::text, (%s::text[])[1 + i %% 7]), true, 'api',
                   now(), now()
              FROM generate_series(1, %s) AS i
            """,
            [str(city.pk), CITIES, count],
        )
        cursor.execute("VACUUM ANALYZE contacts_contact")
    template = template_create(
        name="Spring sale",
        subject="Spring sale for $!contact.firstName",
        from_name="Shop",
        from_email=SENDER,
        html=HTML,
    )
    template_publish(template=template)
    campaign = Campaign.objects.create(
        name="Spring sale",
        channels=["email"],
        audience_filter={"tags": {"$in": ["vip"]}},
        template=template,
    )
    return campaign


def _rss_sampler(pid: int, peaks: dict, stop: threading.Event) -> None:
    import psutil

    main = psutil.Process(pid)
    while not stop.is_set():
        try:
            children = [p.memory_info().rss for p in main.children(recursive=True)]
            sizes = [main.memory_info().rss, *children]
        except psutil.Error:
            children = sizes = []
        if children:
            # The pool processes do the sending: their RSS is what must stay flat.
            peaks["child"] = max(peaks.get("child", 0), max(children))
            peaks["process"] = max(peaks.get("process", 0), max(sizes))
            peaks["total"] = max(peaks.get("total", 0), sum(sizes))
        stop.wait(0.2)


def sender_worker(database_url: str, sink: SMTPSinkServer, log: Path, queue: str):
    """A Celery worker with as many processes as the run has senders, on `queue`, sending
    into `sink`; returned once it is ready (its output goes to `log`)."""
    from campaigns.delivery import policy

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
        "DEBUG": "0",
    }
    with log.open("wb") as handle:
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "--loglevel", "INFO", "--pool", "prefork",
                "--concurrency", str(policy.SENDER_TASKS), "-Q", queue,
                "--without-heartbeat", "--without-mingle", "--without-gossip",
            ],
            env=env, cwd=BASE_DIR, stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while " ready." not in log.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError("worker did not start:\n" + log.read_text(errors="replace"))
        time.sleep(0.2)
    return worker


def herald_pass(count: int, sink: SMTPSinkServer, database_url: str) -> dict:

    from campaigns.lifecycle import campaign_launch_now
    from campaigns.models import CampaignRun, Delivery

    campaign = populate(count)
    log = Path(tempfile.mkstemp(prefix="bench-campaign-worker-", suffix=".log")[1])
    worker = sender_worker(database_url, sink, log, QUEUE)
    peaks: dict = {}
    stop = threading.Event()
    try:
        sampler = threading.Thread(target=_rss_sampler, args=(worker.pid, peaks, stop))
        sampler.start()
        idle_rss = None
        while idle_rss is None:
            time.sleep(0.5)
            idle_rss = peaks.get("child")

        began = time.perf_counter()
        run = campaign_launch_now(campaign=campaign)
        materialised = time.perf_counter() - began
        support.run_sent_wait(run.pk)
        elapsed = time.perf_counter() - began
        while CampaignRun.objects.get(pk=run.pk).status != "completed":
            if time.perf_counter() - began > elapsed + 60:
                break
            time.sleep(0.2)
        stop.set()
        sampler.join()
    finally:
        stop.set()
        worker.terminate()
        worker.wait(timeout=60)
    text = log.read_text(errors="replace")
    log.unlink(missing_ok=True)
    sent = Delivery.objects.filter(run_id=run.pk, status="sent").count()
    tasks = sum(
        1 for line in text.splitlines() if "Task campaigns.run_send[" in line and "received" in line
    )
    return {
        "seconds": elapsed,
        "materialise": materialised,
        "sent": sent,
        "reach": run.reach,
        "rate": sent / elapsed,
        "tasks": tasks,
        "rss_idle": idle_rss,
        "rss_child": peaks.get("child", 0),
        "rss_process": peaks.get("process", 0),
        "rss_total": peaks.get("total", 0),
        "status": CampaignRun.objects.get(pk=run.pk).status,
    }


# --- raw stdlib floor ----------------------------------------------------------------------


def _raw_worker(port: int, first: int, last: int) -> None:
    import smtplib
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText
    from email.utils import formataddr, formatdate, make_msgid

    smtp = smtplib.SMTP("127.0.0.1", port)
    for i in range(first, last):
        values = {"first_name": f"Person{i}", "city": CITIES[i % 7]}
        to = f"person{i}@example.com"
        message = MIMEMultipart("alternative")
        message["Subject"] = f"Spring sale for Person{i}"
        message["From"] = formataddr(("Shop", SENDER))
        message["To"] = to
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain="shop.example")
        message.attach(MIMEText(TEXT.format(**values), "plain", "utf-8"))
        message.attach(MIMEText(RAW_HTML.format(**values), "html", "utf-8"))
        smtp.sendmail(SENDER, [to], message.as_bytes())
    smtp.quit()


def raw_pass(count: int, sink: SMTPSinkServer, connections: int) -> dict:
    step = -(-count // connections)
    context = multiprocessing.get_context("fork")
    began = time.perf_counter()
    workers = [
        context.Process(target=_raw_worker, args=(sink.port, n * step, min(count, (n + 1) * step)))
        for n in range(connections)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    return {"seconds": elapsed, "rate": count / elapsed}


# --- django-post-office --------------------------------------------------------------------


def post_office_pass(count: int, connections: int) -> dict:
    from django.db import connection
    from post_office import mail
    from post_office.models import Email, EmailTemplate

    template = EmailTemplate.objects.create(
        name="spring",
        subject="Spring sale for {{ first_name }}",
        content="Hello {{ first_name }},\n\nSpring prices in {{ city }} are down this week.\n",
        html_content=POST_OFFICE_HTML,
    )
    began = time.perf_counter()
    chunk = 10_000
    for start in range(1, count + 1, chunk):
        mail.send_many(
            [
                {
                    "sender": f"Shop <{SENDER}>",
                    "recipients": [f"person{i}@example.com"],
                    "template": template,
                    "context": {"first_name": f"Person{i}", "city": CITIES[i % 7]},
                }
                for i in range(start, min(count + 1, start + chunk))
            ]
        )
    queued = time.perf_counter() - began
    connection.close()  # its worker processes fork from here
    mail.send_queued_mail_until_done(processes=connections)
    elapsed = time.perf_counter() - began
    sent = Email.objects.filter(status=0).count()  # STATUS.sent
    return {"seconds": elapsed, "queued": queued, "sent": sent, "rate": sent / elapsed}


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="bench campaign_send", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument("--skip-post-office", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_campaign_send", argv):
        return
    scratch = Path(tempfile.mkdtemp(prefix="herald-bench-campaign-"))
    try:
        with SMTPSinkServer() as sink:
            broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
            environ = {
                "CELERY_BROKER_URL": broker,
                "HERALD_QUEUE": QUEUE,
                "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
                "DEBUG": "0",
                "HERALD_VAR_DIR": str(scratch / "var"),
            }
            with support.scratch_database(
                DATABASE_NAME,
                keep=args.keep,
                settings_module=_settings_module(scratch, post_office=not args.skip_post_office),
                environ=environ,
            ) as database_url:
                _run(args, database_url, sink)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(args, database_url: str, sink: SMTPSinkServer) -> None:
    from campaigns.delivery import policy

    count = args.recipients
    connections = policy.SENDER_TASKS
    print(
        f"{count:,} recipients, {connections} connections, smtp-sink on port {sink.port}, "
        f"database {DATABASE_NAME}, {os.cpu_count()} CPUs",
        flush=True,
    )

    herald = herald_pass(count, sink, database_url)
    mib = 1024 * 1024
    print(
        f"Herald:        {herald['sent']:,} sent of reach {herald['reach']:,} in "
        f"{herald['seconds']:.1f} s = {herald['rate']:,.0f} msg/s (launch → all sent; "
        f"materialise {herald['materialise']:.2f} s); run {herald['status']}",
        flush=True,
    )
    print(
        f"               worker RSS: pool process idle {herald['rss_idle'] / mib:.0f} MiB, peak "
        f"{herald['rss_child'] / mib:.0f} MiB; peak of any worker process "
        f"{herald['rss_process'] / mib:.0f} MiB, of all {herald['rss_total'] / mib:.0f}"
        f" MiB; Celery tasks {herald['tasks']} = {herald['tasks'] / max(count, 1):.5f} per message",
        flush=True,
    )
    if not args.skip_raw:
        raw = raw_pass(count, sink, connections)
        print(
            f"raw stdlib:    {count:,} in {raw['seconds']:.1f} s = {raw['rate']:,.0f} msg/s → "
            f"Herald/raw = {herald['rate'] / raw['rate']:.2f} (target ≥ 0.8)",
            flush=True,
        )
    if not args.skip_post_office:
        office = post_office_pass(count, connections)
        print(
            f"post-office:   {office['sent']:,} sent in {office['seconds']:.1f} s "
            f"(send_many {office['queued']:.1f} s) = {office['rate']:,.0f} msg/s → "
            f"Herald/post-office = {herald['rate'] / office['rate']:.2f} (target ≥ 1.25)",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
