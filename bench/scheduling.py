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
from app.models import Center, Chair, Infusion, OpeningHours, Patient, Regimen
from app.services import regimens as regimen_service
from app.services import scheduling
from app.services import users as user_service
from app.services.context import Actor, system_actor
from bench.common import median_ms, settings_for, throwaway_database

ZONE = ZoneInfo("America/New_York")
DAY = dt.date(2027, 3, 3)  # a Wednesday


def _busy_center(session: sa.orm.Session, chairs: int, infusions: int) -> Center:
    center = Center(name="Bench Center", timezone="America/New_York")
    center.opening_hours = [
        OpeningHours(weekday=d, opens_at=dt.time(7), closes_at=dt.time(19)) for d in range(5)
    ]
    center.chairs = [Chair(name=f"Chair {n:02d}") for n in range(1, chairs + 1)]
    session.add(center)
    session.flush()
    for n in range(infusions):
        chair = center.chairs[n % chairs]
        slot = n // chairs
        starts = dt.datetime.combine(DAY, dt.time(7), tzinfo=ZONE) + dt.timedelta(minutes=75 * slot)
        patient = Patient(
            mrn=f"B-{n:04d}",
            family_name=f"Family{n}",
            given_name="Bench",
            sex="female",
            birth_date=dt.date(1970, 1, 1),
            home_center_id=center.id,
            height_cm=165,
        )
        session.add(patient)
        session.flush()
        regimen = Regimen(
            patient_id=patient.id,
            version=1,
            product="Octagam 10%",
            dose_g_per_kg=0.4,
            days_per_cycle=1,
            interval_weeks=4,
            weight_basis="actual",
            starts_on=DAY,
            preferred_time=dt.time(7),
            center_id=center.id,
            weight_kg=60,
            height_cm=165,
            dosing_weight_kg=60,
            grams_per_day=24,
            grams_per_cycle=24,
            minutes_per_day=60,
            calculation={},
            soft_stops=[],
            reason="bench",
        )
        session.add(regimen)
        session.flush()
        session.add(
            Infusion(
                patient_id=patient.id,
                regimen_id=regimen.id,
                cycle_number=1,
                day_number=1,
                planned_date=DAY,
                cycle_planned_on=DAY,
                center_id=center.id,
                chair_id=chair.id,
                starts_at=starts.astimezone(dt.UTC),
                ends_at=(starts + dt.timedelta(minutes=60)).astimezone(dt.UTC),
                occupied_until=(starts + dt.timedelta(minutes=75)).astimezone(dt.UTC),
                planned_grams=24,
                planned_vials=[[20, 1], [2, 2]],
                planned_minutes=60,
            )
        )
    session.commit()
    return center


def day_board(repeat: int = 200) -> dict[str, float]:
    with throwaway_database() as url:
        app = create_app(settings_for(url))
        state = app.extensions["ivig"]
        session = state.session_factory()
        center = _busy_center(session, chairs=30, infusions=200)
        user_service.create_user(
            session,
            system_actor("bench"),
            email="nurse@bench.test",
            full_name="Bench Nurse",
            role="nurse",
            password="bench-password",
            settings=state.settings.auth,
        )
        session.close()
        client = app.test_client()
        client.get("/login")
        with client.session_transaction() as sess:
            csrf = sess["csrf"]
        client.post(
            "/login",
            data={"email": "nurse@bench.test", "password": "bench-password", "csrf_token": csrf},
        )
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
        patient = Patient(
            mrn="YEAR-1",
            family_name="Year",
            given_name="One",
            sex="male",
            birth_date=dt.date(1970, 1, 1),
            home_center_id=center.id,
            height_cm=175,
        )
        session.add(patient)
        session.commit()
        from app.models import WeightMeasurement

        session.add(WeightMeasurement(patient_id=patient.id, measured_on=DAY, weight_kg=100))
        session.commit()
        actor = Actor(label="bench", role="physician")
        now = dt.datetime.combine(DAY - dt.timedelta(days=2), dt.time(7), tzinfo=ZONE)
        version = [0]

        def set_once() -> None:
            regimen_service.set_regimen(
                session,
                actor,
                patient.id,
                regimen_service.RegimenInput(
                    product="Octagam 10%",
                    dose_g_per_kg=2,
                    days_per_cycle=2,
                    interval_weeks=4,
                    weight_basis="adjusted",
                    starts_on=DAY,
                    preferred_time=dt.time(9),
                    reason="bench",
                    based_on_version=version[0] or None,
                ),
                settings,
                now=now,
            )
            version[0] += 1

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
            schedule.book_cycles(
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
