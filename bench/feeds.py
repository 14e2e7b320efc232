"""Calendar feeds: render against the plain-driver floor, peak memory, 304s under writes.

    .venv/bin/python -m bench.feeds [--quick] [--json]
    BENCH_DB=postgresql+psycopg://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.feeds

SQLite (a throwaway file) by default; BENCH_DB names a PostgreSQL server on which a throwaway
database is made and dropped. `--quick` runs smaller feeds and shorter phases (a smoke run).
Prints one row per figure: figure, measured, floor, ratio, target, pass or fail (the rows of
the `make bench` table; `rows()` returns them).

Targets (issue 18; medians, and ratios measured in one run):
- feed render <= 2x the plain-driver fetch at 2,000, 20,000 and 100,000 events. Measured:
  feed_service.render_feed, what GET /feeds/<token>.ics calls (rows -> events -> bytes) for a
  center feed (staff, initials and short ids). Floor: the very statements that render sends
  to the database (those through SQLAlchemy recorded as sent, and the infusions' SELECT from
  feed_service.driver_statement, which render hands to the driver itself), parameters
  included, replayed through a plain DBAPI cursor (sqlite3 / psycopg, client-side) and
  fetched with fetchall(): the physical cost of getting the rows, no SQLAlchemy. Both run
  with the cyclic garbage collector off (render_feed turns it off; the floor gets the same
  setting), interleaved so a busy moment hits both.
- peak memory of one 100,000-event render under 50 MB above the process baseline: a fresh
  child process builds the app, renders a small feed once (imports, caches), then measures
  its resident set before (VmRSS) and its high-water mark after (VmHWM, reset through
  /proc/self/clear_refs) one render, body and ETag as the endpoint makes them.
- 304s at 8 clients with an unrelated write every second at least 80% of the no-write rate:
  gunicorn (gunicorn.conf.py, its workers) serves; 8 client threads, each its own center
  subscription, repeat GET with If-None-Match; phases without writes and with one write a
  second elsewhere in the clinic (an assessment, a weight, a patient's allergies, a
  reschedule at another center, in turn), alternating; the medians of each kind of phase.

The feed size limit and the staff window are lifted (the clinic's are 900 KB and 12 weeks)
so the whole feed is rendered and timed. This machine is shared: read ratios, not times.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import dataclasses
import datetime as dt
import gc
import hashlib
import http.client
import importlib.util
import io
import json
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import create_app
from app.config import Settings, load_settings
from app.db import utcnow
from app.models import (
    Center,
    Chair,
    Infusion,
    InfusionStatus,
    OpeningHours,
    Patient,
    Regimen,
    Subscription,
)
from app.services import assessments as assessment_service
from app.services import feeds as feed_service
from app.services import patients as patient_service
from app.services import subscriptions as subscription_service
from app.services import users as user_service
from app.services.context import Actor, system_actor
from bench.common import ROOT, free_port, log_tail, throwaway_database

ZONE = ZoneInfo("America/New_York")
SIZES = (2_000, 20_000, 100_000)
QUICK_SIZES = (500, 2_000)
PATIENTS = 1_500
# Two infusions a chair on each weekday, on enough chairs to stay inside the staff window.
SLOTS = (dt.time(7, 30), dt.time(12, 30))
INFUSION = dt.timedelta(hours=4)
TURNOVER = dt.timedelta(minutes=15)
RATE_LIMIT = 10_000  # the config maximum: the bench fetches one token thousands of times
GIVEN_NAMES = ("Ana", "Ben", "Chloé", "Dmitri", "Emma", "Farid", "Grace", "Hiro", "Inès", "Jon")
FAMILY_NAMES = ("Ng", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka", "Umar", "Voss")
RADICALE_USER = "bench"
STARTUP_SECONDS = 60
HTTP_SECONDS = 180  # bound on the alternating GET loop, whatever the repeat count
CLIENTS = 8
RENDER_TARGET = 2.0
MEMORY_TARGET_MB = 50.0
UNDER_WRITES_TARGET = 0.8


@dataclasses.dataclass(frozen=True)
class Figure:
    """One row of the benchmark table."""

    figure: str
    measured: float
    floor: float | None
    target: str
    passed: bool
    unit: str = "ms"

    @property
    def ratio(self) -> float | None:
        return self.measured / self.floor if self.floor else None

    def as_dict(self) -> dict[str, object]:
        return {
            "figure": self.figure,
            "measured": round(self.measured, 2),
            "floor": None if self.floor is None else round(self.floor, 2),
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "target": self.target,
            "unit": self.unit,
            "result": "pass" if self.passed else "FAIL",
        }


@dataclasses.dataclass
class Feed:
    """One center with `events` infusions and subscriptions to its feed."""

    events: int
    center_id: int
    subscriptions: list[Subscription]
    tokens: list[str]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller feeds, shorter phases")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead")
    parser.add_argument("--memory-child", nargs=2, metavar=("URL", "SUBSCRIPTION_ID"))
    args = parser.parse_args()
    if args.memory_child:
        _memory_child(args.memory_child[0], int(args.memory_child[1]))
        return
    database = os.environ.get("BENCH_DB", "sqlite").split("://")[0]
    figures, extra = run(quick=args.quick)
    if args.json:
        print(json.dumps({"database": database, "rows": [f.as_dict() for f in figures]} | extra))
    else:
        print(table(figures, database, extra))


def rows(quick: bool = False) -> list[dict[str, object]]:
    """The benchmark's rows for the `make bench` table."""
    return [figure.as_dict() for figure in run(quick=quick)[0]]


