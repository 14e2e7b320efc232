"""`python -m bench.busy [--quick]`: booking in a busy center (issue 18).

A 30-chair center open Monday to Friday 08:00-18:00 whose year holds about 20,000 bookings
(25 chairs, three 150-minute bookings a day each; five chairs left free), then:

- set regimen: a patient's regimen set again and again (each time a new version, a year of
  2-day cycles every 4 weeks re-planned through the service, as the physician's page does);
  target at most 30 ms median;
- bulk booking: the filler bookings inserted in batches of 1,000 rows, each checked by the
  database's no-double-booking guard (SQLite: a trigger; PostgreSQL: an exclusion
  constraint); the per-row time of the last batch against the second (the first warms up);
  target within 1.5x (linear) at 100,000 rows (`--quick`: 20,000).

SQLite by default; BENCH_DB=postgresql+psycopg://postgres@127.0.0.1:5432/postgres for
PostgreSQL. Prints one JSON object with each figure's measured value, target and pass.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app import create_app
from app.models import Infusion
from bench.common import median_ms, settings_for, throwaway_database
from bench.rows import booked_patient, center_with_chairs, regimen_setter

ZONE = ZoneInfo("America/New_York")
FIRST = dt.date(2027, 3, 1)  # a Monday
CHAIRS, FILLED_CHAIRS, PER_CHAIR_DAY, MINUTES, TURNOVER = 30, 25, 3, 150, 15
SET_REGIMEN_TARGET_MS = 30.0
LINEAR_TARGET = 1.5


def _filler_rows(
    center_id: int, chair_ids: list[int], patient_id: int, regimen_id: int, count: int
) -> Iterator[dict[str, Any]]:
    """Bookings on the filled chairs, day after open day from FIRST, three a chair a day."""
    day, number = FIRST, 0
    while True:
        if day.weekday() < 5:
            for chair_id in chair_ids[:FILLED_CHAIRS]:
                for slot in range(PER_CHAIR_DAY):
                    local = dt.datetime.combine(day, dt.time(8), tzinfo=ZONE) + dt.timedelta(
                        minutes=slot * (MINUTES + TURNOVER)
                    )
                    starts = local.astimezone(dt.UTC)
                    number += 1
                    yield {
                        "uid": uuid.uuid4().hex,
                        "patient_id": patient_id,
                        "regimen_id": regimen_id,
                        "cycle_number": number,
                        "day_number": 1,
                        "planned_date": day,
                        "cycle_planned_on": day,
                        "shift_days": 0,
                        "center_id": center_id,
                        "chair_id": chair_id,
                        "starts_at": starts,
                        "ends_at": starts + dt.timedelta(minutes=MINUTES),
                        "occupied_until": starts + dt.timedelta(minutes=MINUTES + TURNOVER),
                        "status": "scheduled",
                        "planned_grams": 30.0,
                        "planned_vials": [[10.0, 3]],
                        "planned_minutes": MINUTES,
                        "waived_rules": [],
                        "sequence": 0,
                        "version": 1,
                        "created_at": starts,
                        "updated_at": starts,
                    }
                    if number >= count:
                        return
        day += dt.timedelta(days=1)


def _bulk_book(session: sa.orm.Session, source: Iterator[dict[str, Any]], rows: int) -> list[float]:
    """Insert `rows` bookings in batches of 1,000; the seconds per row of each batch."""
    per_row = []
    while rows > 0 and (batch := list(itertools.islice(source, min(1000, rows)))):
        started = time.perf_counter()
        session.execute(sa.insert(Infusion), batch)
        session.commit()
        per_row.append((time.perf_counter() - started) / len(batch))
        rows -= len(batch)
    return per_row


def run(quick: bool = False, repeat: int = 30) -> dict[str, Any]:
    rows = 20_000 if quick else 100_000
    with throwaway_database() as url:
        settings = settings_for(url)
        app = create_app(settings)
        state = app.extensions["ivig"]
        session = state.session_factory()
        center = center_with_chairs(session, "Busy Center", chairs=CHAIRS, timezone=str(ZONE))
        filler = booked_patient(
            session,
            center,
            mrn="FILL-1",
            family_name="Filler",
            day=FIRST - dt.timedelta(days=7),
            starts_at=None,
            chair_id=None,
            grams=30,
            minutes=MINUTES,
            vials=[[10.0, 3]],
            status="unbooked",
        )
        session.commit()
        # The year of bookings the regimen is set into: the first 20,000 rows.
        chair_ids = [c.id for c in center.chairs]
        source = _filler_rows(center.id, chair_ids, filler.patient_id, filler.regimen_id, rows)
        per_row = _bulk_book(session, source, 20_000)
        patient, set_once = regimen_setter(session, settings, center, "BUSY-1", FIRST)
        set_ms = median_ms(set_once, repeat)
        booked = session.scalar(
            sa.select(sa.func.count())
            .select_from(Infusion)
            .where(Infusion.patient_id == patient.id, Infusion.status == "scheduled")
        )
        # The rest of the bulk booking (the years after, on the filled chairs, clear of the
        # patient's): the guard's cost per row must not grow with the rows before it.
        per_row += _bulk_book(session, source, rows - 20_000)
        session.close()
        state.engine.dispose()
    growth = per_row[-1] / per_row[1]
    return {
        "database": os.environ.get("BENCH_DB", "sqlite").split("://")[0],
        "center_bookings": 20_000,
        "set_regimen_median_ms": round(set_ms, 2),
        "set_regimen_days_booked": booked,
        "set_regimen_target_ms": SET_REGIMEN_TARGET_MS,
        "set_regimen_pass": set_ms <= SET_REGIMEN_TARGET_MS,
        "bulk_rows": rows,
        "bulk_ms_per_row_at_2k": round(per_row[1] * 1000, 4),
        "bulk_ms_per_row_at_end": round(per_row[-1] * 1000, 4),
        "bulk_growth": round(growth, 2),
        "bulk_growth_target": LINEAR_TARGET,
        "bulk_pass": growth <= LINEAR_TARGET,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows, fewer repeats")
    args = parser.parse_args()
    print(json.dumps(run(args.quick, repeat=10 if args.quick else 30), indent=2))


if __name__ == "__main__":
    main()
