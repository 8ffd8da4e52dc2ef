"""Shared machinery for benchmarks: a database of their own, gunicorn, a loopback load generator.

Importing this module sets nothing up: the load generator's client processes import it too
and must stay small (no Django).
"""

import contextlib
import http.client
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parents[2]
BENCH_DATABASE = "herald_bench"
BENCH_SETTINGS = "tests.benchmarks.settings"
SERVER_URL_VARIABLE = "HERALD_BENCH_SERVER_URL"
LOOPBACK = "127.0.0.1"


# --- Database ------------------------------------------------------------------------------


def server_url() -> str:
    """The PostgreSQL server Herald uses: DATABASE_URL, else the embedded one.

    With the embedded server this process joins it and keeps it running until it exits.
    Once a benchmark has pointed DATABASE_URL at its own database, the server it started
    from stays in SERVER_URL_VARIABLE, for the benchmarks run after it (and apart from it).
    """
    base = os.environ.get(SERVER_URL_VARIABLE) or os.environ.get("DATABASE_URL")
    if base:
        return base
    from config.embedded import embedded_database_url

    # Same rule as config.settings.VAR_DIR (not importable before Django is set up).
    var_dir = Path(os.environ.get("HERALD_VAR_DIR") or BASE_DIR / "var")
    return embedded_database_url(var_dir)


def _database_on(server: str, name: str) -> str:
    return urlsplit(server)._replace(path=f"/{name}").geturl()


def _database_exists(server: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return found.fetchone() is not None


def _ensure_database(server: str, name: str) -> None:
    import psycopg
    from psycopg import errors, sql

    if _database_exists(server, name):
        return
    # Another benchmark run may create it meanwhile.
    with (
        psycopg.connect(server, autocommit=True) as conn,
        contextlib.suppress(errors.DuplicateDatabase),
    ):
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop_database(server: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server, autocommit=True) as conn:
        # FORCE: workers of an interrupted run may still hold connections.
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _django_setup(server: str, name: str, settings_module: str, environ: dict[str, str]) -> str:
    """Point this process (and children that inherit its environment) at database `name` on
    `server`, set Django up, migrate; return the database's URL."""
    url = _database_on(server, name)
    os.environ[SERVER_URL_VARIABLE] = server
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    os.environ.update(environ)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    return url


def setup_django(name: str = BENCH_DATABASE) -> str:
    """Point this process at the benchmark database `name`, set Django up, migrate; return the URL.

    The database is created if missing and kept between runs: benchmark data never mixes
    with the dev data. Idempotent, so several benchmarks can run in one process.
    """
    from django.conf import settings

    if settings.configured:
        return os.environ["DATABASE_URL"]
    server = server_url()
    _ensure_database(server, name)
    return _django_setup(server, name, BENCH_SETTINGS, {})


@contextlib.contextmanager
def scratch_database(
    name: str,
    *,
    keep: bool,
    reuse: bool = False,
    settings_module: str = "config.settings",
    environ: dict[str, str] | None = None,
) -> Iterator[str]:
    """A database `name` of its own, with Django set up on it and migrated; yields its URL.

    It starts empty (dropped and created again) unless `reuse` and it exists already, and
    is dropped on the way out unless `keep`. `environ` is set before Django reads its
    settings. Call it once per process: Django cannot be pointed elsewhere afterwards (see
    `ran_apart`).
    """
    server = server_url()
    try:
        if not (reuse and _database_exists(server, name)):
            _drop_database(server, name)
            _ensure_database(server, name)
        yield _django_setup(server, name, settings_module, environ or {})
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not keep:
            _drop_database(server, name)


def run_sent_wait(run_id: int, poll: float = 0.25) -> None:
    """Return once no delivery of the campaign run is queued any more."""
    from django.db import connection

    while True:
        time.sleep(poll)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM campaigns_delivery "
                "WHERE run_id = %s AND status = 'queued')",
                [run_id],
            )
            if not cursor.fetchone()[0]:
                return


