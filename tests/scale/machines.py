"""Worker "machines" for the scale-out tests: Celery worker processes that share nothing with
the test process (the web side) but what separate machines would, the database and the
broker. Each has its own working directory, VAR dir (HERALD_VAR_DIR) and host name (celery
-n name@host, and HOSTNAME), so a file one of them reads from local disk that another wrote
makes its task fail.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from django.conf import settings

from tests.support.worker import test_database_url


class WorkerMachine:
    """`celery worker` as machine `host`; `env` goes over the environment it inherits."""

    def __init__(
        self,
        host: str,
        *,
        concurrency: int = 2,
        queue: str | None = None,
        broker_url: str | None = None,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.concurrency = concurrency
        self.queue = queue or settings.CELERY_TASK_DEFAULT_QUEUE
        self.broker_url = broker_url or settings.CELERY_BROKER_URL
        self.database_url = database_url
        self.extra_env = dict(env or {})
        self.root = Path(tempfile.mkdtemp(prefix=f"herald-machine-{host}-"))
        self.var_dir = self.root / "var"
        self.log_path = self.root / "worker.log"
        self.process: subprocess.Popen | None = None

    def environment(self) -> dict[str, str]:
        # Another machine is no test process: under pytest-xdist the settings would add the
        # process's suffix to HERALD_QUEUE, and the launch and the workers' own follow-up
        # tasks would go to a queue no machine consumes.
        inherited = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
        return {
            **inherited,
            # The project is importable, but nothing is read relative to the checkout.
            "PYTHONPATH": str(settings.BASE_DIR),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": self.database_url or test_database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            # A filesystem broker (the default without CELERY_BROKER_URL) is one folder that
            # all must share; any other broker ignores it.
            "HERALD_BROKER_DIR": str(Path(settings.BROKER_DIR).resolve()),
            "HERALD_QUEUE": self.queue,
            "HERALD_VAR_DIR": str(self.var_dir),
            # Machines of one deployment share the secret key (the environment's, not a file).
            "SECRET_KEY": settings.SECRET_KEY,
            "HOSTNAME": self.host,
            **self.extra_env,
        }

    def __enter__(self) -> "WorkerMachine":
        """Starts the worker without waiting for it: machines_ready waits for several,
        which boot meanwhile in parallel."""
        self.start()
        return self

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "config", "worker",
                    "-n", f"worker@{self.host}", "--loglevel", "INFO",
                    "--concurrency", str(self.concurrency), "--pool", "prefork",
                    "--without-heartbeat", "--without-mingle", "--without-gossip",
                    "-Q", self.queue,
                ],
                env=self.environment(),
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker@{self.host} did not start:\n{self.output()}")
            time.sleep(0.2)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the machine's worker and its pool at once, as a lost machine would."""
        main = psutil.Process(self.process.pid)
        for process in [*main.children(recursive=True), main]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        self.process.wait()

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def machines_ready(*machines: WorkerMachine) -> None:
    """Started together, waited for together: the machines boot in parallel."""
    for machine in machines:
        machine.wait_ready()
