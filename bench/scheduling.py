"""Day board of a busy center, and booking a year of infusions for one patient.

Targets (issue 3): the day board of a center with 30 chairs and 200 infusions renders in at
most 50 ms median with a fixed number of SQL queries; generating and booking a year of
infusions for one patient takes at most 20 ms median.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app import create_app
from app.db import recorded_statements
from app.domain import schedule
from app.models import Center
from app.services import regimens as regimen_service
from app.services import scheduling
from bench.common import median_ms, settings_for, throwaway_database
from bench.rows import (
    add_nurse,
    booked_patient,
    center_with_chairs,
    logged_in_client,
    regimen_setter,
)

ZONE = ZoneInfo("America/New_York")
DAY = dt.date(2027, 3, 3)  # a Wednesday


def _busy_center(session: sa.orm.Session, chairs: int, infusions: int) -> Center:
    center = center_with_chairs(session, "Bench Center", chairs=chairs, timezone="America/New_York")
    for n in range(infusions):
        chair = center.chairs[n % chairs]
        slot = n // chairs
        starts = dt.datetime.combine(DAY, dt.time(7), tzinfo=ZONE) + dt.timedelta(minutes=75 * slot)
        booked_patient(
            session,
            center,
            mrn=f"B-{n:04d}",
            family_name=f"Family{n}",
            birth_date=dt.date(1970, 1, 1),
            day=DAY,
            starts_at=starts,
            chair_id=chair.id,
            grams=24,
            minutes=60,
            turnover_minutes=15,
            vials=[[20, 1], [2, 2]],
            dose_g_per_kg=0.4,
            days_per_cycle=1,
            weight_kg=60,
        )
    session.commit()
    return center


def day_board(repeat: int = 200) -> dict[str, float]:
    with throwaway_database() as url:
        app = create_app(settings_for(url))
        state = app.extensions["ivig"]
        session = state.session_factory()
        center = _busy_center(session, chairs=30, infusions=200)
        add_nurse(session, state.settings.auth)
        session.close()
        client = logged_in_client(app)
        path = f"/centers/{center.id}/day?date={DAY.isoformat()}"
        with recorded_statements(state.engine) as statements:
            response = client.get(path)
        assert (
            response.status_code == 200
            and response.get_data(as_text=True).count('data-testid="board-infusion"') == 200
        )
        queries = len(statements)
        result = {
            "day_board_median_ms": median_ms(lambda: client.get(path), repeat),
            "day_board_queries": queries,
        }
        state.engine.dispose()
        return result


def year_of_infusions(repeat: int = 100) -> dict[str, float]:
    with throwaway_database() as url:
        settings = settings_for(url)
        app = create_app(settings)
        state = app.extensions["ivig"]
        session = state.session_factory()
        center = _busy_center(session, chairs=6, infusions=30)
        patient, set_once = regimen_setter(session, settings, center, "YEAR-1", DAY)
        service_ms = median_ms(set_once, repeat)
        regimen = regimen_service.current_regimen(session, patient.id)
        calendar = scheduling.center_calendar(center, settings, DAY, DAY + dt.timedelta(days=380))
        busy = scheduling.busy_intervals(
            session,
            center.id,
            dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC),
            dt.datetime.combine(DAY + dt.timedelta(days=380), dt.time(), tzinfo=dt.UTC),
        )

        def plan_and_book() -> None:
            cycles = schedule.plan_cycles(DAY, 4, 2, DAY + dt.timedelta(days=365), calendar, 3)
            schedule.book_plan(
                cycles,
                2,
                calendar,
                dt.time(9),
                [dt.timedelta(minutes=regimen.minutes_per_day)] * 2,
                dt.timedelta(minutes=15),
                busy,
                15,
                3,
            )

        domain_ms = median_ms(plan_and_book, repeat * 5)
        session.close()
        state.engine.dispose()
        return {
            "year_domain_plan_and_book_median_ms": domain_ms,
            "year_set_regimen_service_median_ms": service_ms,
        }
