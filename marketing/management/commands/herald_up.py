"""Run Herald: migrate, load demo data, print a login, then web + worker + beat together.

This process owns the embedded PostgreSQL (when DATABASE_URL is unset): the server stops when
it exits. Children get DATABASE_URL and CELERY_BROKER_URL explicitly so they only connect.
Ctrl-C (or SIGTERM) stops everything; a child that dies stops the rest.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from marketing.demo import ensure_admin, load_demo


def database_url(name: str | None = None) -> str:
    """The URL of the default database (or of database `name` on the same server).

    Child processes get it explicitly: with the embedded server they must connect to the
    running one, never start their own.
    """
    db = settings.DATABASES["default"]
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    auth = quote(db["USER"], safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    # Connection options from the original URL (sslmode, options, ...) must survive the trip.
    options = urlencode({k: v for k, v in (db.get("OPTIONS") or {}).items() if isinstance(v, str)})
    query = f"?{options}" if options else ""
    return f"postgres://{auth}@{host}{port}/{quote(name or db['NAME'], safe='')}{query}"


def tcp_address(bind: str) -> tuple[str, int] | None:
    """(host, port) of a gunicorn bind such as 127.0.0.1:8000 or [::1]:8000; None otherwise."""
    host, sep, port = bind.rpartition(":")
    if bind.startswith(("unix:", "fd://")) or not sep or not port.isdigit():
        return None
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 (gunicorn's own default)


def public_host(host: str) -> tuple[str, str]:
    """(the host name links should use for a bind's host, why). A wildcard bind (0.0.0.0,
    ::, or none) listens on every interface: the machine's own name is what other machines
    reach it by, unless that name does not resolve, then loopback."""
    if host not in ("0.0.0.0", "::", ""):  # noqa: S104
        return (f"[{host}]" if ":" in host else host), "the address given to --bind"
    name = socket.getfqdn()
    try:
        socket.getaddrinfo(name, None)
    except OSError:
        return "127.0.0.1", "the bind listens everywhere; this machine's name does not resolve"
    if not name or name == "localhost":
        return "127.0.0.1", "the bind listens everywhere; this machine has no name of its own"
    return name, "the bind listens everywhere; this is the machine's host name"


def child_environment(environ: Mapping[str, str], bind: str) -> tuple[dict[str, str], str]:
    """The environment of the web server, the worker and beat, and a line for the start-up
    print saying where links in emails point.

    Links in emails (open pixel, click redirect, unsubscribe, confirmation, hosted images)
    are built from HERALD_BASE_URL in every process. When it is not set they must follow the
    address Herald was started on, so `--bind 127.0.0.1:8100` gives links on port 8100; an
    explicit HERALD_BASE_URL (a public https address behind a proxy) always wins. The host
    links use is added to ALLOWED_HOSTS when that is not set either, or the pages would
    answer 400 on the address the links point at.
    """
    env = dict(environ)
    env["HERALD_BIND"] = bind
    if environ.get("HERALD_BASE_URL"):
        return env, f"Links in emails: {environ['HERALD_BASE_URL']} (HERALD_BASE_URL)"
    address = tcp_address(bind)
    if address is None:
        # A unix socket behind a proxy: only the operator knows the public address.
        base = "http://127.0.0.1:8000"
        return env, (
            f"Links in emails: {base} (bind {bind} is not a TCP address; set HERALD_BASE_URL "
            "to the address people reach Herald at)"
        )
    host, port = address
    name, why = public_host(host)
    base = f"http://{name}:{port}"
    env["HERALD_BASE_URL"] = base
    if not environ.get("ALLOWED_HOSTS"):
        hosts = ["127.0.0.1", "localhost", "[::1]", "testserver"]
        env["ALLOWED_HOSTS"] = ",".join(dict.fromkeys([*hosts, name]))
    return env, f"Links in emails: {base} ({why}; set HERALD_BASE_URL to change)"


def address_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def accepts_connections(host: str, port: int) -> bool:
    # A wildcard bind answers on loopback.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def process_commands(python: str, bind: str, web_workers: int) -> dict[str, list[str]]:
    """The web, worker and beat commands: the Procfile and the systemd units in deploy/ run
    the same ones (tests/scale/test_deploy.py compares them)."""
    return {
        "web": [
            python,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            bind,
            "--workers",
            str(web_workers),
            "--threads",
            "4",
            "--access-logfile",
            "-",
        ],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
        ],
        "beat": [
            python,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(settings.VAR_DIR / "celerybeat-schedule"),
        ],
    }


class Command(BaseCommand):
    help = "Migrate, load demo data, and run web, Celery worker and celery beat until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("HERALD_BIND", "127.0.0.1:8000"))
        parser.add_argument("--no-demo", action="store_true", help="Do not load demo data.")
        parser.add_argument("--web-workers", type=int, default=2)

    def handle(self, *args, bind: str, no_demo: bool, web_workers: int, **options):
        address = tcp_address(bind)
        # Checked before anything else: a busy port found by gunicorn only after the admin
        # password was printed would lose that password in the error output.
        if address and address_in_use(*address):
            host, port = address
            other = f"[{host}]:{port + 1}" if ":" in host else f"{host}:{port + 1}"
            raise CommandError(
                f"{bind} is already in use (another Herald?). Stop that, or choose another "
                f"address: bin/run --bind {other} (or set HERALD_BIND)."
            )
        call_command("migrate", interactive=False, verbosity=0)
        if not no_demo:
            load_demo()
        password = ensure_admin()
        for folder in (settings.OUTBOX_DIR,):
            folder.mkdir(parents=True, exist_ok=True)

        env, links = child_environment(os.environ, bind)
        env["DATABASE_URL"] = database_url()
        env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
        commands = process_commands(sys.executable, bind, web_workers)
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        # Before the children start, so an early Ctrl-C still stops them all.
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        children = {
            name: subprocess.Popen(cmd, env=env, cwd=settings.BASE_DIR)
            for name, cmd in commands.items()
        }
        # Say "running" only once the web server answers, so the URL printed works.
        deadline = time.monotonic() + 60
        while (
            address
            and not stopping
            and children["web"].poll() is None
            and time.monotonic() < deadline
            and not accepts_connections(*address)
        ):
            time.sleep(0.2)

        web_up = not stopping and children["web"].poll() is None
        if web_up:
            self.stdout.write(self.style.SUCCESS(f"\nHerald is running at http://{bind}/"))
            self.stdout.write(links)
        if password:
            # Printed even when the web server failed: it is generated only once.
            self.stdout.write(
                self.style.SUCCESS(
                    f"Log in as: admin / {password}  (shown once; change it in Django "
                    "admin: /admin/password_change/)"
                )
            )
        elif web_up:
            self.stdout.write(
                "Log in with your admin account "
                "(reset: .venv/bin/python manage.py changepassword admin)."
            )
        if web_up:
            self.stdout.write(
                f"Outgoing mail: {settings.EMAIL_BACKEND} "
                f"{getattr(settings, 'EMAIL_FILE_PATH', '')}"
            )
            self.stdout.write("Press Ctrl-C to stop.\n")
        self.stdout.flush()

        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(
                        f"{name} exited with code {child.returncode}; stopping Herald."
                    )
                    exit_code = child.returncode or 1
                    stopping = True
            time.sleep(0.5)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        self.stdout.write("Herald stopped.")
        if exit_code:
            sys.exit(exit_code)
