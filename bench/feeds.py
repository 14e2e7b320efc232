"""A center's calendar feed of 20,000 events: render, 304, and HTTP against Radicale.

Targets (calendar feeds issue): a center feed of 20,000 events renders in at most 2x the time
of fetching its rows from the database (that fetch is the floor); a 304 costs at most 5 ms
median; served over HTTP by the production server (gunicorn), the same events come out at
least as fast as Radicale serves its collection GET, same machine, same run.

How it is measured:
- floor: the SELECT that feed_service.feed_calendar runs (rebuilt here from the service's own
  _window and _infusion_filter, and checked to send the same SQL), executed and fetched with
  .all() through the same session;
- render: ical.render(feed_service.feed_calendar(...)), rows -> events -> bytes;
- 304: Flask test client, GET with If-None-Match set to the feed's ETag;
- HTTP: gunicorn (gunicorn.conf.py, 2 workers) and Radicale (auth none, the same feed body
  PUT as one collection) on loopback, full GETs with Accept-Encoding: identity, alternating,
  one new connection per request, whole body read.
"""

from __future__ import annotations

import base64
import contextlib
import cProfile
import datetime as dt
import http.client
import io
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import create_app
from app.config import Settings, load_settings
from app.db import recorded_statements, utcnow
from app.domain import ical
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
from app.services import feeds as feed_service
from app.services import subscriptions as subscription_service
from app.services import users as user_service
from app.services.context import Actor, system_actor
from bench.common import ROOT, free_port, log_tail, median_ms, throwaway_database

