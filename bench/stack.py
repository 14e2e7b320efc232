"""The production stack for the stress benchmarks: gunicorn (4 workers, production mode) on
PostgreSQL, with the demo clinic, more patients and a bearer token per role.

`root` may be another checkout of this repository (an older commit, say): its migrations,
its CLI and its app are what run, so the same benchmark measures both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import ROOT, free_port, log_tail

SERVER = os.environ.get("BENCH_DB", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ROLES = {
    "nurse": "nurse@demo.clinic",
    "physician": "physician@demo.clinic",
    "admin": "admin@demo.clinic",
}
WORKERS = 4


@dataclass
class Stack:
    """A running gunicorn and what a client needs to talk to it."""

    root: Path
    database_url: str
    port: int
    tokens: dict[str, str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    patients: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(WORKERS),
                "wsgi:app",
            ],
            cwd=self.root,
            env=self.env | {"IVIG_MODE": "production"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 takes master and workers
        )
        out.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if request(self.port, "GET", "/healthz")[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not come up in 60 s")

    def kill(self) -> None:
        """kill -9 the master and every worker at once, as a power cut would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
            self.process = None

    def flask(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ROOT / ".venv/bin/flask"), "--app", "wsgi", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def deadlocks(self) -> int:
        """PostgreSQL's own count of deadlocks it broke in this database."""
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                name = engine.url.database
                return conn.scalar(
                    sa.text("SELECT deadlocks FROM pg_stat_database WHERE datname = :n"),
                    {"n": name},
                )
        finally:
            engine.dispose()


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    connection: http.client.HTTPConnection | None = None,
    timeout: float = 60,
) -> tuple[int, Any]:
    """One JSON request; the decoded body (or None)."""
    own = connection is None
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        if own:
            conn.close()
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = raw.decode(errors="replace")
    return response.status, decoded


@contextlib.contextmanager
def running_stack(root: Path = ROOT, patients: int = 40) -> Iterator[Stack]:
    """A fresh database, migrated and loaded by `root`'s own code, served by gunicorn."""
    admin = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT")
    if admin.url.get_backend_name() != "postgresql":
        raise SystemExit("the stress benchmarks run on PostgreSQL (BENCH_DB)")
    name = f"ivig_stress_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory(prefix="ivig-stress-") as tmp_name:
        tmp = Path(tmp_name)
        config = (root / "config.toml").read_text(encoding="utf-8")
        config = re.sub(
            r"(?m)^public_base_url\s*=.*$", 'public_base_url = "https://ivig.example.org"', config
        )
        (tmp / "config.toml").write_text(config, encoding="utf-8")
        env = os.environ | {
            "DATABASE_URL": url,
            "IVIG_MODE": "development",
            "IVIG_CONFIG": str(tmp / "config.toml"),
            "SECRET_KEY": secrets.token_urlsafe(40),
            "PYTHONPATH": str(root),
        }
        stack = Stack(root, url, free_port(), {}, env, tmp / "gunicorn.log")
        try:
            _run([str(ROOT / ".venv/bin/alembic"), "upgrade", "head"], root, env)
            loaded = stack.flask("demo", "load")
            assert loaded.returncode == 0, loaded.stderr
            for role, email in ROLES.items():
                made = stack.flask("tokens", "create", "--email", email, "--days", "1")
                assert made.returncode == 0, made.stderr
                stack.tokens[role] = made.stdout.strip().splitlines()[-1]
            stack.start()
            stack.patients = _patients(stack, patients)
            yield stack
        except BaseException:
            sys.stderr.write(f"--- gunicorn.log (tail) ---\n{log_tail(stack.log)}\n")
            raise
        finally:
            stack.stop()
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()


def _patients(stack: Stack, count: int) -> list[dict[str, Any]]:
    """The demo patients plus `count` more, each with a regimen at a center (over the API)."""
    nurse, physician = stack.tokens["nurse"], stack.tokens["physician"]
    status, centers = request(stack.port, "GET", "/api/v1/centers", token=nurse)
    assert status == 200, centers
    today = dt.date.today()
    for n in range(count):
        center = centers["centers"][n % len(centers["centers"])]
        status, patient = request(
            stack.port,
            "POST",
            "/api/v1/patients",
            {
                "mrn": f"STRESS-{n:04d}",
                "family_name": f"Stress{n}",
                "given_name": "Pat",
                "sex": "female" if n % 2 else "male",
                "birth_date": "1970-01-01",
                "home_center_id": center["id"],
                "height_cm": 170,
                "weight_kg": 60 + n % 30,
            },
            token=nurse,
        )
        assert status == 201, patient
        status, body = request(
            stack.port,
            "POST",
            f"/api/v1/patients/{patient['id']}/regimens",
            {
                "product": "Gamunex-C",
                "dose_g_per_kg": 2.0,
                "days_per_cycle": 2,
                "interval_weeks": 4,
                "starts_on": (today + dt.timedelta(days=7 + n % 14)).isoformat(),
                "center_id": center["id"],
                "reason": "stress benchmark",
            },
            token=physician,
        )
        assert status == 201, body
    status, listed = request(stack.port, "GET", "/api/v1/patients", token=nurse)
    assert status == 200, listed
    chairs = {c["id"]: [ch["id"] for ch in c["chairs"]] for c in centers["centers"]}
    return [p | {"chairs": chairs[p["home_center_id"]]} for p in listed["patients"]]


def assessment_body(rng: random.Random) -> dict[str, Any]:
    """A plausible assessment recorded yesterday."""
    return {
        "assessed_on": (dt.date.today() - dt.timedelta(days=1)).isoformat(),
        "cdasi_activity": rng.randint(0, 40),
        "mmt8": rng.randint(60, 80),
        "physician_global": rng.randint(0, 6),
    }


def regimen_change_body(current: dict[str, Any], rng: random.Random, reason: str) -> dict[str, Any]:
    """A new version of the current regimen: another dose or interval, from today."""
    return {
        "product": current["product"],
        "dose_g_per_kg": rng.choice((2.0, 1.6, 1.2)),
        "days_per_cycle": current["days_per_cycle"],
        "interval_weeks": rng.choice((4, 5, 6)),
        "starts_on": max(dt.date.fromisoformat(current["starts_on"]), dt.date.today()).isoformat(),
        "center_id": current["center_id"],
        "reason": reason,
        "based_on_version": current["version"],
    }


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
