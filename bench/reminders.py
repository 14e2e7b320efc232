"""`python -m bench.reminders`: the review-due job and the reminder sweep over 10,000 patients.

Issue target: each job over 10,000 patients in at most 10 s, a fixed number of queries per
batch, peak memory under 300 MB. The synthetic clinic (bench/rows.py): four centers, every
patient with a regimen and a first cycle seven weeks ago, a third cycle booked inside the
review window for half of them (so the job writes a nurse and a physician task each), an
assessment with every measure for a quarter, and an e-mail with consent for everyone; the
first cycle day of one patient in fourteen is tomorrow (the day-before reminders), and the
sweep sends every due reminder to a local SMTP server (aiosmtpd) that keeps nothing.

Measured: wall time of `reviews.sweep_due`, `reminders.plan_day_before` and
`reminders.sweep`, each run as the scheduler runs it (`jobruns.run`); the statements sent per
batch at two batch sizes (the same number per batch whatever the size: "fixed"); and the peak
of the process's resident size (its high-water mark after each job).

BENCH_DB=postgresql+psycopg://postgres@127.0.0.1:5432/postgres runs it on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.db import make_engine, make_session_factory, recorded_statements
from app.models import Assessment, Infusion, InfusionStatus, Notice, Patient, Reminder
from app.services import jobruns, reminders, reviews
from app.services import users as user_service
from app.services.context import system_actor, unit_of_work
from bench.common import free_port, settings_for, throwaway_database
from bench.rows import booked_patient, center_with_chairs

PATIENTS = int(os.environ.get("BENCH_PATIENTS", "10000"))
ZONE = "America/New_York"


@contextlib.contextmanager
def _mail_server(port: int) -> Iterator[None]:
    """A real SMTP server in its own process (aiosmtpd's Sink: accepts, keeps nothing)."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.05)
        yield
    finally:
        server.terminate()
        server.wait(10)


def _populate(session: so.Session, settings: Settings, today: dt.date) -> None:
    centers = [
        # Open every day: the bench books tomorrow, whatever day it runs on.
        center_with_chairs(
            session, f"Bench Center {n}", chairs=30, timezone=ZONE, weekdays=range(7)
        )
        for n in range(4)
    ]
    user_service.create_user(
        session,
        system_actor("bench"),
        email="nurse@bench.test",
        full_name="Bench Nurse",
        role="nurse",
        password="bench-password",
        settings=settings.auth,
    )
    start = today - dt.timedelta(weeks=7)
    tomorrow = today + dt.timedelta(days=1)
    extra: list[dict[str, Any]] = []
    scores: list[dict[str, Any]] = []
    for n in range(PATIENTS):
        # 4 centers x 30 chairs; one hour a visit, four visits a chair-day from 07:00.
        soon = n % 14 == 0
        k = n // 14 if soon else n  # a distinct (center, chair, day, slot) for each
        center = centers[k % 4]
        chair = center.chairs[(k // 4) % 30]
        day = tomorrow if soon else start - dt.timedelta(days=(k // 120) % 25)
        slot = (k // 120) % 6 if soon else (k // 3000) % 4
        starts_at = dt.datetime.combine(day, dt.time(7), tzinfo=ZoneInfo(ZONE)) + dt.timedelta(
            minutes=75 * slot
        )
        first = booked_patient(
            session,
            center,
            mrn=f"B{n:06d}",
            family_name=f"Patient{n}",
            day=day,
            starts_at=starts_at,
            chair_id=chair.id,
            grams=40,
            minutes=60,
            vials=[[20, 2]],
            status=InfusionStatus.SCHEDULED if soon else InfusionStatus.GIVEN,
            given_grams=None if soon else 40,
            given_for=None if soon else dt.timedelta(minutes=60),
            lot_numbers=None if soon else "BENCH",
        )
        if n % 2 == 0 and not soon:
            third = day + dt.timedelta(weeks=8)
            extra.append(
                {
                    "uid": f"bench{n:08d}",
                    "patient_id": first.patient_id,
                    "regimen_id": first.regimen_id,
                    "cycle_number": 3,
                    "day_number": 1,
                    "planned_date": third,
                    "cycle_planned_on": third,
                    "shift_days": 0,
                    "center_id": center.id,
                    "status": InfusionStatus.UNBOOKED.value,
                    "planned_grams": 40,
                    "planned_vials": [[20, 2]],
                    "planned_minutes": 200,
                    "sequence": 0,
                    "version": 1,
                    "created_at": first.created_at,
                    "updated_at": first.updated_at,
                    "waived_rules": [],
                }
            )
        if n % 4 == 1:
            scores.append(
                {
                    "patient_id": first.patient_id,
                    "assessed_on": today - dt.timedelta(days=3),
                    "cdasi_activity": 10.0,
                    "mmt8": 75.0,
                    "physician_global": 2.0,
                    "notes": "",
                }
            )
        if n % 500 == 499:
            session.commit()
    session.commit()
    session.execute(sa.insert(Infusion), extra)
    session.execute(sa.insert(Assessment), scores)
    session.execute(
        sa.update(Patient).values(
            contact_email=sa.func.lower(Patient.mrn) + "@bench.test",
            contact_consent_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
    )
    session.commit()


def _run(session: so.Session, settings: Settings, name: str, body: jobruns.Body) -> dict[str, Any]:
    # Timed as it runs (tracemalloc would slow it 2-3x); memory is the process's high-water
    # mark of resident size after the run (it covers everything the process did so far).
    started = time.perf_counter()
    with recorded_statements(session.get_bind()) as sent:
        run = jobruns.run(session, settings, name, body, process="bench")
    seconds = time.perf_counter() - started
    if run.status != "ok":
        raise SystemExit(f"{name} failed:\n{run.error}")
    return {
        "seconds": round(seconds, 2),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "statements": len(sent),
        **run.counts,
    }


def _statements_per_batch(
    session: so.Session, engine: sa.Engine, settings: Settings, size: int
) -> float:
    """Statements a first `sweep_due` sends per batch of `size` patients (its tasks deleted
    before and after, so each size writes every task afresh)."""
    sized = settings.model_copy(
        update={"scheduler": settings.scheduler.model_copy(update={"batch_size": size})}
    )
    _forget_tasks(session)
    with recorded_statements(engine) as sent:
        reviews.sweep_due(session, sized, dt.datetime.now(dt.UTC))
    _forget_tasks(session)
    batches = -(-PATIENTS // size)
    return round((len(sent) - 1) / batches, 2)  # less the one list of patient ids


def _forget_tasks(session: so.Session) -> None:
    with unit_of_work(session):
        session.execute(sa.delete(Reminder))
        session.execute(sa.delete(Notice))


def measure() -> dict[str, Any]:
    """Every figure of the benchmark, with its targets (`targets`: name -> passed)."""
    results: dict[str, Any] = {"database": os.environ.get("BENCH_DB", "sqlite").split("://")[0]}
    port = free_port()
    with _mail_server(port), throwaway_database() as url:
        settings = settings_for(url)
        mailing = settings.model_copy(
            update={
                "smtp": settings.smtp.model_copy(
                    update={
                        "host": "127.0.0.1",
                        "port": port,
                        "from_address": "Bench <bench@bench.test>",
                    }
                )
            }
        )
        engine = make_engine(url)
        session = make_session_factory(engine, mailing)()
        today = dt.datetime.now(ZoneInfo(ZONE)).date()
        built = time.perf_counter()
        _populate(session, mailing, today)
        results["patients"] = PATIENTS
        results["populate_seconds"] = round(time.perf_counter() - built, 1)
        results["statements_per_batch"] = {
            str(size): _statements_per_batch(session, engine, mailing, size) for size in (200, 500)
        }
        results["review_due"] = _run(session, mailing, "review_due", reviews.sweep_due)
        results["review_due_again"] = _run(session, mailing, "review_due", reviews.sweep_due)
        results["day_before"] = _run(
            session, mailing, "day_before_reminders", reminders.plan_day_before
        )

        def sweep_later(s: so.Session, st: Settings, now: dt.datetime) -> dict[str, int]:
            # A day on: the day-before reminders (due at 10:00 today) are due too.
            return reminders.sweep(s, st, now + dt.timedelta(days=1))

        results["send_reminders"] = _run(session, mailing, "send_reminders", sweep_later)
        session.close()
        engine.dispose()
    results["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    review = results["review_due"]
    sweep = results["send_reminders"]
    per_batch = list(results["statements_per_batch"].values())
    results["targets"] = {
        "review_due_under_10_s": review["seconds"] <= 10,
        "send_reminders_under_10_s": sweep["seconds"] <= 10,
        "fixed_statements_per_batch": len(set(per_batch)) == 1,
        "peak_under_300_mb": results["max_rss_mb"] < 300,
    }
    return results


def main() -> None:
    results = measure()
    print(json.dumps(results, indent=2))
    if not all(results["targets"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