def calendar_feed() -> dict[str, object]:
    """Every figure as one flat dict (what `python -m bench` prints as JSON)."""
    figures, extra = run(quick=False)
    result: dict[str, object] = dict(extra)
    for figure in figures:
        key = re.sub(r"[^a-z0-9]+", "_", figure.figure.lower()).strip("_")
        result[f"{key}_measured"] = figure.measured
        if figure.floor is not None:
            result[f"{key}_floor"] = figure.floor
            result[f"{key}_ratio"] = figure.ratio
        result[f"{key}_pass"] = figure.passed
    if importlib.util.find_spec("radicale") is not None:  # `make bench` installs it
        result |= http_against_radicale()
    return result


def table(figures: list[Figure], database: str, extra: dict[str, object]) -> str:
    header = ("figure", "measured", "floor", "ratio", "target", "result")
    lines = [header]
    for f in figures:
        lines.append(
            (
                f.figure,
                f"{f.measured:.2f} {f.unit}",
                "-" if f.floor is None else f"{f.floor:.2f} {f.unit}",
                "-" if f.ratio is None else f"{f.ratio:.2f}",
                f.target,
                "pass" if f.passed else "FAIL",
            )
        )
    widths = [max(len(line[n]) for line in lines) for n in range(len(header))]
    out = [f"feeds benchmark on {database} (shared machine: read the ratios)"]
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if n == 0:
            out.append("  ".join("-" * width for width in widths))
    out.append(json.dumps(extra))
    return "\n".join(out)


def run(quick: bool = False) -> tuple[list[Figure], dict[str, object]]:
    sizes = QUICK_SIZES if quick else SIZES
    figures: list[Figure] = []
    extra: dict[str, object] = {"load_average_1min_at_start": os.getloadavg()[0]}
    with throwaway_database() as url:
        settings = _settings(url)
        app = create_app(settings)
        state = app.extensions["ivig"]
        session = state.session_factory()
        feeds = {}
        for events in sizes:
            _progress(f"inserting a center with {events} infusions")
            feeds[events] = _feed(session, settings, events, subscriptions=CLIENTS)
        elsewhere = _elsewhere(session, settings)
        now = utcnow()
        repeat = 5 if quick else 15
        for events in sizes:
            _progress(f"render and floor at {events} events")
            feed = feeds[events]
            figures.append(
                _render_figure(session, feed.subscriptions[0], settings, now, events, repeat)
            )
        session.close()
        state.engine.dispose()
        largest = feeds[sizes[-1]]
        _progress(f"peak memory of one {largest.events}-event render (child process)")
        figures.append(_memory_figure(url, largest))
        _progress("304s at 8 clients, without and with an unrelated write every second")
        smallest = feeds[sizes[0] if quick else 2_000]
        figure, detail = _under_writes(
            url, app, smallest, elsewhere, seconds=3 if quick else 6, rounds=1 if quick else 5
        )
        figures.append(figure)
        extra |= detail
    return figures, extra


