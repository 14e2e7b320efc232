"""The day board on a chairside tablet: a 30-chair center's day of 200 documented visits.

Target (issue 13): the day board request takes at most 50 ms median, in a fixed number of SQL
queries: the same for a day of 20 visits as for one of 200, however much each visit's
documentation holds (vials, premedication, rate steps, vital signs, adverse events), which
the board does not show and must not load.

    .venv/bin/python -m bench.board            # SQLite
    BENCH_DB=postgresql+psycopg://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.board

How it is measured: two 30-chair centers in one throwaway database, one with 20 visits on the
day and one with 200, every visit with its documentation rows; the app's clock at 13:00 on
that day (the board is today's, with its "now" line); a nurse logged in through the form; GET
/centers/<id>/day through the Flask test client, so the time is the whole request (session
check, queries, template) without a network. Queries are counted with a
`before_cursor_execute` listener on the app's engine. Prints medians of each and the ratio of
200 to 20.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import sqlalchemy.orm as so

from app import clock, create_app
from app.db import recorded_statements
from app.models import Center, InfusionStatus
from bench.common import settings_for, throwaway_database
from bench.rows import (
    add_nurse,
    booked_patient,
    center_with_chairs,
    document_visit,
    logged_in_client,
)

ZONE = ZoneInfo("America/New_York")
DAY = dt.date(2027, 3, 3)  # a Wednesday
CHAIRS = 30
#: The app's clock while the board is looked at: four rounds done, one under way.
NOW = dt.datetime.combine(DAY, dt.time(13), tzinfo=ZONE)
#: A visit every 75 minutes a chair from 07:00: 60 minutes of infusion, 15 of turnover.
EVERY = dt.timedelta(minutes=75)
INFUSION = dt.timedelta(minutes=60)
VIALS = [[30.0, 2], [20.0, 1], [2.0, 1]]
GRAMS = 82.0
TARGET_MS = 50.0
BUSY_CHAIRS, BUSY_VISITS = 60, 400


def _state(slot: int, n: int) -> str:
    """What a visit of this round is at 13:00: the first four done, then under way, then to
    come; a few stopped early or missed."""
    if slot < 4:
        return (
            InfusionStatus.MISSED
            if n % 17 == 0
            else InfusionStatus.PARTIAL
            if n % 11 == 0
            else InfusionStatus.GIVEN
        )
    return (InfusionStatus.IN_CHAIR, InfusionStatus.CHECKED_IN, InfusionStatus.SCHEDULED)[
        min(slot - 4, 2)
    ]


def _center(session: so.Session, name: str, visits: int, chairs: int = CHAIRS) -> Center:
    """A center of `chairs` chairs open 07:00-19:00 with `visits` documented visits on DAY."""
    center = center_with_chairs(session, name, chairs=chairs, timezone=str(ZONE))
    for n in range(visits):
        slot = n // chairs
        starts = dt.datetime.combine(DAY, dt.time(7), tzinfo=ZONE) + EVERY * slot
        status = _state(slot, n)
        given = status in (InfusionStatus.GIVEN, InfusionStatus.PARTIAL)
        whole = status == InfusionStatus.GIVEN
        infusion = booked_patient(
            session,
            center,
            mrn=f"{name[:1]}-{n:04d}",
            family_name=f"Family{n:03d}",
            birth_date=dt.date(1960, 1, 1) + dt.timedelta(days=n),
            day=DAY,
            starts_at=starts,
            chair_id=center.chairs[n % chairs].id,
            grams=GRAMS,
            minutes=60,
            turnover_minutes=15,
            vials=VIALS,
            status=status,
            checked_in_at=starts - dt.timedelta(minutes=20)
            if status != InfusionStatus.SCHEDULED
            else None,
            given_grams=(GRAMS if whole else GRAMS / 2) if given else None,
            given_for=(INFUSION if whole else INFUSION / 2) if given else None,
            lot_numbers=f"LOT-{n:04d}" if given else None,
        )
        # Documentation rows as full as they get (the board reads none of them).
        document_visit(
            session,
            infusion,
            lot_number=f"LOT-{infusion.id:04d}",
            expires_on=DAY + dt.timedelta(days=400),
            adverse_event=n % 5 == 0,
            event_description="mild headache at 30 minutes",
        )
    session.commit()
    return center


def day_board(repeat: int = 100) -> dict[str, object]:
    """Query counts and median request times of the day board at 20 and at 200 visits."""
    with throwaway_database() as url, clock.frozen_at(NOW):
        app = create_app(settings_for(url))
        state = app.extensions["ivig"]
        session = state.session_factory()
        few = _center(session, "Few", 20)
        many = _center(session, "Many", 200)
        # Issue 18: a busy center, 60 chairs and 400 visits on the day.
        busy = _center(session, "Busy", BUSY_VISITS, chairs=BUSY_CHAIRS)
        add_nurse(session, state.settings.auth)
        paths = {
            visits: f"/centers/{center.id}/day?date={DAY.isoformat()}"
            for visits, center in ((20, few), (200, many), (BUSY_VISITS, busy))
        }
        session.close()
        client = logged_in_client(app)
        result: dict[str, object] = {
            "database": os.environ.get("BENCH_DB", "sqlite").split("://")[0],
            "chairs": CHAIRS,
        }
        queries = {}
        for visits, path in paths.items():
            client.get(path)  # warm-up: templates compiled, the login session touched
            with recorded_statements(state.engine) as statements:
                response = client.get(path)
            page = response.get_data(as_text=True)
            shown = page.count('data-testid="board-infusion"')
            if (
                response.status_code != 200
                or shown != visits
                or 'data-testid="now-line"' not in page
            ):
                raise SystemExit(f"the board of {visits} visits did not render ({shown} shown)")
            queries[visits] = len(statements)
        medians = _interleaved_medians_ms(
            {v: lambda p=p: client.get(p) for v, p in paths.items()}, repeat
        )
        for visits in paths:
            result[f"day_board_{visits}_queries"] = queries[visits]
            result[f"day_board_{visits}_median_ms"] = medians[visits]
        result["day_board_200_over_20_ratio"] = medians[200] / medians[20]
        result["queries_fixed"] = queries[20] == queries[200] == queries[BUSY_VISITS]
        result["busy_center"] = f"{BUSY_CHAIRS} chairs, {BUSY_VISITS} visits"
        result["target_ms"] = TARGET_MS
        state.engine.dispose()
        return result


def _interleaved_medians_ms(runs: dict[int, Callable[[], object]], repeat: int) -> dict[int, float]:
    """Median wall time of each run in milliseconds, taken in turn so a busy machine slows all
    of them alike."""
    samples: dict[int, list[float]] = {key: [] for key in runs}
    for _ in range(repeat):
        for key, run in runs.items():
            started = time.perf_counter()
            run()
            samples[key].append(time.perf_counter() - started)
    return {key: statistics.median(values) * 1000 for key, values in samples.items()}


def main() -> None:
    results = day_board()
    print(
        json.dumps(
            {k: round(v, 2) if isinstance(v, float) else v for k, v in results.items()}, indent=2
        )
    )


if __name__ == "__main__":
    main()