ZONE = ZoneInfo("America/New_York")
EVENTS = 20_000
CHAIRS = 36
PATIENTS = 1_500
# Two infusions a chair on each weekday: 72 a day fill 20,000 in about 13 months.
SLOTS = (dt.time(7, 30), dt.time(12, 30))
INFUSION = dt.timedelta(hours=4)
TURNOVER = dt.timedelta(minutes=15)
RATE_LIMIT = 10_000  # the config maximum: the bench fetches one token hundreds of times
GIVEN_NAMES = ("Ana", "Ben", "Chloé", "Dmitri", "Emma", "Farid", "Grace", "Hiro", "Inès", "Jon")
FAMILY_NAMES = ("Ng", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka", "Umar", "Voss")
RADICALE_USER = "bench"
STARTUP_SECONDS = 60
HTTP_SECONDS = 180  # bound on the alternating GET loop, whatever the repeat count


def calendar_feed(
    events: int = EVENTS, repeat: int = 21, not_modified_repeat: int = 200, http_repeat: int = 10
) -> dict[str, object]:
    with throwaway_database() as url:
        settings = _settings(url)
        app = create_app(settings)
        state = app.extensions["ivig"]
        session = state.session_factory()
        _progress(f"inserting {events} infusions")
        center = _center(session)
        _infusions(session, center, events)
        token, sub = _subscription(session, settings, center)
        now = utcnow()
        # Two cores: anything else running (a test suite) shows in the numbers.
        result: dict[str, object] = {
            "feed_events": events,
            "feed_load_average_1min_at_start": os.getloadavg()[0],
        }
        _progress("floor and render")
        rendered, body = _render(session, sub, settings, now, events, repeat)
        result |= rendered
        session.close()
        _progress("304")
        result |= _not_modified(app, token, not_modified_repeat)
        state.engine.dispose()
        _progress("HTTP: gunicorn and Radicale (the PUT of the collection takes a while)")
        result |= _http_against_radicale(url, token, body, events, http_repeat)
        return result


def _progress(message: str) -> None:
    print(f"feeds: {message}", file=sys.stderr, flush=True)


def _settings(url: str) -> Settings:
    return load_settings(
        ROOT / "config.toml",
        overrides={
            "app": {"database_url": url},
            # The clinic's feeds are bounded (12 weeks, 900 KB); the benchmark lifts both to time
            # the 20,000-event render it always measured.
            "feeds": {
                "rate_limit_per_minute": RATE_LIMIT,
                "staff_future_weeks": 156,
                "max_feed_kilobytes": 100_000,
            },
        },
        environ={},
    )


def _center(session: so.Session) -> Center:
    center = Center(
        name="Bench Feed Center", timezone=ZONE.key, address="1 Infusion Way, Springfield"
    )
    center.opening_hours = [
        OpeningHours(weekday=d, opens_at=dt.time(7), closes_at=dt.time(19)) for d in range(5)
    ]
    center.chairs = [Chair(name=f"Chair {n:02d}") for n in range(1, CHAIRS + 1)]
    session.add(center)
    session.commit()
    return center


def _infusions(session: so.Session, center: Center, count: int) -> None:
    """Insert patients, one regimen each and `count` infusions on distinct chair slots."""
    today = dt.datetime.now(ZONE).date()
    patient_ids = session.scalars(
        sa.insert(Patient).returning(Patient.id, sort_by_parameter_order=True),
        [
            {
                "mrn": f"FEED-{n:05d}",
                "family_name": FAMILY_NAMES[n % len(FAMILY_NAMES)] + str(n),
                "given_name": GIVEN_NAMES[n % len(GIVEN_NAMES)],
                "sex": ("female", "male")[n % 2],
                "birth_date": dt.date(1950 + n % 50, 1 + n % 12, 1 + n % 28),
                "home_center_id": center.id,
                "height_cm": 150 + n % 40,
            }
            for n in range(PATIENTS)
        ],
    ).all()
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
    rows = []
    day = today - dt.timedelta(days=30)
    while len(rows) < count:
        if day.weekday() < 5:
            for slot in SLOTS:
                starts = dt.datetime.combine(day, slot, tzinfo=ZONE).astimezone(dt.UTC)
                for chair in center.chairs:
                    n = len(rows)
                    if n == count:
                        break
                    rows.append(_infusion_row(n, day, today, starts, chair.id, center.id, now))
        day += dt.timedelta(days=1)
    for row in rows:
        row["patient_id"] = patient_ids[row["n"] % PATIENTS]
        row["regimen_id"] = regimen_ids[row.pop("n") % PATIENTS]
    session.execute(sa.insert(Infusion), rows)
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
        "cycle_number": n // PATIENTS + 1,
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


def _subscription(
    session: so.Session, settings: Settings, center: Center
) -> tuple[str, Subscription]:
    user = user_service.create_user(
        session,
        system_actor("bench"),
        email="feeds@bench.test",
        full_name="Bench Admin",
        role="admin",
        password="bench-password",
        settings=settings.auth,
    )
    actor = Actor(label=user.email, user_id=user.id, role=user.role)
    return subscription_service.create_subscription(
        session, actor, scope="center", scope_id=center.id, privacy="minimal", settings=settings
    )


def _feed_rows(sub: Subscription, settings: Settings, now: dt.datetime) -> sa.Select:
    """The SELECT feed_service.feed_calendar runs: the floor."""
    return feed_service.infusion_rows(sub, settings, now)


def _sql_of(session: so.Session, run: Callable[[], object]) -> list[str]:
    """The SQL statements `run` sends, without their parameters' values."""
    with recorded_statements(session.get_bind()) as sent:
        run()
    return sent


def _render(
    session: so.Session,
    sub: Subscription,
    settings: Settings,
    now: dt.datetime,
    events: int,
    repeat: int,
) -> tuple[dict[str, object], bytes]:
    statement = _feed_rows(sub, settings, now)

    def fetch() -> object:
        return session.execute(statement).all()

    def build() -> ical.FeedCalendar:
        return feed_service.feed_calendar(session, sub, settings, now)

    def render_total() -> bytes:
        # The function the feed endpoint calls (rows -> events -> bytes).
        return feed_service.render_feed(session, sub, settings, now)

    assert len(fetch()) == events
    body = render_total()
    assert body.count(b"BEGIN:VEVENT\r\n") == events
    # The floor must be the feed's own query: a change in the service shows up here.
    same_sql = _sql_of(session, fetch) == [
        s for s in _sql_of(session, build) if "FROM infusions" in s
    ]
    if not same_sql:
        print("warning: the floor's SELECT differs from feed_calendar's", file=sys.stderr)
    calendar = build()
    # Interleaved, so a busy moment on the machine hits the floor and the render alike.
    medians = _interleaved_medians_ms(
        {
            "fetch": fetch,
            "build": build,
            "render": lambda: ical.render(calendar),
            "total": render_total,
        },
        repeat,
    )
    floor, total = medians["fetch"], medians["total"]
    result: dict[str, object] = {
        "feed_body_bytes": len(body),
        "feed_floor_statement_matches_service": same_sql,
        "feed_floor_fetch_rows_median_ms": floor,
        "feed_calendar_rows_to_events_median_ms": medians["build"],
        "feed_render_events_to_bytes_median_ms": medians["render"],
        "feed_render_total_median_ms": total,
        "feed_render_over_floor_ratio": total / floor,
        # The one query a 304 cannot skip: it tells whether the feed changed.
        "feed_fingerprint_query_median_ms": median_ms(
            lambda: feed_service.fingerprint(session, sub, settings, now), repeat * 5
        ),
    }
    if total > 2 * floor:
        _profile(f"render is {total / floor:.2f}x the floor (target 2x), one run", render_total)
    return result, body


def _interleaved_medians_ms(
    runs: dict[str, Callable[[], object]], repeat: int, warmup: int = 2
) -> dict[str, float]:
    """Median wall time of each run in milliseconds, taking one sample of each in turn."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for n in range(warmup + repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if n >= warmup:
                samples[name].append(time.perf_counter() - start)
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


def _not_modified(app, token: str, repeat: int) -> dict[str, object]:
    client = app.test_client()
    path = f"/feeds/{token}.ics"
    first = client.get(path)
    assert first.status_code == 200, first.status_code
    etag = first.headers["ETag"]
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304, again.status_code

    def not_modified() -> object:
        return client.get(path, headers={"If-None-Match": etag})

    result = {
        "feed_200_in_process_median_ms": median_ms(lambda: client.get(path), 5, warmup=1),
        "feed_304_median_ms": median_ms(not_modified, repeat),
    }
    if result["feed_304_median_ms"] > 5:

        def hundred() -> None:
            for _ in range(100):
                not_modified()

        _profile("304 above 5 ms: 100 requests, app code", hundred, "app/")
    return result


# --- HTTP: gunicorn against Radicale on loopback ---------------------------------------------


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
        "--workers",
        "2",
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
