"""Parallel requests never double-book a chair: the database refuses, the service retries."""

import datetime as dt
import itertools
import threading

import pytest
import sqlalchemy as sa

from app import create_app
from app.models import Infusion, InfusionStatus
from app.services import scheduling
from app.services.context import system_actor
from tests.conftest import BACKEND, make_settings
from tests.db.clinic_fixtures import make_center, make_patient


def next_monday(days_ahead: int = 7) -> dt.date:
    day = dt.date.today() + dt.timedelta(days=days_ahead)
    return day + dt.timedelta(days=(7 - day.weekday()) % 7)


def test_parallel_regimen_requests_book_distinct_chair_times(databases):
    url = databases.create()
    app = create_app(make_settings(url))
    state = app.extensions["ivig"]
    session = state.session_factory()
    center = make_center(session, "Busy Center", chairs=2)
    actor = system_actor("test")
    patients = [
        make_patient(session, actor, center, state.settings, mrn=f"P-{n}") for n in range(3)
    ]
    session.commit()
    runner = app.test_cli_runner()
    runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "doc@test.clinic",
            "--name",
            "Doc",
            "--role",
            "physician",
            "--password",
            "doctor-password",
        ]
    )
    token = runner.invoke(args=["tokens", "create", "--email", "doc@test.clinic"]).output
    headers = {"Authorization": f"Bearer {token.strip().splitlines()[-1]}"}
    body = {
        "product": "Octagam 10%",
        "dose_g_per_kg": 2,
        "days_per_cycle": 2,
        "interval_weeks": 4,
        "starts_on": next_monday().isoformat(),
        "preferred_time": "09:00",
        "reason": "start",
    }
    barrier = threading.Barrier(len(patients))
    statuses: list[int] = []

    def post(patient_id: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            f"/api/v1/patients/{patient_id}/regimens", json=body, headers=headers
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=post, args=(p.id,)) for p in patients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201, 201, 201]
    rows = session.execute(
        sa.select(Infusion.chair_id, Infusion.starts_at, Infusion.occupied_until).where(
            Infusion.status == InfusionStatus.SCHEDULED
        )
    ).all()
    session.close()
    state.engine.dispose()
    assert len(rows) > 3 * 2
    by_chair = sorted(rows, key=lambda r: (r.chair_id, r.starts_at))
    for chair_id, items in itertools.groupby(by_chair, key=lambda r: r.chair_id):
        items = list(items)
        for a, b in itertools.pairwise(items):
            assert a.occupied_until <= b.starts_at, f"chair {chair_id} double-booked"
    first_day = [r for r in rows if r.starts_at.date() == next_monday()]
    # Two chairs take two patients at 09:00; a third 295-minute infusion no longer fits
    # before closing that day, so the third patient's cycle moved within the window.
    assert len(first_day) == 2
    assert {r.starts_at for r in first_day} == {first_day[0].starts_at}


def test_parallel_reschedules_into_one_slot_give_one_200_and_clean_409s(databases):
    # Hardening: the losers used to get 500 (building the 409 from a rolled-back session).
    url = databases.create()
    app = create_app(make_settings(url))
    state = app.extensions["ivig"]
    session = state.session_factory()
    center = make_center(session, "Contested Center", chairs=3)
    actor = system_actor("test")
    patients = [
        make_patient(session, actor, center, state.settings, mrn=f"R-{n}") for n in range(6)
    ]
    session.commit()
    runner = app.test_cli_runner()
    runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "doc@test.clinic",
            "--name",
            "Doc",
            "--role",
            "physician",
            "--password",
            "doctor-password",
        ]
    )
    token = runner.invoke(args=["tokens", "create", "--email", "doc@test.clinic"]).output
    headers = {"Authorization": f"Bearer {token.strip().splitlines()[-1]}"}
    monday = next_monday()
    client = app.test_client()
    for patient in patients:
        response = client.post(
            f"/api/v1/patients/{patient.id}/regimens",
            headers=headers,
            json={
                "product": "Octagam 10%",
                "dose_g_per_kg": 1.0,
                "days_per_cycle": 1,
                "interval_weeks": 8,
                "starts_on": monday.isoformat(),
                "preferred_time": "09:00",
                "reason": "start",
            },
        )
        assert response.status_code == 201, response.json
    firsts = session.execute(
        sa.select(Infusion.id, Infusion.version).where(
            Infusion.cycle_number == 1, Infusion.status == InfusionStatus.SCHEDULED
        )
    ).all()
    chair = center.chairs[0].id
    session.rollback()  # SQLite: a reading transaction here would hold the write lock
    wednesday_ten = dt.datetime.combine(
        monday + dt.timedelta(days=2), dt.time(15), tzinfo=dt.UTC
    ).isoformat()
    barrier = threading.Barrier(len(firsts))
    statuses: list[int] = []

    def move(infusion_id: int) -> None:
        local = app.test_client()
        barrier.wait()
        response = local.post(
            f"/api/v1/infusions/{infusion_id}/reschedule",
            headers=headers,
            json={"chair_id": chair, "starts_at": wednesday_ten},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=move, args=(row.id,)) for row in firsts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = session.execute(
        sa.select(Infusion.id).where(
            Infusion.chair_id == chair,
            Infusion.starts_at == dt.datetime.fromisoformat(wednesday_ten),
        )
    ).all()
    session.close()
    state.engine.dispose()
    assert sorted(statuses) == [200] + [409] * (len(firsts) - 1), statuses
    assert len(rows) == 1


