"""A real Celery worker process for tests, on the configured broker and the test database."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection


def test_database_url() -> str:
    db = connection.settings_dict
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{quote(db['USER'], safe='')}@{host}{port}/{db['NAME']}"


class CeleryWorker:
    """`env` goes over this process's environment; `queue` defaults to this process's."""

    def __init__(
        self, concurrency: int = 2, env: dict[str, str] | None = None, queue: str | None = None
    ):
        self.queue = queue or settings.CELERY_TASK_DEFAULT_QUEUE
        self.concurrency = concurrency
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)  # noqa: SIM115 (lives as long as the worker)

    def __enter__(self) -> "CeleryWorker":
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "HERALD_QUEUE": self.queue,
            **self.extra_env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(self.concurrency),
                "--pool",
                "prefork",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "-Q",
                self.queue,
            ],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Celery worker exited early:\n{self.output()}")
            if " ready." in self.output():
                return
            time.sleep(0.2)
        raise RuntimeError(f"Celery worker not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        Path(self.log.name).unlink(missing_ok=True)
