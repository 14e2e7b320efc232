"""The steroid taper API over HTTP: preview, plans, the approval queue and step actions.

Steps become due by the calendar, so plans that need a due step are set through the service
with a start date in the past (today - 28 days makes step 1 due today). Every date is
computed from the center's wall clock (America/New_York), never a fixed calendar date.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app import clock, create_app
from app.models import AuditEvent, TaperPlan, TaperStep
from app.services import tapers as taper_service
from app.services.context import Actor, system_actor
from tests.conftest import make_settings
from tests.db.clinic_fixtures import make_center, make_patient

TIMEZONE = "America/New_York"

# 60 mg prednisone through the clinic's bands (config.toml [[steroids.bands]]): -10 mg above
# 40, -5 mg above 20, -2.5 mg above 10, then -1 mg a month; 28 days on the start dose.
BANDED_60 = [60, 50, 40, 35, 30, 25, 20, 17.5, 15, 12.5, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
BANDED_60_DAYS = [28] + [14] * 9 + [28] * 10 + [1]


def today() -> dt.date:
    return clock.clinic_today(TIMEZONE)


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def error_of(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


def count_rows(db_session, model) -> int:
    return db_session.scalar(sa.select(sa.func.count()).select_from(model))


def taper_rows(db_session) -> tuple[int, int, int]:
    return tuple(count_rows(db_session, m) for m in (TaperPlan, TaperStep, AuditEvent))


def audit_count(db_session, action: str, entity_id: int) -> int:
    return db_session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == action, AuditEvent.entity_id == str(entity_id))
    )


def tablets(*pairs: tuple[float, int]) -> list[dict]:
    return [{"strength_mg": strength, "count": count} for strength, count in pairs]


class Staff:
    def __init__(self, make_user, bearer) -> None:
        self.physician = make_user("physician")
        self.nurse = make_user("nurse")
        self.admin = make_user("admin")
        self.doctor = bearer(self.physician)
        self.nursing = bearer(self.nurse)
        self.admin_headers = bearer(self.admin)

    @property
    def doctor_actor(self) -> Actor:
        return Actor(label=self.physician.email, user_id=self.physician.id, role="physician")


@pytest.fixture
def staff(make_user, bearer) -> Staff:
    return Staff(make_user, bearer)


@pytest.fixture
def patient(db_session, settings, staff):
    center = make_center(db_session)
    patient = make_patient(db_session, system_actor("test"), center, settings, mrn="TP-1")
    db_session.commit()
    return patient


def preview_body(start: dt.date | None = None, **changes: object) -> dict:
    body: dict = {
        "drug": "prednisone",
        "start_mg": 60,
        "template": "banded",
        "starts_on": (start or today()).isoformat(),
    }
    body.update(changes)
    return body


def preview(client, headers, **changes):
    return client.post("/api/v1/dosing/taper", headers=headers, json=preview_body(**changes))


def plan_in_past(
    db_session, settings, staff: Staff, patient, days_ago: int = 28, **changes: object
):
    """Set a plan through the service as if it had been set `days_ago` days ago."""
    start = today() - days(days_ago)
    values: dict = {
        "drug": "prednisone",
        "start_mg": 60.0,
        "template": "banded",
        "starts_on": start,
        "reason": "Active DM, starting the taper",
    }
    values.update(changes)
    plan = taper_service.create_plan(
        db_session,
        staff.doctor_actor,
        patient.id,
        taper_service.PlanInput(**values),
        settings,
        today=start,
    )
    db_session.commit()
    return plan


def short_stop_plan(db_session, settings, staff: Staff, patient):
    """5 mg for 28 days, then the stop, which is due today."""
    return plan_in_past(
        db_session,
        settings,
        staff,
        patient,
        start_mg=5.0,
        template="custom",
        params={"steps": [{"mg_per_day": 5, "min_days": 28}, {"mg_per_day": 0, "min_days": 1}]},
    )


def get_taper(client, headers, patient_id: int) -> dict:
    response = client.get(f"/api/v1/patients/{patient_id}/taper", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def due_ids(client, staff: Staff) -> list[int]:
    response = client.get("/api/v1/taper-steps/due", headers=staff.doctor)
    assert response.status_code == 200, response.json
    return [step["id"] for step in response.json["steps"]]


def step_action(client, headers, step_id: int, action: str, **body: object):
    return client.post(f"/api/v1/taper-steps/{step_id}/{action}", headers=headers, json=body)


# --- preview ---------------------------------------------------------------------------------


def test_preview_lays_out_the_banded_taper_from_60_mg_and_saves_nothing(client, staff, db_session):
    start = today() + days(3)
    before = taper_rows(db_session)
    answers = [preview(client, h, start=start) for h in (staff.nursing, staff.doctor)]
    answers.append(preview(client, staff.admin_headers, start=start))
    for response in answers:
        assert response.status_code == 200, response.json
    assert answers[0].json == answers[1].json == answers[2].json
    body = answers[0].json
    steps = body["steps"]
    assert body["drug"] == "prednisone"
    assert [s["mg_per_day"] for s in steps] == BANDED_60
    assert [s["min_days"] for s in steps] == BANDED_60_DAYS
    assert [s["index"] for s in steps] == list(range(len(BANDED_60)))
    assert steps[0]["starts_on"] == start.isoformat()
    assert steps[0]["ends_on"] == (start + days(28)).isoformat()
    for previous, step in itertools.pairwise(steps):
        assert step["starts_on"] == previous["ends_on"]
    for step in steps:
        length = dt.date.fromisoformat(step["ends_on"]) - dt.date.fromisoformat(step["starts_on"])
        assert length == days(step["min_days"])
    by_dose = {s["mg_per_day"]: s for s in steps}
    assert by_dose[60]["tablets"] == tablets((50, 1), (10, 1))
    assert by_dose[17.5]["tablets"] == tablets((10, 1), (5, 1), (2.5, 1))
    assert by_dose[9]["tablets"] == tablets((5, 1), (1, 4))
    assert by_dose[0]["tablets"] == []
    # Only the stop, after doses below the physiological floor, needs a morning cortisol.
    assert [s["requires_cortisol"] for s in steps] == [False] * (len(steps) - 1) + [True]
    assert (
        steps[-1]["ends_on"]
        == (dt.date.fromisoformat(steps[-1]["starts_on"]) + days(1)).isoformat()
    )
    cumulative = [s["cumulative_prednisone_mg"] for s in steps]
    assert cumulative == sorted(cumulative)
    running = 0.0
    for step in steps:
        running += step["mg_per_day"] * step["min_days"]
        assert step["cumulative_prednisone_mg"] == pytest.approx(running)
    assert running == 6650  # 60 x 28 + 245 x 14 + 55 x 28
    assert body["total_prednisone_mg"] == pytest.approx(running)
    assert taper_rows(db_session) == before


def test_preview_fixed_template_lowers_by_the_decrement_then_slows_below_the_floor(client, staff):
    response = preview(
        client, staff.nursing, start_mg=20, template="fixed", decrement_mg=5, step_days=7
    )
    assert response.status_code == 200, response.json
    steps = response.json["steps"]
    assert [s["mg_per_day"] for s in steps] == [20, 15, 10, 5, 4, 3, 2, 1, 0]
    # At or below 7.5 mg (the floor) steps last 28 days and drop at most 1 mg.
    assert [s["min_days"] for s in steps] == [28, 7, 7, 28, 28, 28, 28, 28, 1]
    assert steps[-1]["requires_cortisol"] is True
    assert response.json["total_prednisone_mg"] == pytest.approx(
        sum(s["mg_per_day"] * s["min_days"] for s in steps)
    )


def test_preview_percent_template_lowers_by_a_share_of_the_dose(client, staff):
    response = preview(
        client, staff.nursing, start_mg=40, template="percent", percent=25, step_days=7
    )
    assert response.status_code == 200, response.json
    steps = response.json["steps"]
    doses = [s["mg_per_day"] for s in steps]
    assert doses[:3] == [40, 30, 22.5]
    assert doses[-1] == 0 and doses == sorted(doses, reverse=True)
    assert len(set(doses)) == len(doses)
    assert all(s["tablets"] is not None for s in steps), "every dose is made from tablets"
    assert [s["min_days"] for s in steps[1:3]] == [7, 7]


def test_preview_methylprednisolone_counts_prednisone_equivalent(client, staff):
    steps_in = [
        {"mg_per_day": 32, "min_days": 28},
        {"mg_per_day": 28, "min_days": 14},
        {"mg_per_day": 0, "min_days": 1},
    ]
    response = preview(
        client,
        staff.nursing,
        drug="methylprednisolone",
        start_mg=32,
        template="custom",
        steps=steps_in,
    )
    assert response.status_code == 200, response.json
    body = response.json
    steps = body["steps"]
    assert body["drug"] == "methylprednisolone"
    assert steps[0]["mg_per_day"] == 32 and steps[0]["tablets"] == tablets((32, 1))
    assert steps[0]["cumulative_prednisone_mg"] == pytest.approx(32 * 28 * 1.25)
    drug_mg = sum(s["mg_per_day"] * s["min_days"] for s in steps)
    assert body["total_prednisone_mg"] == pytest.approx(drug_mg * 1.25)


def test_a_banded_methylprednisolone_taper_says_its_tablets_cannot_step_below_the_floor(
    client, staff
):
    # 2 mg tablets are 2.5 mg prednisone-equivalent (1.25 on alternate days): more than the
    # 1 mg the rules allow below 7.5 mg. The answer says so instead of stepping 2.5 mg.
    response = preview(client, staff.nursing, drug="methylprednisolone", start_mg=32)
    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "drug" and "cannot lower 6 mg" in error["message"]
    assert "oral solution" in error["message"]


@pytest.mark.parametrize(
    ("change", "field", "in_message"),
    [
        ({"drug": "cortisone"}, "drug", ""),
        ({"start_mg": 150}, "start_mg", "100"),
        ({"start_mg": -10}, "start_mg", ""),
        ({"template": "fixed", "step_days": 7}, "decrement_mg", "decrement_mg"),
        (
            {
                "template": "custom",
                "start_mg": 10,
                "steps": [
                    {"mg_per_day": 10, "min_days": 14},
                    {"mg_per_day": 20, "min_days": 14},
                    {"mg_per_day": 0, "min_days": 1},
                ],
            },
            "steps[1].mg_per_day",
            "never increases",
        ),
        (
            {
                "template": "custom",
                "start_mg": 5,
                "steps": [
                    {"mg_per_day": 5, "min_days": 28},
                    {"mg_per_day": 0.3, "min_days": 28},
                    {"mg_per_day": 0, "min_days": 1},
                ],
            },
            "steps[1].mg_per_day",
            "cannot be made exactly from tablets",
        ),
    ],
    ids=[
        "unknown-drug",
        "start-above-maximum",
        "negative-start",
        "fixed-without-decrement",
        "custom-increases",
        "custom-not-makeable",
    ],
)
def test_preview_refuses_bad_input_naming_the_field(
    client, staff, db_session, change, field, in_message
):
    before = taper_rows(db_session)
    response = preview(client, staff.nursing, **change)
    assert response.status_code == 422, response.json
    error = error_of(response)
    assert error["field"] == field and error["code"] == "invalid"
    assert error["message"].startswith(f"{field}: ")
    assert in_message in error["message"]
    assert taper_rows(db_session) == before


def test_preview_needs_a_token(client):
    response = client.post("/api/v1/dosing/taper", json=preview_body())
    assert response.status_code == 401 and error_of(response)["code"] == "unauthenticated"


# --- plans -----------------------------------------------------------------------------------


def plan_body(**changes: object) -> dict:
    return preview_body(**changes) | {"reason": "Active DM, starting the taper"} | changes


def test_physician_sets_a_plan_and_the_patient_page_data_shows_todays_dose(
    client, staff, patient, db_session
):
    url = f"/api/v1/patients/{patient.id}/tapers"
    response = client.post(url, headers=staff.doctor, json=plan_body())
    assert response.status_code == 201, response.json
    plan = response.json
    assert plan["version"] == 1 and plan["patient_id"] == patient.id
    assert plan["drug"] == "prednisone" and plan["start_mg"] == 60
    assert [s["mg_per_day"] for s in plan["steps"]] == BANDED_60
    assert [s["status"] for s in plan["steps"]] == ["active"] + ["planned"] * 20
    first = plan["steps"][0]
    assert first["started_on"] == today().isoformat()
    assert first["approved_by_id"] == staff.physician.id
    assert audit_count(db_session, "taper.create", plan["id"]) == 1

    # A nurse reads the current taper too.
    taper = get_taper(client, staff.nursing, patient.id)
    assert taper["plan"]["id"] == plan["id"]
    assert taper["active_step_id"] == first["id"]
    assert taper["current_mg_per_day"] == 60
    assert taper["current_tablets"] == tablets((50, 1), (10, 1))
    assert taper["next_step_id"] == plan["steps"][1]["id"]
    assert taper["next_due_on"] == (today() + days(28)).isoformat()
    assert taper["cumulative_to_date_prednisone_mg"] == 60  # today's dose
    assert taper["cumulative_projected_prednisone_mg"] == 6650


def test_a_patient_without_a_plan_has_no_dose(client, staff, patient):
    taper = get_taper(client, staff.nursing, patient.id)
    assert taper["plan"] is None
    assert taper["current_mg_per_day"] is None and taper["current_tablets"] is None
    assert taper["next_due_on"] is None
    assert taper["cumulative_to_date_prednisone_mg"] == 0


def test_a_nurse_cannot_set_a_plan(client, staff, patient, db_session):
    before = taper_rows(db_session)
    response = client.post(
        f"/api/v1/patients/{patient.id}/tapers", headers=staff.nursing, json=plan_body()
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert taper_rows(db_session) == before
    assert get_taper(client, staff.nursing, patient.id)["plan"] is None


def test_a_new_version_needs_the_current_version_and_replaces_the_old_steps(
    client, staff, patient, db_session
):
    url = f"/api/v1/patients/{patient.id}/tapers"
    first = client.post(url, headers=staff.doctor, json=plan_body())
    assert first.status_code == 201, first.json

    before = taper_rows(db_session)
    for stale in (None, 2):
        body = plan_body(start_mg=40) | {"based_on_version": stale}
        response = client.post(url, headers=staff.doctor, json=body)
        assert response.status_code == 409, response.json
        error = error_of(response)
        assert error["field"] == "based_on_version" and error["code"] == "conflict"
        assert "version 1" in error["message"]
    assert taper_rows(db_session) == before
    assert get_taper(client, staff.doctor, patient.id)["current_mg_per_day"] == 60

    second = client.post(
        url, headers=staff.doctor, json=plan_body(start_mg=40) | {"based_on_version": 1}
    )
    assert second.status_code == 201, second.json
    assert second.json["version"] == 2
    taper = get_taper(client, staff.doctor, patient.id)
    assert taper["plan"]["version"] == 2 and taper["current_mg_per_day"] == 40
    old = db_session.scalars(
        sa.select(TaperStep).where(TaperStep.plan_id == first.json["id"])
    ).all()
    assert sorted({s.status for s in old}) == ["cancelled", "completed"]


# --- the approval queue ----------------------------------------------------------------------


def test_a_due_step_is_listed_and_approving_it_starts_the_new_dose(
    client, staff, patient, db_session, settings
):
    plan = plan_in_past(db_session, settings, staff, patient)
    step0, step1 = plan.steps[0], plan.steps[1]
    taper = get_taper(client, staff.nursing, patient.id)
    assert taper["next_due_on"] == today().isoformat()
    assert taper["current_mg_per_day"] == 60

    response = client.get("/api/v1/taper-steps/due", headers=staff.doctor)
    assert response.status_code == 200, response.json
    [due] = response.json["steps"]
    assert due["id"] == step1.id and due["mg_per_day"] == 50
    assert due["patient_name"] == "Example, TP-1" and due["drug"] == "prednisone"
    assert due["status"] == "planned" and due["earliest_on"] == today().isoformat()

    response = step_action(client, staff.doctor, step1.id, "approve", version=due["version"])
    assert response.status_code == 200, response.json
    approved = response.json
    assert approved["status"] == "active"
    assert approved["started_on"] == today().isoformat()
    assert approved["approved_by_id"] == staff.physician.id
    assert approved["version"] == due["version"] + 1
    db_session.expire_all()
    assert db_session.get(TaperStep, step0.id).status == "completed"
    assert db_session.get(TaperStep, step0.id).ended_on == today()
    assert audit_count(db_session, "taper_step.approve", step1.id) == 1

    taper = get_taper(client, staff.nursing, patient.id)
    assert taper["current_mg_per_day"] == 50
    assert taper["current_tablets"] == tablets((50, 1))
    assert taper["next_due_on"] == (today() + days(14)).isoformat()
    assert due_ids(client, staff) == []


def test_a_step_that_is_not_due_cannot_be_approved(client, staff, patient, db_session, settings):
    plan = plan_in_past(db_session, settings, staff, patient, days_ago=20)
    step1 = plan.steps[1]
    assert due_ids(client, staff) == []
    before = taper_rows(db_session)
    response = step_action(client, staff.doctor, step1.id, "approve")
    assert response.status_code == 409, response.json
    error = error_of(response)
    assert error["field"] == "status"
    assert (today() + days(8)).isoformat() in error["message"]
    assert taper_rows(db_session) == before
    assert get_taper(client, staff.doctor, patient.id)["current_mg_per_day"] == 60


def test_exposure_to_date_counts_the_active_dose_while_the_next_step_awaits_approval(
    client, staff, patient, db_session, settings
):
    # Step 1 (50 mg) fell due a week ago and nobody approved it: the patient still takes 60 mg.
    plan_in_past(db_session, settings, staff, patient, days_ago=35)
    taper = get_taper(client, staff.nursing, patient.id)
    assert taper["current_mg_per_day"] == 60
    assert taper["next_due_on"] == (today() - days(7)).isoformat()
    assert taper["cumulative_to_date_prednisone_mg"] == 60 * 36  # 36 days at 60 mg, today too


def test_a_nurse_cannot_see_the_queue_or_approve(client, staff, patient, db_session, settings):
    plan = plan_in_past(db_session, settings, staff, patient)
    assert client.get("/api/v1/taper-steps/due", headers=staff.nursing).status_code == 403
    response = step_action(client, staff.nursing, plan.steps[1].id, "approve")
    assert response.status_code == 403
    assert get_taper(client, staff.nursing, patient.id)["current_mg_per_day"] == 60
    assert audit_count(db_session, "taper_step.approve", plan.steps[1].id) == 0


def test_approving_twice_or_with_a_stale_version_is_409(
    client, staff, patient, db_session, settings
):
    plan = plan_in_past(db_session, settings, staff, patient)
    step1 = plan.steps[1]
    stale = step_action(client, staff.doctor, step1.id, "approve", version=step1.version + 1)
    assert stale.status_code == 409, stale.json
    assert error_of(stale)["field"] == "version"
    assert get_taper(client, staff.doctor, patient.id)["current_mg_per_day"] == 60

    ok = step_action(client, staff.doctor, step1.id, "approve", version=step1.version)
    assert ok.status_code == 200, ok.json
    again = step_action(client, staff.doctor, step1.id, "approve")
    assert again.status_code == 409
    assert error_of(again)["field"] == "status" and "active" in error_of(again)["message"]
    # The same stale version the first approval used.
    replay = step_action(client, staff.doctor, step1.id, "approve", version=step1.version)
    assert replay.status_code == 409 and error_of(replay)["field"] == "version"
    assert audit_count(db_session, "taper_step.approve", step1.id) == 1


def test_two_physicians_approving_at_once_start_the_step_once(databases):
    url = databases.create()
    app = create_app(make_settings(url))
    state = app.extensions["ivig"]
    session = state.session_factory()
    try:
        center = make_center(session, "Race Center")
        patient = make_patient(session, system_actor("test"), center, state.settings, mrn="R-1")
        session.commit()
        start = today() - days(28)
        plan = taper_service.create_plan(
            session,
            system_actor("test"),
            patient.id,
            taper_service.PlanInput(
                drug="prednisone",
                start_mg=60,
                template="banded",
                starts_on=start,
                reason="race",
            ),
            state.settings,
            today=start,
        )
        step_id, version = plan.steps[1].id, plan.steps[1].version
        session.commit()
        runner = app.test_cli_runner()
        created = runner.invoke(
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
        assert created.exit_code == 0, created.output
        token = runner.invoke(args=["tokens", "create", "--email", "doc@test.clinic"]).output
        headers = {"Authorization": f"Bearer {token.strip().splitlines()[-1]}"}

        barrier = threading.Barrier(2)
        answers: list[tuple[int, dict]] = []

        def approve(body: dict) -> None:
            client = app.test_client()
            barrier.wait()
            response = client.post(
                f"/api/v1/taper-steps/{step_id}/approve", json=body, headers=headers
            )
            answers.append((response.status_code, response.get_json()))

        threads = [
            threading.Thread(target=approve, args=(body,)) for body in ({"version": version}, {})
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert time.monotonic() - started < 60, "the approvals deadlocked"
        assert sorted(code for code, _ in answers) == [200, 409], answers
        refused = next(body for code, body in answers if code == 409)
        assert refused["error"]["field"] in ("status", "version")
        session.expire_all()
        approvals = session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "taper_step.approve")
        )
        assert approvals == 1
        statuses = session.scalars(
            sa.select(TaperStep.status)
            .where(TaperStep.plan_id == plan.id)
            .order_by(TaperStep.position)
        ).all()
        assert statuses[:3] == ["completed", "active", "planned"]
    finally:
        session.close()
        state.engine.dispose()


@pytest.fixture
def server_date_differs_from_the_center(monkeypatch):
    """Run the app process in a time zone whose date is not New York's date right now.

    Servers usually run on UTC; from 19:00 New York time on, that is already tomorrow.
    """
    hour = dt.datetime.now(ZoneInfo(TIMEZONE)).hour
    monkeypatch.setenv("TZ", "Etc/GMT-14" if hour >= 6 else "Etc/GMT+12")
    time.tzset()
    assert dt.date.today() != today(), "the server's date must differ from New York's"
    yield
    monkeypatch.undo()
    time.tzset()


def test_due_and_approval_follow_the_centers_date_not_the_servers(
    client, staff, db_session, settings, server_date_differs_from_the_center
):
    center = make_center(db_session)
    due_today = make_patient(db_session, system_actor("test"), center, settings, mrn="TZ-1")
    due_tomorrow = make_patient(db_session, system_actor("test"), center, settings, mrn="TZ-2")
    db_session.commit()
    today_step = plan_in_past(db_session, settings, staff, due_today, days_ago=28).steps[1]
    tomorrow_step = plan_in_past(db_session, settings, staff, due_tomorrow, days_ago=27).steps[1]
    assert (
        get_taper(client, staff.nursing, due_tomorrow.id)["next_due_on"]
        == (today() + days(1)).isoformat()
    )

    assert due_ids(client, staff) == [today_step.id]
    early = step_action(client, staff.doctor, tomorrow_step.id, "approve")
    assert early.status_code == 409, early.json
    approved = step_action(client, staff.doctor, today_step.id, "approve")
    assert approved.status_code == 200, approved.json
    assert approved.json["started_on"] == today().isoformat()


# --- hold, release, skip ---------------------------------------------------------------------


@pytest.mark.parametrize("action", ["hold", "release", "skip"])
def test_hold_release_and_skip_need_a_reason(client, staff, patient, db_session, settings, action):
    plan = plan_in_past(db_session, settings, staff, patient)
    before = taper_rows(db_session)
    response = step_action(client, staff.doctor, plan.steps[1].id, action, reason="   ")
    assert response.status_code == 422, response.json
    assert error_of(response)["field"] == "reason"
    assert taper_rows(db_session) == before
    assert due_ids(client, staff) == [plan.steps[1].id]


def test_holding_the_due_step_takes_it_off_the_queue_until_released(
    client, staff, patient, db_session, settings
):
    plan = plan_in_past(db_session, settings, staff, patient)
    step1 = plan.steps[1]
    held = step_action(client, staff.doctor, step1.id, "hold", reason="Rash flaring")
    assert held.status_code == 200, held.json
    assert held.json["status"] == "held" and held.json["status_reason"] == "Rash flaring"
    assert due_ids(client, staff) == []
    assert audit_count(db_session, "taper_step.held", step1.id) == 1
    approve = step_action(client, staff.doctor, step1.id, "approve")
    assert approve.status_code == 409 and error_of(approve)["field"] == "status"
    assert get_taper(client, staff.nursing, patient.id)["current_mg_per_day"] == 60

    released = step_action(client, staff.doctor, step1.id, "release", reason="Rash settled")
    assert released.status_code == 200, released.json
    assert released.json["status"] == "planned"
    assert due_ids(client, staff) == [step1.id]


def test_skipping_the_due_step_moves_on_to_the_next_dose(
    client, staff, patient, db_session, settings
):
    plan = plan_in_past(db_session, settings, staff, patient)
    step1, step2 = plan.steps[1], plan.steps[2]
    skipped = step_action(client, staff.doctor, step1.id, "skip", reason="Doing well")
    assert skipped.status_code == 200, skipped.json
    assert skipped.json["status"] == "skipped"
    taper = get_taper(client, staff.nursing, patient.id)
    assert taper["current_mg_per_day"] == 60
    assert taper["next_step_id"] == step2.id
    assert step_action(client, staff.doctor, step1.id, "approve").status_code == 409


def test_the_final_stop_cannot_be_skipped(client, staff, patient, db_session, settings):
    plan = short_stop_plan(db_session, settings, staff, patient)
    stop = plan.steps[-1]
    assert stop.requires_cortisol
    response = step_action(client, staff.doctor, stop.id, "skip", reason="Feels fine")
    assert response.status_code == 409, response.json
    assert error_of(response)["field"] == "status" and "final stop" in error_of(response)["message"]
    assert due_ids(client, staff) == [stop.id]


# --- change a step's dose --------------------------------------------------------------------


def test_lowering_a_planned_step_keeps_the_plan_valid(client, staff, patient, db_session, settings):
    plan = plan_in_past(db_session, settings, staff, patient)
    step1 = plan.steps[1]
    response = step_action(
        client, staff.doctor, step1.id, "dose", mg_per_day=45, reason="Slower start"
    )
    assert response.status_code == 200, response.json
    assert response.json["mg_per_day"] == 45 and response.json["status"] == "planned"
    assert audit_count(db_session, "taper_step.change_dose", step1.id) == 1
    approved = step_action(client, staff.doctor, step1.id, "approve")
    assert approved.status_code == 200, approved.json
    taper = get_taper(client, staff.nursing, patient.id)
    assert taper["current_mg_per_day"] == 45
    assert taper["current_tablets"] == tablets((20, 2), (5, 1))


def test_raising_a_step_above_the_one_before_is_422(client, staff, patient, db_session, settings):
    plan = plan_in_past(db_session, settings, staff, patient)
    step2 = plan.steps[2]  # 40 mg after 50 mg
    before = taper_rows(db_session)
    response = step_action(client, staff.doctor, step2.id, "dose", mg_per_day=55, reason="Flare")
    assert response.status_code == 422, response.json
    error = error_of(response)
    assert error["field"] == "mg_per_day" and "never increases" in error["message"]
    assert taper_rows(db_session) == before
    db_session.expire_all()
    assert db_session.get(TaperStep, step2.id).mg_per_day == 40


def test_an_active_or_completed_step_cannot_be_edited(client, staff, patient, db_session, settings):
    plan = plan_in_past(db_session, settings, staff, patient)
    step0, step1 = plan.steps[0], plan.steps[1]
    assert step_action(client, staff.doctor, step1.id, "approve").status_code == 200
    for step, status in ((step0, "completed"), (step1, "active")):
        response = step_action(client, staff.doctor, step.id, "dose", mg_per_day=45, reason="x")
        assert response.status_code == 409, response.json
        error = error_of(response)
        assert error["field"] == "status" and status in error["message"]
    assert get_taper(client, staff.nursing, patient.id)["current_mg_per_day"] == 50


# --- the final stop --------------------------------------------------------------------------


def test_the_final_stop_needs_a_morning_cortisol_or_an_override(
    client, staff, patient, db_session, settings
):
    plan = short_stop_plan(db_session, settings, staff, patient)
    stop = plan.steps[-1]
    assert due_ids(client, staff) == [stop.id]
    before = taper_rows(db_session)

    missing = step_action(client, staff.doctor, stop.id, "approve")
    assert missing.status_code == 422, missing.json
    assert error_of(missing)["field"] == "cortisol_nmol_l"
    assert "morning cortisol" in error_of(missing)["message"]

    grey = step_action(client, staff.doctor, stop.id, "approve", cortisol_nmol_l=200)
    assert grey.status_code == 422, grey.json
    assert error_of(grey)["field"] == "cortisol_nmol_l"
    assert "continue the current dose and recheck" in error_of(grey)["message"]

    low = step_action(client, staff.doctor, stop.id, "approve", cortisol_nmol_l=100)
    assert low.status_code == 422 and "do not stop" in error_of(low)["message"]

    assert taper_rows(db_session) == before
    assert get_taper(client, staff.nursing, patient.id)["current_mg_per_day"] == 5

    ok = step_action(client, staff.doctor, stop.id, "approve", cortisol_nmol_l=350)
    assert ok.status_code == 200, ok.json
    assert ok.json["status"] == "active" and ok.json["cortisol_nmol_l"] == 350
    taper = get_taper(client, staff.nursing, patient.id)
    assert taper["current_mg_per_day"] == 0 and taper["current_tablets"] == []
    assert taper["next_due_on"] is None


def test_a_physician_may_stop_without_cortisol_giving_an_override_reason(
    client, staff, patient, db_session, settings
):
    plan = short_stop_plan(db_session, settings, staff, patient)
    stop = plan.steps[-1]
    response = step_action(
        client, staff.doctor, stop.id, "approve", override_reason="Cortisol drawn, lab closed"
    )
    assert response.status_code == 200, response.json
    assert response.json["status"] == "active" and response.json["cortisol_nmol_l"] is None
    db_session.expire_all()
    assert db_session.get(TaperStep, stop.id).cortisol_override_reason == (
        "Cortisol drawn, lab closed"
    )
    assert get_taper(client, staff.nursing, patient.id)["current_mg_per_day"] == 0
