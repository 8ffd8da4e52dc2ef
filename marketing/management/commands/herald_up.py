"""Run Herald: migrate, load demo data, print a login, then web + worker + beat together.

This process owns the embedded PostgreSQL (when DATABASE_URL is unset): the server stops when
it exits. Children get DATABASE_URL and CELERY_BROKER_URL explicitly so they only connect.
Ctrl-C (or SIGTERM) stops everything; a child that dies stops the rest.
"""

import os
import signal
import subprocess
import sys
import time
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

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


class Command(BaseCommand):
    help = "Migrate, load demo data, and run web, Celery worker and celery beat until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("HERALD_BIND", "127.0.0.1:8000"))
        parser.add_argument("--no-demo", action="store_true", help="Do not load demo data.")
        parser.add_argument("--web-workers", type=int, default=2)

    def handle(self, *args, bind: str, no_demo: bool, web_workers: int, **options):
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
        children = {
            name: subprocess.Popen(cmd, env=env, cwd=settings.BASE_DIR)
            for name, cmd in commands.items()
        }

        url = f"http://{bind}/"
        self.stdout.write(self.style.SUCCESS(f"\nHerald is running at {url}"))
        if password:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Log in as: admin / {password}  (shown once; change it in Settings)"
                )
            )
        else:
            self.stdout.write(
                "Log in with your admin account (reset: python manage.py changepassword admin)."
            )
        self.stdout.write(
            f"Outgoing mail: {settings.EMAIL_BACKEND} {getattr(settings, 'EMAIL_FILE_PATH', '')}"
        )
        self.stdout.write("Press Ctrl-C to stop.\n")
        self.stdout.flush()

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
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
