"""`python -m bench`: run every benchmark under bench/ (none yet beyond a health probe)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from alembic import command
from alembic.config import Config

from app import create_app
from app.config import load_settings

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    """Time GET /healthz through the full Flask stack on a fresh SQLite database."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.attributes["database_url"] = url
        cfg.attributes["configure_logger"] = False
        command.upgrade(cfg, "head")
        app = create_app(load_settings(overrides={"app": {"database_url": url}}, environ={}))
        client = app.test_client()
        samples = []
        for _ in range(500):
            start = time.perf_counter()
            client.get("/healthz")
            samples.append(time.perf_counter() - start)
        app.extensions["ivig"].engine.dispose()
    print(f"GET /healthz: median {statistics.median(samples) * 1000:.2f} ms over {len(samples)}")


if __name__ == "__main__":
    main()
