"""Shared set-up for benchmarks: a migrated throwaway database and timing helpers."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from app.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def throwaway_database() -> Iterator[str]:
    """Yield the URL of a migrated database: SQLite by default, PostgreSQL with BENCH_DB."""
    server = os.environ.get("BENCH_DB", "sqlite")
    if server == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite3"
            migrate(url)
            yield url
        return
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"ivig_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def migrate(url: str) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


def settings_for(url: str) -> Settings:
    return load_settings(ROOT / "config.toml", overrides={"app": {"database_url": url}}, environ={})


def median_ms(run: Callable[[], object], repeat: int, warmup: int = 3) -> float:
    """Median wall time of `run` in milliseconds."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def log_tail(log: Path, lines: int = 30) -> str:
    """The last lines of a server's log, for the error message of a failed benchmark."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
