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

        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        }
        python = sys.executable
        commands = {
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