def _progress(message: str) -> None:
    print(f"feeds: {message}", file=sys.stderr, flush=True)


def _settings(url: str) -> Settings:
    return load_settings(
        ROOT / "config.toml",
        overrides={
            "app": {"database_url": url},
            # The clinic's feeds are bounded (12 weeks, 900 KB); the benchmark lifts both to
            # render and time whole feeds.
            "feeds": {
                "rate_limit_per_minute": RATE_LIMIT,
                "staff_future_weeks": 156,
                "max_feed_kilobytes": 100_000,
            },
        },
        environ={},
    )


# --- data ------------------------------------------------------------------------------------


def _feed(session: so.Session, settings: Settings, events: int, subscriptions: int) -> Feed:
    # 72 infusions a weekday on 36 chairs; more chairs for a larger feed, so a year holds it.
    chairs = max(36, events // 400)
    center = _center(session, f"Bench Feed Center {events}", chairs)
    _infusions(session, center, events, patients=min(PATIENTS, events))
    tokens, subs = [], []
    admin = _admin(session, settings)
    for _ in range(subscriptions):
        token, sub = subscription_service.create_subscription(
            session, admin, scope="center", scope_id=center.id, privacy="minimal", settings=settings
        )
        tokens.append(token)
        subs.append(sub)
    return Feed(events, center.id, subs, tokens)


def _admin(session: so.Session, settings: Settings) -> Actor:
    existing = session.scalar(
        sa.text("SELECT id FROM users WHERE email = :e").bindparams(e="feeds@bench.test")
    )
    if existing is None:
        user = user_service.create_user(
            session,
            system_actor("bench"),
            email="feeds@bench.test",
            full_name="Bench Admin",
            role="admin",
            password="bench-password",
            settings=settings.auth,
        )
        existing = user.id
    return Actor(label="feeds@bench.test", user_id=existing, role="admin")


def _center(session: so.Session, name: str, chairs: int) -> Center:
    center = Center(name=name, timezone=ZONE.key, address="1 Infusion Way, Springfield")
    center.opening_hours = [
        OpeningHours(weekday=d, opens_at=dt.time(7), closes_at=dt.time(19)) for d in range(5)
    ]
    center.chairs = [Chair(name=f"Chair {n:02d}") for n in range(1, chairs + 1)]
    session.add(center)
    session.commit()
    return center


def _patients(session: so.Session, center: Center, count: int, prefix: str) -> list[int]:
    return list(
        session.scalars(
            sa.insert(Patient).returning(Patient.id, sort_by_parameter_order=True),
            [
                {
                    "mrn": f"{prefix}-{n:05d}",
                    "family_name": FAMILY_NAMES[n % len(FAMILY_NAMES)] + str(n),
                    "given_name": GIVEN_NAMES[n % len(GIVEN_NAMES)],
                    "sex": ("female", "male")[n % 2],
                    "birth_date": dt.date(1950 + n % 50, 1 + n % 12, 1 + n % 28),
                    "home_center_id": center.id,
                    "height_cm": 150 + n % 40,
                }
                for n in range(count)
            ],
        ).all()
    )


def _infusions(session: so.Session, center: Center, count: int, patients: int) -> None:
    """Insert patients, one regimen each and `count` infusions on distinct chair slots."""
    today = dt.datetime.now(ZONE).date()
    patient_ids = _patients(session, center, patients, f"FEED{center.id}")
    regimen_ids = session.scalars(
        sa.insert(Regimen).returning(Regimen.id, sort_by_parameter_order=True),
        [
            {
                "patient_id": pid,
                "version": 1,
                "product": "Octagam 10%",
                "dose_g_per_kg": 2,
                "days_per_cycle": 1,
                "interval_weeks": 4,
                "weight_basis": "actual",
                "starts_on": today - dt.timedelta(days=30),
                "preferred_time": SLOTS[0],
                "center_id": center.id,
                "weight_kg": 70,
                "height_cm": 170,
                "dosing_weight_kg": 70,
                "grams_per_day": 140,
                "grams_per_cycle": 140,
                "minutes_per_day": 240,
                "calculation": {},
                "soft_stops": [],
                "reason": "bench",
            }
            for pid in patient_ids
        ],
    ).all()
    now = utcnow()
    rows: list[dict[str, Any]] = []
    day = today - dt.timedelta(days=30)
    while len(rows) < count:
        if day.weekday() < 5:
            for slot in SLOTS:
                starts = dt.datetime.combine(day, slot, tzinfo=ZONE).astimezone(dt.UTC)
                for chair in center.chairs:
                    n = len(rows)
                    if n == count:
                        break
                    rows.append(
                        _infusion_row(n, day, today, starts, chair.id, center.id, now, patients)
                    )
        day += dt.timedelta(days=1)
    for row in rows:
        row["patient_id"] = patient_ids[row["n"] % patients]
        row["regimen_id"] = regimen_ids[row.pop("n") % patients]
    for start in range(0, len(rows), 20_000):
        session.execute(sa.insert(Infusion), rows[start : start + 20_000])
    session.commit()
    if session.get_bind().dialect.name == "postgresql":
        # Autovacuum would do this soon after such a load; without it the plans are a guess.
        session.execute(sa.text("ANALYZE"))
        session.commit()


def _infusion_row(
    n: int,
    day: dt.date,
    today: dt.date,
    starts: dt.datetime,
    chair_id: int,
    center_id: int,
    now: dt.datetime,
    patients: int,
) -> dict[str, object]:
    if n % 97 == 0:
        # Cancelled a few days ago: inside feeds.cancelled_retention_days, so still in the feed.
        status, updated = InfusionStatus.CANCELLED, now - dt.timedelta(days=3, seconds=n)
    else:
        status = InfusionStatus.GIVEN if day < today else InfusionStatus.SCHEDULED
        updated = now - dt.timedelta(days=60) + dt.timedelta(seconds=97 * n)
    return {
        "n": n,
        "uid": uuid.uuid4().hex,
        # Each of a patient's infusions its own cycle (the therapy-integrity check).
        "cycle_number": n // patients + 1,
        "day_number": 1,
        "planned_date": day,
        "cycle_planned_on": day,
        "center_id": center_id,
        "chair_id": chair_id,
        "starts_at": starts,
        "ends_at": starts + INFUSION,
        "occupied_until": starts + INFUSION + TURNOVER,
        "status": status,
        "planned_grams": 140,
        "planned_vials": [[20, 7]],
        "planned_minutes": 240,
        "given_grams": 140 if status == InfusionStatus.GIVEN else None,
        "sequence": n % 3,
        "created_at": now - dt.timedelta(days=90),
        "updated_at": updated,
    }


@dataclasses.dataclass
class Elsewhere:
    """Another center, its patients and infusions: where the unrelated writes go."""

    center_id: int
    patient_ids: list[int]
    infusion_ids: list[int]


def _elsewhere(session: so.Session, settings: Settings) -> Elsewhere:
    center = _center(session, "Bench Elsewhere Center", 4)
    _infusions(session, center, 40, patients=8)
    patient_ids = list(
        session.scalars(sa.select(Patient.id).where(Patient.home_center_id == center.id))
    )
    infusion_ids = list(
        session.scalars(sa.select(Infusion.id).where(Infusion.center_id == center.id))
    )
    return Elsewhere(center.id, patient_ids, infusion_ids)


# --- render against the plain driver -------------------------------------------------------


def _endpoint_body(out: object) -> tuple[bytes | list[bytes], str]:
    """The body and the ETag the endpoint makes of what render_feed returns."""
    if isinstance(out, bytes):
        return out, '"' + hashlib.sha256(out).hexdigest()[:40] + '"'
    return out.chunks, out.etag  # type: ignore[attr-defined]


def _body_bytes(out: object) -> bytes:
    body, _ = _endpoint_body(out)
    return body if isinstance(body, bytes) else b"".join(body)


def _statements_sent(session: so.Session, run: Callable[[], object]) -> list[tuple[str, Any]]:
    """The statements `run` sends to the database, with their parameters as sent."""
    sent: list[tuple[str, Any]] = []
    bind = session.get_bind()

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    sa.event.listen(bind, "before_cursor_execute", record)
    try:
        run()
    finally:
        sa.event.remove(bind, "before_cursor_execute", record)
    return sent


@contextlib.contextmanager
def _gc_off() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _render_figure(
    session: so.Session,
    sub: Subscription,
    settings: Settings,
    now: dt.datetime,
    events: int,
    repeat: int,
) -> Figure:
    def render() -> object:
        with _gc_off():
            out = feed_service.render_feed(session, sub, settings, now)
            _endpoint_body(out)
            return out

    session.commit()
    body = _body_bytes(render())
    assert body.count(b"BEGIN:VEVENT\r\n") == events, body.count(b"BEGIN:VEVENT\r\n")
    session.commit()
    statements = [
        s for s in _statements_sent(session, render) if s[0].lstrip().upper().startswith("SELECT")
    ]
    if hasattr(feed_service, "driver_statement"):
        # The infusions' SELECT goes to the driver itself, past SQLAlchemy's events.
        statements.append(feed_service.driver_statement(session, sub, settings, now))
    session.commit()
    raw = session.get_bind().raw_connection()  # type: ignore[union-attr]
    try:

        def floor() -> object:
            with _gc_off():
                cursor = raw.cursor()
                fetched = []
                for statement, parameters in statements:
                    cursor.execute(statement, parameters)
                    fetched.append(cursor.fetchall())
                cursor.close()
                return fetched

        fetched = floor()
        assert sum(len(r) for r in fetched) >= events, [len(r) for r in fetched]
        raw.rollback()

        def timed_render() -> float:
            # Inside a transaction, as the endpoint renders: its BEGIN and COMMIT are not
            # the render's (the floor's raw SQLite connection has none at all).
            session.connection()
            start = time.perf_counter()
            render()
            elapsed = time.perf_counter() - start
            session.commit()
            return elapsed

        def timed_floor() -> float:
            start = time.perf_counter()
            floor()
            elapsed = time.perf_counter() - start
            raw.rollback()
            return elapsed

        medians = _interleaved_medians_ms({"floor": timed_floor, "render": timed_render}, repeat)
    finally:
        raw.close()
    floor_ms, render_ms = medians["floor"], medians["render"]
    if render_ms > RENDER_TARGET * floor_ms and events >= 20_000:
        _profile(f"render of {events} is {render_ms / floor_ms:.2f}x the floor, one run", render)
    return Figure(
        f"feed render {events // 1000}k events"
        if events >= 1000
        else f"feed render {events} events",
        render_ms,
        floor_ms,
        f"<= {RENDER_TARGET:g}x floor",
        render_ms <= RENDER_TARGET * floor_ms,
    )


def _interleaved_medians_ms(
    runs: dict[str, Callable[[], float]], repeat: int, warmup: int = 2
) -> dict[str, float]:
    """Median of the seconds each run reports, in milliseconds, one sample of each in turn."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for n in range(warmup + repeat):
        for name, run in runs.items():
            elapsed = run()
            if n >= warmup:
                samples[name].append(elapsed)
    return {name: statistics.median(values) * 1000 for name, values in samples.items()}


def _profile(title: str, run: Callable[[], object], restrict: str | None = None) -> None:
    """Print where `run` spends its time (own time, then cumulative) to stderr."""
    profile = cProfile.Profile()
    profile.runcall(run)
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(15)
    stats.sort_stats("cumulative").print_stats(*([restrict] if restrict else []), 15)
    print(f"--- {title} ---\n{out.getvalue()}", file=sys.stderr)


# --- peak memory -----------------------------------------------------------------------------


def _memory_figure(url: str, feed: Feed) -> Figure:
    done = subprocess.run(
        [sys.executable, "-m", "bench.feeds", "--memory-child", url, str(feed.subscriptions[0].id)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{done.stderr[-3000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    peak_mb = measured["peak_above_baseline_mb"]
    return Figure(
        f"feed peak memory, one {feed.events // 1000}k render"
        if feed.events >= 1000
        else f"feed peak memory, one {feed.events} render",
        peak_mb,
        None,
        f"< {MEMORY_TARGET_MB:g} MB above baseline",
        peak_mb < MEMORY_TARGET_MB,
        unit="MB",
    )


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_child(url: str, subscription_id: int) -> None:
    settings = _settings(url)
    app = create_app(settings)
    session = app.extensions["ivig"].session_factory()
    sub = session.get(Subscription, subscription_id)
    assert sub is not None
    now = utcnow()
    # A small feed first: imports, statement caches and the driver's first use are not the
    # render's memory.
    small = session.scalar(
        sa.select(Subscription).where(Subscription.id != subscription_id).order_by(Subscription.id)
    )
    if small is not None:
        _endpoint_body(feed_service.render_feed(session, small, settings, now))
    session.commit()
    gc.collect()
    baseline_kb = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    out = feed_service.render_feed(session, sub, settings, now)
    body, etag = _endpoint_body(out)
    peak_kb = _status_kb("VmHWM")
    size = len(body) if isinstance(body, bytes) else sum(len(b) for b in body)
    print(
        json.dumps(
            {
                "baseline_mb": baseline_kb / 1024,
                "peak_mb": peak_kb / 1024,
                "peak_above_baseline_mb": (peak_kb - baseline_kb) / 1024,
                "body_mb": size / 1e6,
                "etag": etag,
            }
        )
    )


# --- 304s under writes -----------------------------------------------------------------------


def _under_writes(
    url: str, app: Any, feed: Feed, elsewhere: Elsewhere, seconds: float, rounds: int
) -> tuple[Figure, dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="ivig-bench-") as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        with _server(
            _gunicorn_command(port), _gunicorn_env(url, tmp), tmp / "gunicorn.log"
        ) as ours:
            _wait_ready(ours, port, "/feeds/x.ics")
            etags = []
            for token in feed.tokens:
                status, _, headers = _get(port, f"/feeds/{token}.ics")
                assert status == 200, status
                etags.append(headers["etag"])
            writer = _Writer(app, elsewhere)
            _phase(port, feed.tokens, etags, 2, None)  # warm-up: every worker has served
            quiet: list[float] = []
            busy: list[float] = []
            statuses: dict[str, dict[int, int]] = {"quiet": {}, "busy": {}}
            for _ in range(rounds):
                for name, samples, writes in (("quiet", quiet, False), ("busy", busy, True)):
                    rate, counted = _phase(
                        port, feed.tokens, etags, seconds, writer if writes else None
                    )
                    samples.append(rate)
                    for status, n in counted.items():
                        statuses[name][status] = statuses[name].get(status, 0) + n
            writer.close()
    quiet_rate, busy_rate = statistics.median(quiet), statistics.median(busy)
    figure = Figure(
        "feed 304s/s, 8 clients, a write every second",
        busy_rate,
        quiet_rate,
        f">= {UNDER_WRITES_TARGET:.0%} of no-write rate",
        busy_rate >= UNDER_WRITES_TARGET * quiet_rate,
        unit="req/s",
    )
    detail: dict[str, object] = {
        "under_writes_quiet_rates": [round(r, 1) for r in quiet],
        "under_writes_busy_rates": [round(r, 1) for r in busy],
        "under_writes_statuses": statuses,
        "under_writes_writes": writer.done,
        "under_writes_write_errors": writer.errors[:3],
    }
    return figure, detail


class _Writer:
    """One write a second elsewhere in the clinic, through the services, in turn by kind."""

    KINDS = ("assessment", "weight", "allergies", "reschedule")

    def __init__(self, app: Any, elsewhere: Elsewhere) -> None:
        self.session: so.Session = app.extensions["ivig"].session_factory()
        self.settings: Settings = app.extensions["ivig"].settings
        self.elsewhere = elsewhere
        self.done: dict[str, int] = {}
        self.errors: list[str] = []
        self.count = 0
        self.actor = system_actor("bench")

    def write(self) -> None:
        kind = self.KINDS[self.count % len(self.KINDS)]
        pid = self.elsewhere.patient_ids[self.count % len(self.elsewhere.patient_ids)]
        today = dt.date.today()
        self.count += 1
        try:
            if kind == "assessment":
                assessment_service.record_assessment(
                    self.session,
                    self.actor,
                    pid,
                    assessment_service.AssessmentInput(
                        assessed_on=today, scores={"cdasi_activity": self.count % 40}
                    ),
                    today,
                )
            elif kind == "weight":
                patient_service.record_weight(
                    self.session, self.actor, pid, 60 + self.count % 20, today, self.settings, today
                )
            elif kind == "allergies":
                patient_service.update_patient(
                    self.session,
                    self.actor,
                    pid,
                    patient_service.PatientChanges(allergies=f"bench {self.count}"),
                    self.settings,
                )
            else:
                infusion_id = self.elsewhere.infusion_ids[
                    self.count % len(self.elsewhere.infusion_ids)
                ]
                infusion = self.session.get(Infusion, infusion_id)
                assert infusion is not None
                assert infusion.starts_at and infusion.ends_at and infusion.occupied_until
                # A reschedule by a quarter of an hour and back: the other center's feed moves.
                shift = dt.timedelta(minutes=15 if self.count % 8 < 4 else -15)
                infusion.starts_at += shift
                infusion.ends_at += shift
                infusion.occupied_until += shift
                infusion.mark_changed(utcnow(), significant=True)
                self.session.commit()
            self.done[kind] = self.done.get(kind, 0) + 1
        except Exception as exc:
            self.session.rollback()
            self.errors.append(f"{kind}: {exc!r}"[:300])

    def close(self) -> None:
        self.session.close()


def _phase(
    port: int, tokens: list[str], etags: list[str], seconds: float, writer: _Writer | None
) -> tuple[float, dict[int, int]]:
    counted: dict[int, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        path, etag = f"/feeds/{tokens[n]}.ics", etags[n]
        while not stop.is_set():
            status, _, _ = _get(port, path, {"If-None-Match": etag})
            with lock:
                counted[status] = counted.get(status, 0) + 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(tokens))]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # the clients are all running before the count starts
    with lock:
        counted.clear()
    started = time.perf_counter()
    next_write = started + 0.5
    while (elapsed := time.perf_counter() - started) < seconds:
        if writer is not None and time.perf_counter() >= next_write:
            writer.write()
            next_write += 1.0
        time.sleep(0.01)
    with lock:
        result = dict(counted)
    stop.set()
    for thread in threads:
        thread.join()
    return result.get(304, 0) / elapsed, result


def _get(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path, headers={"Accept-Encoding": "identity"} | (headers or {}))
        response = connection.getresponse()
        body = response.read()
        return response.status, body, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


# --- HTTP: gunicorn against Radicale on loopback (python -m bench) ---------------------------


def http_against_radicale(repeat: int = 10, events: int = 20_000) -> dict[str, object]:
    """Full GETs of a feed from gunicorn and of the same collection from Radicale."""
    with throwaway_database() as url:
        settings = _settings(url)
        app = create_app(settings)
        state = app.extensions["ivig"]
        session = state.session_factory()
        feed = _feed(session, settings, events, subscriptions=1)
        body = _body_bytes(
            feed_service.render_feed(session, feed.subscriptions[0], settings, utcnow())
        )
        session.close()
        state.engine.dispose()
        return _http_against_radicale(url, feed.tokens[0], body, events, repeat)


def _http_against_radicale(
    url: str, token: str, expected: bytes, events: int, repeat: int
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="ivig-bench-") as tmp_name:
        tmp = Path(tmp_name)
        ours_port, radicale_port = free_port(), free_port()
        with (
            _server(
                _gunicorn_command(ours_port), _gunicorn_env(url, tmp), tmp / "gunicorn.log"
            ) as ours,
            _server(
                _radicale_command(radicale_port, tmp), dict(os.environ), tmp / "radicale.log"
            ) as radicale,
        ):
            _wait_ready(ours, ours_port, "/feeds/x.ics")
            _wait_ready(radicale, radicale_port, "/.web/")
            return _compare(ours_port, radicale_port, token, expected, events, repeat)


def _compare(
    ours_port: int, radicale_port: int, token: str, expected: bytes, events: int, repeat: int
) -> dict[str, object]:
    ours_path = f"/feeds/{token}.ics"
    collection = f"/{RADICALE_USER}/feed/"
    # Radicale runs with auth none, but its rights (owner_only) still want a user name.
    user = base64.b64encode(f"{RADICALE_USER}:x".encode()).decode()
    as_user = {"Authorization": f"Basic {user}"}
    status, body = _request(ours_port, "GET", ours_path)
    assert status == 200, status
    # The production server serves exactly what the in-process render produced.
    assert body == expected, "the HTTP body differs from the in-process render"
    start = time.perf_counter()
    status, _ = _request(
        radicale_port,
        "PUT",
        collection,
        body,
        as_user | {"Content-Type": "text/calendar; charset=utf-8"},
        timeout=600,
    )
    put_seconds = time.perf_counter() - start
    assert status in (200, 201, 204), f"Radicale PUT answered {status}"
    status, theirs = _request(radicale_port, "GET", collection, headers=as_user)
    assert status == 200, status
    assert theirs.count(b"BEGIN:VEVENT\r\n") == events, theirs.count(b"BEGIN:VEVENT\r\n")

    ours: list[float] = []
    radicale: list[float] = []
    deadline = time.monotonic() + HTTP_SECONDS
    for n in range(repeat + 2):  # two rounds of warm-up, then `repeat` timed ones
        if time.monotonic() > deadline:
            break
        for port, path, headers, samples in (
            (ours_port, ours_path, {}, ours),
            (radicale_port, collection, as_user, radicale),
        ):
            start = time.perf_counter()
            status, body = _request(port, "GET", path, headers=headers)
            elapsed = time.perf_counter() - start
            assert status == 200 and body, (port, status)
            if n >= 2:
                samples.append(elapsed * 1000)
    ours_ms, radicale_ms = statistics.median(ours), statistics.median(radicale)
    return {
        "http_get_runs": len(ours),
        "http_ours_body_bytes": len(expected),
        "http_radicale_body_bytes": len(theirs),
        "http_radicale_put_collection_s": put_seconds,
        "http_ours_gunicorn_get_median_ms": ours_ms,
        "http_radicale_get_median_ms": radicale_ms,
        "http_ours_over_radicale_ratio": ours_ms / radicale_ms,
    }


def _request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 120,
) -> tuple[int, bytes]:
    """One request on a new loopback connection, whole body read."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(
            method, path, body=body, headers={"Accept-Encoding": "identity"} | (headers or {})
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _gunicorn_command(port: int) -> list[str]:
    return [
        str(ROOT / ".venv/bin/gunicorn"),
        "-c",
        "gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "wsgi:app",
    ]


def _gunicorn_env(url: str, tmp: Path) -> dict[str, str]:
    """The bench process's environment, its database, and a config with a higher rate limit."""
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    config, found = re.subn(
        r"(?m)^rate_limit_per_minute\s*=.*$", f"rate_limit_per_minute = {RATE_LIMIT}", config
    )
    assert found == 1, "config.toml: feeds.rate_limit_per_minute not found"
    (tmp / "config.toml").write_text(config, encoding="utf-8")
    return os.environ | {
        "DATABASE_URL": url,
        "IVIG_MODE": "development",
        "IVIG_CONFIG": str(tmp / "config.toml"),
    }


def _radicale_command(port: int, tmp: Path) -> list[str]:
    return [
        str(ROOT / ".venv/bin/python"),
        "-m",
        "radicale",
        "--server-hosts",
        f"127.0.0.1:{port}",
        "--auth-type",
        "none",
        "--storage-filesystem-folder",
        str(tmp / "radicale"),
        "--config",  # no arguments: read no config file, only the defaults and these options
    ]


@contextlib.contextmanager
def _server(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server for the block; stop it (and wait for it) whatever happens."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        except BaseException:
            sys.stderr.write(f"--- {log.name} (tail) ---\n{log_tail(log)}\n")
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_ready(process: subprocess.Popen[bytes], port: int, path: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            _request(port, "GET", path, timeout=5)
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[0]} exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


if __name__ == "__main__":
    main()