if BACKEND == "postgresql":  # SQLite serialises writers itself; the lock exists only here

    def test_bookings_at_one_center_wait_for_each_other_and_other_centers_do_not(databases):
        # Hardening: two regimen changes at one center deadlocked under 50 writers (each
        # wrote a slot the other had read as free, then waited on the other's row).
        url = databases.create()
        app = create_app(make_settings(url))
        state = app.extensions["ivig"]
        setup = state.session_factory()
        busy, quiet = make_center(setup, "Busy"), make_center(setup, "Quiet")
        busy_id, quiet_id = busy.id, quiet.id
        setup.commit()
        setup.close()
        first, second = state.session_factory(), state.session_factory()
        window = (
            dt.datetime(2027, 1, 4, tzinfo=dt.UTC),
            dt.datetime(2027, 1, 5, tzinfo=dt.UTC),
        )
        try:
            scheduling.busy_intervals(first, busy_id, *window)  # booking at Busy, not committed
            second.execute(sa.text("SET lock_timeout = '300ms'"))
            scheduling.busy_intervals(second, quiet_id, *window)  # another center: no wait
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                scheduling.busy_intervals(second, busy_id, *window)
            second.rollback()
            first.commit()  # the first booker is done: the next one goes ahead
            second.execute(sa.text("SET lock_timeout = '300ms'"))
            assert scheduling.busy_intervals(second, busy_id, *window) == {}
        finally:
            first.close()
            second.close()
            state.engine.dispose()


def test_a_booking_race_is_told_by_the_constraint_not_by_any_refusal(db_session, settings):
    # House in order: the race used to be recognised by matching words in the error text.
    from app.services import regimens as regimen_service
    from tests.db.clinic_fixtures import regimen_input

    center = make_center(db_session, "Race Center", chairs=2)
    actor = system_actor("test")
    patient = make_patient(db_session, actor, center, settings, mrn="RACE-1")
    db_session.commit()
    regimen, _plan = regimen_service.set_regimen(
        db_session, actor, patient.id, regimen_input(starts_on=next_monday()), settings
    )
    first, second = db_session.scalars(
        sa.select(Infusion).where(Infusion.patient_id == patient.id).order_by(Infusion.id)
    ).all()[:2]

    def refusal(statement: str, **params: object) -> sa.exc.DBAPIError:
        nested = db_session.begin_nested()
        with pytest.raises(sa.exc.DBAPIError) as caught:
            db_session.execute(sa.text(statement), params)
        nested.rollback()
        return caught.value

    overlap = refusal(
        "UPDATE infusions SET chair_id = :chair, starts_at = :start, ends_at = :end, "
        "occupied_until = :until, planned_date = :day WHERE id = :id",
        chair=first.chair_id,
        start=first.starts_at,
        end=first.ends_at,
        until=first.occupied_until,
        day=first.planned_date,
        id=second.id,
    )
    assert scheduling.is_booking_race(overlap)
    copied = ", ".join(c.name for c in sa.inspect(type(regimen)).columns if c.name not in ("id",))
    duplicate = refusal(
        f"INSERT INTO regimens ({copied}) SELECT {copied} FROM regimens WHERE id = :id",  # noqa: S608 (the model's column names)
        id=regimen.id,
    )
    assert scheduling.is_booking_race(duplicate)
    unknown_status = refusal("UPDATE infusions SET status = 'bogus' WHERE id = :id", id=first.id)
    assert not scheduling.is_booking_race(unknown_status)
