"""Helpers for the campaign lifecycle tests: objects, and a real `celery beat` process."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings

from contacts.models import ChannelType, SegmentKind, SegmentMembership
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory, SegmentFactory
from tests.support.worker import test_database_url

CAMPAIGNS = "/api/crm/marketing/campaigns"


def email_template(name: str = "Spring launch", *, publish: bool = True):
    template = template_create(
        name=name,
        subject="Spring is here, $!contact.firstName",
        from_name="Shop",
        from_email="news@shop.example",
        html="<p>Hello $!contact.firstName, spring is here.</p>",
    )
    if publish:
        template_publish(template=template)
    return template


def sms_template(name: str = "Spring SMS"):
    template = template_create(name=name, channel=ChannelType.SMS, sms_text="Spring sale!")
    template_publish(template=template)
    return template


def segment_with(count: int, name: str = "Spring prospects"):
    segment = SegmentFactory(name=name, kind=SegmentKind.STATIC)
    contacts = [ContactFactory() for _ in range(count)]
    SegmentMembership.objects.bulk_create(
        SegmentMembership(segment=segment, contact=contact) for contact in contacts
    )
    return segment, contacts


class CeleryBeat:
    """`celery beat` with the DatabaseScheduler on the test database, checking for due
    entries every second (so a campaign due in a few seconds starts within a second)."""

    def __init__(self, env: dict[str, str] | None = None, max_interval: int = 1):
        self.extra_env = dict(env or {})
        self.max_interval = max_interval
        self.process: subprocess.Popen | None = None
        self.workdir = tempfile.mkdtemp(prefix="celery-beat-")
        self.log_path = Path(self.workdir) / "beat.log"

    def __enter__(self) -> "CeleryBeat":
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "HERALD_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
            **self.extra_env,
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--max-interval",
                    str(self.max_interval),
                    "--pidfile",
                    str(Path(self.workdir) / "beat.pid"),
                ],
                env=env,
                cwd=settings.BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery beat exited early:\n{self.output()}")
            if "beat: Starting" in self.output():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"celery beat did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)
