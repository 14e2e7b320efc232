"""The home page is the day's work for the role (clinic setup): the nurse's infusions today
and what waits for a chair, the physician's decisions, the admin's scheduler."""

from __future__ import annotations

import datetime as dt

from app import clock
from app.services import centers as center_service
from app.services import health
from app.services.context import Actor
from tests.db.clinic_fixtures import NEW_YORK
from tests.web.test_care_pages import logged_in, text_of
from tests.web.test_closures import book, clinic

__all__ = ["clinic"]


def test_the_nurse_sees_todays_infusions_by_time_and_what_waits(
    app, clinic, db_session, settings, make_user, set_clock
):
    monday = dt.date(2027, 3, 1)
    book(db_session, clinic, settings, monday)
    set_clock(dt.datetime.combine(monday, dt.time(7), tzinfo=NEW_YORK))
    home = text_of(logged_in(app, clinic.nurse).get("/"))
    assert home.count('data-testid="today-infusion"') == 1
    assert "09:00–13:55" in home and "Example, CL-1" in home and "MRN CL-1" in home
    assert 'data-testid="waiting-count"' not in home

    admin = make_user("admin")
    actor = Actor(label=admin.email, user_id=admin.id, role="admin")
    for chair in clinic.center.chairs:
        center_service.update_chair(
            db_session,
            actor,
            chair.id,
            center_service.ChairInput(chair.name, active=False),
            settings,
            clock.now(),
        )
    home = text_of(logged_in(app, clinic.nurse).get("/"))
    assert "days waiting for a chair: place them" in home
    assert f'href="/centers/{clinic.center.id}/placements"' in home


def test_the_physician_sees_counts_of_what_waits_for_a_decision(app, clinic):
    home = text_of(logged_in(app, clinic.physician).get("/"))
    assert 'data-testid="physician-work"' in home
    assert 'data-testid="pending-count">0<' in home and 'data-testid="due-count">0<' in home


def test_the_admin_sees_whether_the_scheduler_runs(app, db_session, make_user):
    admin = logged_in(app, make_user("admin"))
    home = text_of(admin.get("/"))
    assert "The scheduler has not run yet" in home and "not running" in home
    assert "set up the first center" in home
    health.beat(db_session, "scheduler")
    home = text_of(admin.get("/"))
    assert "Scheduler last seen" in home and "not running" not in home


def test_the_top_bar_finds_a_patient_by_name_mrn_or_birth_date(app, clinic):
    client = logged_in(app, clinic.nurse)
    assert 'data-testid="patient-search"' in text_of(client.get("/"))
    for query in ("exam", "CL-1", "1970-01-01"):
        found = text_of(client.get(f"/patients?q={query}"))
        assert "CL-1" in found, query
    assert "CL-1" not in text_of(client.get("/patients?q=1970-01-02"))