def empty_contacts() -> None:
    """Empty the benchmark database's contacts and import jobs, with fresh statistics."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE contacts_contact, contacts_importjob CASCADE")
        cursor.execute("VACUUM ANALYZE contacts_contact")


def ran_apart(module: str, argv: list[str]) -> bool:
    """Whether `module` had to run in a child process (`python -m module *argv`), and did.

    That is when another benchmark set Django up in this process on its own database:
    settings cannot be changed once configured.
    """
    from django.conf import settings

    if not settings.configured:
        return False
    subprocess.run([sys.executable, "-m", module, *argv], cwd=BASE_DIR, check=True)
    return True


def describe_database(url: str) -> str:
    parts = urlsplit(url)
    host = unquote(parts.netloc.rpartition("@")[2])
    where = f"the server at {host}" if host.startswith("/") else host  # a socket folder
    return f"{parts.path.lstrip('/')} on {where}"


# --- gunicorn ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class Gunicorn:
    """Herald under gunicorn on a free loopback port, stopped on exit.

    `threads` > 1 runs gunicorn's threaded workers (gthread), as `manage.py herald_up` (bin/run)
    does; 1 runs sync workers.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        threads: int = 1,
        ready_path: str = "/bench/noop",
        environ: dict[str, str] | None = None,
    ):
        self.environ = environ or {}
        self.workers = workers
        self.threads = threads
        self.ready_path = ready_path
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        handle, name = tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")
        os.close(handle)
        self.log = Path(name)

    def __enter__(self) -> "Gunicorn":
        from django.conf import settings

        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": BENCH_SETTINGS,
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            **self.environ,
        }
        with self.log.open("wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi",
                    "--bind",
                    f"{LOOPBACK}:{self.port}",
                    "--workers",
                    str(self.workers),
                    "--worker-class",
                    "gthread" if self.threads > 1 else "sync",
                    "--threads",
                    str(self.threads),
                    "--log-level",
                    "warning",
                    "--graceful-timeout",
                    "5",
                ],
                env=env,
                cwd=BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.output()}")
            try:
                if request(self.port, self.ready_path)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.unlink(missing_ok=True)


# --- Load generator ------------------------------------------------------------------------


def request(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One GET on a new connection, closed afterwards (no keep-alive)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        conn.request("GET", path, headers={"Connection": "close", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str = ""

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(p) - 1]

    def send_until(self, end: float, send) -> None:
        """Call `send()` (one request: (status, body)) again and again until time.monotonic()
        reaches `end`, counting answers 200 and timing them, and every other as an error."""
        while (now := time.monotonic()) < end:
            try:
                status, body = send()
            except OSError as exc:
                status, body = 0, repr(exc).encode()
            took = time.monotonic() - now
            if status == 200:
                self.requests += 1
                self.latencies.append(took)
            else:
                self.errors += 1
                self.first_error = self.first_error or f"{status}: {body[:200]!r}"


def _client(port: int, path: str, headers: dict, start_at: float, duration: float) -> LoadResult:
    result = LoadResult(seconds=duration)
    # CLOCK_MONOTONIC is system-wide on Linux, so all clients start together.
    time.sleep(max(0.0, start_at - time.monotonic()))
    result.send_until(time.monotonic() + duration, lambda: request(port, path, headers))
    return result


def load(
    port: int,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    clients: int = 4,
    duration: float = 5.0,
) -> LoadResult:
    """Successful requests per second with `clients` processes hammering `path` for `duration`.

    Processes, not threads: the clients must not share one GIL, or the generator would
    measure itself.
    """
    context = multiprocessing.get_context("spawn")
    # Spawning a Python process takes a while on a busy machine; start them all at once.
    start_at = time.monotonic() + 2.0
    # Clients ignore Ctrl-C: the parent gets it and the pool's exit terminates them.
    with context.Pool(
        clients, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)
    ) as pool:
        parts = pool.starmap(_client, [(port, path, headers or {}, start_at, duration)] * clients)
    total = LoadResult(seconds=duration)
    for part in parts:
        total.requests += part.requests
        total.errors += part.errors
        total.latencies.extend(part.latencies)
        total.first_error = total.first_error or part.first_error
    return total


def report(label: str, result: LoadResult) -> str:
    line = (
        f"{label:<34} {result.per_second:8.1f} req/s   "
        f"p50 {result.percentile(50) * 1000:6.1f} ms   p99 {result.percentile(99) * 1000:6.1f} ms"
        f"   ({result.requests} requests, {result.errors} errors)"
    )
    if result.first_error:
        line += f"\n{'':<34} first error: {result.first_error}"
    return line
