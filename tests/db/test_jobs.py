"""Every scheduler job body, run as the scheduler runs it (scheduler.jobs.run_in), on the
database under test: what it did is in its run row, a re-run makes nothing twice, a failing job
is recorded with its traceback, and two processes running the daily jobs at once make each
task, infusion and suggestion once."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from app import clock
from app.db import make_engine, make_session_factory
from app.models import (
    AuditEvent,
    CdsTokenId,
    Infusion,
    JobRun,
    Notice,
    Reminder,
    Suggestion,
    WeightMeasurement,
)
from app.services import demo, patients
from scheduler import jobs
from tests.conftest import ROOT, make_settings
from tests.db.clinic_fixtures import at, booked_course

MONDAY = dt.date(2026, 10, 5)


@pytest.fixture
def course(db_session, make_user, settings):
    yield booked_course(db_session, make_user, settings, MONDAY, "patient@example.org")
    clock.set_now(None)


def run(db_session, settings, name: str) -> JobRun:
    result = jobs.run_in(db_session, settings, name, process="test")
    assert result.status == "ok", result.error
    return result


def count(db_session, model, *where) -> int:
    return db_session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0


def test_extend_horizons_books_what_came_inside_and_nothing_twice(db_session, settings, course):
    from tests.db.clinic_fixtures import review_course

    review_course(db_session, course, settings, MONDAY + dt.timedelta(weeks=7))
    clock.set_now(at(MONDAY + dt.timedelta(weeks=9)))
    before = count(db_session, Infusion)
    first = run(db_session, settings, "extend_horizons")
    assert first.counts["booked"] > 0 and first.counts["refused"] == 0
    assert count(db_session, Infusion) == before + first.counts["booked"]
    assert run(db_session, settings, "extend_horizons").counts["booked"] == 0
    assert count(db_session, AuditEvent, AuditEvent.action == "infusions.extend_horizon") == 1


def test_evaluate_rules_records_its_suggestions_once(db_session, settings, course):
    from app.services import assessments

    for weeks, activity in ((-1, 40.0), (8, 20.0), (12, 19.0)):
        assessments.record_assessment(
            db_session,
            course.nursing,
            course.patient.id,
            assessments.AssessmentInput(
                assessed_on=MONDAY + dt.timedelta(weeks=weeks),
                scores={"cdasi_activity": activity},
            ),
            MONDAY + dt.timedelta(weeks=12),
        )
    clock.set_now(at(MONDAY + dt.timedelta(weeks=12), 3))
    first = run(db_session, settings, "evaluate_rules")
    made = count(db_session, Suggestion)
    assert made > 0 and first.counts["suggestions"] == made
    assert run(db_session, settings, "evaluate_rules").counts["suggestions"] == 0
    assert count(db_session, Suggestion) == made


def test_review_due_and_day_before_and_send_reminders(db_session, settings, course):
    clock.set_now(at(MONDAY - dt.timedelta(days=1), 3))
    planned = run(db_session, settings, "day_before_reminders")
    assert planned.counts == {"planned": 1}
    assert run(db_session, settings, "day_before_reminders").counts == {"planned": 0}
    clock.set_now(at(MONDAY + dt.timedelta(weeks=7), 3))
    due = run(db_session, settings, "review_due")
    assert due.counts["measure_tasks"] == 1 and due.counts["review_tasks"] == 1
    assert run(db_session, settings, "review_due").counts["measure_tasks"] == 0
    # No mail server in the test settings: the sweep drops what is due, saying why.
    sent = run(db_session, settings, "send_reminders")
    assert sent.counts["sent"] == 0 and sent.counts["dropped"] == count(db_session, Reminder)
    assert count(db_session, Reminder, Reminder.dropped_reason.is_(None)) == 0


def test_housekeeping_expires_flags_and_prunes(db_session, settings, course):
    from app.services import assessments

    assessments.record_assessment(
        db_session,
        course.nursing,
        course.patient.id,
        assessments.AssessmentInput(assessed_on=MONDAY, scores={"cdasi_activity": 30.0}),
        MONDAY,
    )
    old = Suggestion(
        patient_id=course.patient.id,
        dedupe_key="test:old",
        kind="review_nonresponder",
        rule_id="test",
        rule_version=1,
        indicator="info",
        summary="Old",
        detail="",
        proposal={},
        facts={},
        evidence=[],
        status="pending",
        version=1,
        created_at=at(MONDAY - dt.timedelta(days=60)),
        updated_at=at(MONDAY - dt.timedelta(days=60)),
    )
    db_session.add(old)
    db_session.add(
        JobRun(
            job="housekeeping",
            started_at=at(MONDAY - dt.timedelta(days=90)),
            finished_at=at(MONDAY - dt.timedelta(days=90)),
            status="ok",
            counts={},
            process="old",
        )
    )
    # A CDS Hooks JWT id whose token expired before the run, and one still live.
    for jti, expires_at in (("spent", at(MONDAY, 2)), ("live", at(MONDAY, 4))):
        db_session.add(
            CdsTokenId(
                issuer="https://ehr.test", jti=jti, expires_at=expires_at, used_at=at(MONDAY, 1)
            )
        )
    db_session.commit()
    patients.record_weight(
        db_session, course.nursing, course.patient.id, 112.0, MONDAY, settings, MONDAY
    )
    clock.set_now(at(MONDAY, 3))
    done = run(db_session, settings, "housekeeping")
    assert done.counts == {
        "suggestions_expired": 1,
        "weight_flags": 1,
        "job_runs_pruned": 1,
        "cds_token_ids_purged": 1,
    }
    db_session.expire_all()
    assert [t.jti for t in db_session.scalars(sa.select(CdsTokenId))] == ["live"]
    db_session.refresh(old)
    assert old.status == "expired" and old.decision_reason.startswith("Not decided within 30")
    (flag,) = db_session.scalars(sa.select(Notice).where(Notice.kind == "weight_change"))
    assert flag.user_id == course.physician.id and "+12%" in flag.message
    again = run(db_session, settings, "housekeeping")
    assert again.counts == {
        "suggestions_expired": 0,
        "weight_flags": 0,
        "job_runs_pruned": 0,
        "cds_token_ids_purged": 0,
    }
    assert count(db_session, WeightMeasurement) == 2


def test_a_failing_job_is_recorded_and_the_next_job_still_runs(db_session, settings, monkeypatch):
    def broken(_session, _settings, _now):
        raise RuntimeError("the job broke")

    monkeypatch.setitem(
        jobs.JOBS, "broken", jobs.Job("broken", "breaks", broken, jobs.JOBS["housekeeping"].trigger)
    )
    failed = jobs.run_in(db_session, settings, "broken")
    assert failed.status == "failed" and "RuntimeError: the job broke" in failed.error
    assert jobs.run_in(db_session, settings, "housekeeping").status == "ok"


def test_two_processes_running_the_daily_jobs_at_once_make_everything_once(databases):
    url = databases.create()
    settings = make_settings(url)
    engine = make_engine(url)
    session = make_session_factory(engine, settings)()
    demo.load_demo_data(session, settings)
    with engine.begin() as conn:  # what the demo load made, so the jobs make it again
        conn.execute(sa.delete(Reminder))
        conn.execute(sa.delete(Notice))
    session.close()
    code = (
        "import sys; from scheduler import jobs; "
        f"print([jobs.run({url!r}, name) for name in sys.argv[1:]])"
    )
    names = ["review_due", "extend_horizons", "evaluate_rules", "day_before_reminders"]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, *names],
            cwd=ROOT,
            env={**os.environ, "IVIG_CONFIG": str(ROOT / "config.toml")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [p.communicate(timeout=300) for p in processes]
    assert all(p.returncode == 0 for p in processes), outcomes
    with engine.connect() as conn:
        tasks = conn.execute(sa.select(Notice.key)).scalars().all()
        infusions = conn.execute(
            sa.select(Infusion.patient_id, Infusion.cycle_number, Infusion.day_number).where(
                Infusion.status != "cancelled"
            )
        ).all()
        pending = conn.execute(
            sa.select(Suggestion.patient_id, Suggestion.rule_id).where(
                Suggestion.status == "pending"
            )
        ).all()
        statuses = conn.execute(sa.select(JobRun.status)).scalars().all()
        errors = conn.execute(
            sa.select(JobRun.job, JobRun.error).where(JobRun.status == "failed")
        ).all()
    engine.dispose()
    assert tasks and len(tasks) == len(set(tasks))
    assert len(infusions) == len(set(infusions))
    assert len(pending) == len(set(pending))
    assert set(statuses) <= {"ok", "skipped"} and statuses.count("ok") >= len(names), errors
