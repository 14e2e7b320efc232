"""Change notices and reminders on a real database, sent to a real SMTP server (aiosmtpd):
the right people, at the patient feed's privacy level, exactly once, in batches that survive
a kill and a second scheduler process."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import clock
from app.db import make_engine, make_session_factory
from app.models import Infusion, InfusionStatus, JobRun, Notice, Reminder, User
from app.services import demo, infusions, reminders, worklist
from app.services import regimens as regimen_service
from app.services.context import unit_of_work
from tests.conftest import ROOT, SmtpSink, make_settings
from tests.db.clinic_fixtures import at, booked_course, regimen_input

MONDAY = dt.date(2026, 10, 5)


@pytest.fixture
def course(db_session, make_user, settings):
    """The worked-example patient (e-mail with consent) booked from MONDAY; a home nurse."""
    yield booked_course(db_session, make_user, settings, MONDAY, "patient@example.org")
    clock.set_now(None)


def day_one(db_session, clinic, cycle: int = 1) -> Infusion:
    return db_session.scalars(
        sa.select(Infusion).where(
            Infusion.patient_id == clinic.patient.id,
            Infusion.cycle_number == cycle,
            Infusion.day_number == 1,
        )
    ).one()


def later_same_day(infusion: Infusion, hours: int = 2) -> dt.datetime:
    return infusion.starts_at + dt.timedelta(hours=hours)


def unsent(db_session) -> list[Reminder]:
    return list(
        db_session.scalars(
            sa.select(Reminder).where(Reminder.sent_at.is_(None)).order_by(Reminder.id)
        )
    )


def test_moving_tomorrows_infusion_sends_one_notice_each_without_drug_or_dose(
    db_session, settings, course, smtp_sink
):
    first = day_one(db_session, course)
    clock.set_now(at(MONDAY - dt.timedelta(days=1), 15))
    infusions.reschedule(
        db_session, course.nursing, first.id, first.chair_id, later_same_day(first), settings
    )
    rows = unsent(db_session)
    assert sorted((r.kind, r.patient_id is not None) for r in rows) == [
        ("change_notice", False),
        ("change_notice", True),
    ]
    (shown,) = [n for n in db_session.scalars(sa.select(Notice)) if n.kind == "change_notice"]
    assert shown.role == "nurse" and shown.center_id == course.center.id
    mailing = make_settings(settings.app.database_url, smtp=smtp_sink.section())
    sent = reminders.sweep(db_session, mailing, clock.now())
    assert sent["sent"] == 2 and sent["batches"] == 1
    assert reminders.sweep(db_session, mailing, clock.now())["sent"] == 0
    by_rcpt = {tuple(rcpt): message for rcpt, message in smtp_sink.received}
    assert set(by_rcpt) == {("patient@example.org",), (course.nurse.email,)}
    patient_mail = by_rcpt[("patient@example.org",)].get_content()
    assert "Moved: the appointment on Mon 05 Oct 2026 at 09:00 is now" in patient_mail
    assert "11:00" in patient_mail and "Test Center" in patient_mail
    for text in (patient_mail, by_rcpt[(course.nurse.email,)].get_content()):
        assert "Octagam" not in text and " g " not in text and "g/kg" not in text
    assert course.patient.family_name not in by_rcpt[(course.nurse.email,)].get_content()


def test_changes_beyond_the_window_or_without_consent_send_no_patient_mail(
    db_session, settings, course
):
    clock.set_now(at(MONDAY - dt.timedelta(days=1), 15))
    second = day_one(db_session, course, 2)
    infusions.reschedule(
        db_session, course.nursing, second.id, second.chair_id, later_same_day(second), settings
    )
    assert unsent(db_session) == []
    course.patient.contact_consent_at = None
    course.nurse.mail_kinds = []  # this nurse chose no e-mail: the worklist still shows it
    db_session.commit()
    first = day_one(db_session, course)
    infusions.set_status(
        db_session, course.nursing, first.id, InfusionStatus.CANCELLED, "Patient unwell"
    )
    assert unsent(db_session) == []
    notices = [n for n in db_session.scalars(sa.select(Notice)) if n.kind == "change_notice"]
    assert len(notices) == 1 and "Cancelled: the appointment on Mon 05 Oct" in notices[0].message


def test_the_day_before_reminder_is_planned_once_sent_at_its_hour_and_dropped_if_moved(
    db_session, settings, course, smtp_sink
):
    mailing = make_settings(settings.app.database_url, smtp=smtp_sink.section())
    eve = MONDAY - dt.timedelta(days=1)
    for _ in range(2):
        assert reminders.plan_day_before(db_session, settings, at(eve, 3)) in (
            {"planned": 1},
            {"planned": 0},
        )
    (planned,) = unsent(db_session)
    assert planned.due_at == at(eve, settings.notices.day_before_hour)
    assert reminders.sweep(db_session, mailing, at(eve, 9))["sent"] == 0
    assert reminders.sweep(db_session, mailing, at(eve, 10))["sent"] == 1
    ((rcpt, message),) = smtp_sink.received
    assert rcpt == ["patient@example.org"] and "tomorrow, Mon 05 Oct 2026 at 09:00" in (
        message.get_content()
    )
    # A week later: planned for cycle 2, then the cycle moves before the hour.
    eve2 = day_one(db_session, course, 2).planned_date - dt.timedelta(days=1)
    reminders.plan_day_before(db_session, settings, at(eve2, 3))
    second = day_one(db_session, course, 2)
    clock.set_now(at(eve2, 8))
    infusions.reschedule(
        db_session,
        course.nursing,
        second.id,
        second.chair_id,
        second.starts_at + dt.timedelta(days=1),
        settings,
        override_reason=None,
    )
    outcome = reminders.sweep(db_session, mailing, at(eve2, 11))
    dropped = db_session.scalars(
        sa.select(Reminder).where(
            Reminder.kind == "day_before", Reminder.dropped_reason.is_not(None)
        )
    ).one()
    assert "moved" in dropped.dropped_reason and outcome["dropped"] == 1


def test_without_a_mail_server_reminders_are_dropped_and_say_why(db_session, settings, course):
    reminders.plan_day_before(db_session, settings, at(MONDAY - dt.timedelta(days=1), 3))
    outcome = reminders.sweep(db_session, settings, at(MONDAY - dt.timedelta(days=1), 11))
    assert outcome["dropped"] == 1 and outcome["sent"] == 0
    (row,) = db_session.scalars(sa.select(Reminder))
    assert "no mail server" in row.dropped_reason and row.sent_at is None


def test_a_mail_server_that_is_down_keeps_the_reminders_for_the_next_sweep(
    db_session, settings, course, smtp_sink
):
    reminders.plan_day_before(db_session, settings, at(MONDAY - dt.timedelta(days=1), 3))
    down = make_settings(
        settings.app.database_url, smtp=smtp_sink.section(port=_closed_port(), timeout_seconds=1)
    )
    when = at(MONDAY - dt.timedelta(days=1), 11)
    for _ in range(reminders.MAX_ATTEMPTS + 1):  # a long outage drops nothing
        assert reminders.sweep(db_session, down, when)["failed"] == 1
    (row,) = unsent(db_session)
    assert row.dropped_reason is None and row.attempts == 0
    assert "cannot be reached" in row.last_error
    up = make_settings(settings.app.database_url, smtp=smtp_sink.section())
    assert reminders.sweep(db_session, up, when)["sent"] == 1
    assert len(smtp_sink.received) == 1


def _closed_port() -> int:
    from tests.conftest import free_port

    return free_port()


# --- exactly once across processes -------------------------------------------------------------


def _clinic_database(databases, count: int) -> tuple[str, list[int]]:
    """A fresh database with the demo staff and `count` due change notices to the demo nurse
    (each its own e-mail)."""
    url = databases.create()
    settings = make_settings(url)
    engine = make_engine(url)
    session = make_session_factory(engine, settings)()
    demo.load_demo_data(session, settings)
    nurse = session.scalar(sa.select(User).where(User.email == "nurse@demo.clinic"))
    now = clock.now()
    with unit_of_work(session):
        session.execute(sa.delete(Reminder))  # the demo's own, so only these are due
        ids = reminders.insert_once(
            session,
            Reminder,
            [
                {
                    "key": f"test:{n}",
                    "kind": "change_notice",
                    "user_id": nurse.id,
                    "patient_id": None,
                    "infusion_id": None,
                    "subject": f"Task {n}",
                    "body": "Body\n",
                    "due_at": now - dt.timedelta(minutes=1),
                    "created_at": now,
                    "attempts": 0,
                }
                for n in range(count)
            ],
        )
    session.close()
    engine.dispose()
    return url, ids


def _config(tmp_path: Path, url: str, sink: SmtpSink, batch_size: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[app]\ndatabase_url = "{url}"\n\n'
        f'[smtp]\nhost = "{sink.host}"\nport = {sink.port}\n'
        'from_address = "IVIG Test Clinic <ivig@test.clinic>"\ntimeout_seconds = 30\n\n'
        f"[scheduler]\nbatch_size = {batch_size}\n",
        encoding="utf-8",
    )
    return path


def _job(config: Path, url: str, name: str) -> subprocess.Popen[str]:
    code = f"from scheduler import jobs; print(jobs.run({url!r}, {name!r}))"
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "IVIG_CONFIG": str(config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rows(url: str) -> tuple[int, int, list[str]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        sent = conn.scalar(
            sa.select(sa.func.count()).select_from(Reminder).where(Reminder.sent_at.is_not(None))
        )
        total = conn.scalar(sa.select(sa.func.count()).select_from(Reminder))
        runs = [
            status
            for (status,) in conn.execute(
                sa.select(JobRun.status).where(JobRun.job == "send_reminders").order_by(JobRun.id)
            )
        ]
    engine.dispose()
    return int(sent or 0), int(total or 0), runs


def test_two_scheduler_processes_send_each_reminder_once(databases, tmp_path, smtp_sink):
    url, _ids = _clinic_database(databases, 30)
    config = _config(tmp_path, url, smtp_sink, batch_size=4)
    jobs = [_job(config, url, "send_reminders") for _ in range(2)]
    outcomes = [job.communicate(timeout=120) for job in jobs]
    assert all(job.returncode == 0 for job in jobs), outcomes
    subjects = sorted(message["Subject"] for _rcpt, message in smtp_sink.received)
    assert subjects == sorted(f"Task {n}" for n in range(30))
    sent, total, runs = _rows(url)
    assert sent == total == 30
    # Both ran or one found the other holding the job (PostgreSQL's advisory lock).
    assert sorted(runs) in (["ok", "ok"], ["ok", "skipped"])


def test_two_sweeps_at_the_same_moment_send_each_reminder_once(databases, smtp_sink):
    """Past the job lock: the rows' own locks (SKIP LOCKED; SQLite's single writer)."""
    url, _ids = _clinic_database(databases, 40)
    settings = make_settings(url, smtp=smtp_sink.section(), scheduler={"batch_size": 3})
    engine = make_engine(url)
    factory = make_session_factory(engine, settings)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def sweep() -> None:
        session = factory()
        try:
            barrier.wait()
            reminders.sweep(session, settings, clock.now())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    assert errors == []
    assert sorted(m["Subject"] for _r, m in smtp_sink.received) == sorted(
        f"Task {n}" for n in range(40)
    )


class _StallingSink(SmtpSink):
    """Accepts `accept` messages, then holds the next one without answering."""

    def __init__(self, accept: int) -> None:
        super().__init__()
        self.accept = accept
        self.stalled = threading.Event()
        self.release = asyncio.Event()

    async def handle_DATA(self, server, session, envelope) -> str:
        if len(self.received) >= self.accept:
            self.stalled.set()
            await self.release.wait()
            return "451 Try again later"
        return await super().handle_DATA(server, session, envelope)


def test_a_sweep_killed_mid_batch_leaves_whole_batches_and_the_next_run_finishes(
    databases, tmp_path
):
    from aiosmtpd.controller import Controller

    url, _ids = _clinic_database(databases, 5)
    sink = _StallingSink(accept=3)  # batches of one: the fourth message stalls
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        config = _config(tmp_path, url, sink, batch_size=1)
        job = _job(config, url, "send_reminders")
        assert sink.stalled.wait(60), job.stderr.read() if job.stderr else ""
        job.send_signal(signal.SIGKILL)
        job.communicate(timeout=30)
        sent, total, runs = _rows(url)
        assert (sent, total) == (3, 5) and runs == ["running"]
        controller.loop.call_soon_threadsafe(sink.release.set)
        sink.accept = 99
        again = _job(config, url, "send_reminders")
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0 and out.strip() == "ok", err
    finally:
        controller.stop()
    sent, total, runs = _rows(url)
    assert sent == total == 5
    assert runs == ["interrupted", "ok"]
    assert sorted(m["Subject"] for _r, m in sink.received) == [f"Task {n}" for n in range(5)]


def test_a_preview_inside_the_window_writes_no_notice(db_session, settings, course):
    """A regimen preview books and rolls back in a savepoint: nobody hears of it."""
    clock.set_now(at(MONDAY - dt.timedelta(days=1), 15))
    _view, preview = regimen_service.preview_regimen(
        db_session,
        course.doctor,
        course.patient.id,
        regimen_input(starts_on=MONDAY, preferred_time=dt.time(11), based_on_version=1),
        settings,
    )
    assert preview.counts["moved"] >= 1
    assert unsent(db_session) == []
    assert db_session.scalars(sa.select(Notice).where(Notice.kind == "change_notice")).all() == []


def test_a_nurses_new_tasks_of_one_sweep_arrive_as_one_email(
    db_session, settings, course, smtp_sink
):
    now = at(MONDAY - dt.timedelta(days=3), 3)
    made = worklist.add_tasks(
        db_session,
        [
            {
                "key": f"test-task:{n}",
                "kind": "review_measures",
                "role": "nurse",
                "center_id": course.center.id,
                "patient_id": course.patient.id,
                "message": f"Record the measures ({n})",
            }
            for n in (1, 2)
        ],
        now,
    )
    db_session.commit()
    assert made == 2 and len(unsent(db_session)) == 2
    mailing = make_settings(settings.app.database_url, smtp=smtp_sink.section())
    outcome = reminders.sweep(db_session, mailing, now)
    assert outcome["sent"] == 2 and outcome["messages"] == 1
    ((rcpt, message),) = smtp_sink.received
    assert rcpt == [course.nurse.email] and message["Subject"] == "2 new tasks on your worklist"
    assert "Record the measures (1)" in message.get_content()
    assert "Record the measures (2)" in message.get_content()


def test_a_second_change_before_the_sweep_replaces_the_first_notice(
    db_session, settings, course, smtp_sink
):
    first = day_one(db_session, course)
    clock.set_now(at(MONDAY - dt.timedelta(days=1), 15))
    for _ in range(2):
        infusions.reschedule(
            db_session,
            course.nursing,
            first.id,
            first.chair_id,
            first.starts_at + dt.timedelta(hours=1),
            settings,
        )
        db_session.refresh(first)
    mailing = make_settings(settings.app.database_url, smtp=smtp_sink.section())
    superseded = db_session.scalars(
        sa.select(Reminder).where(Reminder.dropped_reason == "superseded by a later change")
    ).all()
    assert len(superseded) == 2  # the first move's, to the patient and to the nurse
    assert reminders.sweep(db_session, mailing, clock.now())["sent"] == 2
    patient_mail = [m for rcpt, m in smtp_sink.received if rcpt == ["patient@example.org"]]
    assert len(patient_mail) == 1
    assert "is now Mon 05 Oct 2026 at 11:00" in " ".join(patient_mail[0].get_content().split())
    open_notices = worklist.open_notices(db_session, course.nurse.id)
    assert [n.kind for n in open_notices] == ["change_notice"]
    assert "11:00" in open_notices[0].message


def test_the_sweep_sends_a_fixed_number_of_statements_per_batch(
    db_session, settings, course, smtp_sink, count_queries
):
    """As many statements for a batch of 12 reminders as for a batch of 4 (none per row)."""
    now = at(MONDAY - dt.timedelta(days=3), 3)
    mailing = make_settings(
        settings.app.database_url, smtp=smtp_sink.section(), scheduler={"batch_size": 12}
    )
    spent = {}
    for rows in (4, 12):
        db_session.execute(sa.delete(Reminder))
        reminders.enqueue(
            db_session,
            [
                {
                    "key": f"fixed:{n}",
                    "kind": "change_notice",
                    "subject": f"Change {n}",
                    "body": "Body\n",
                    **(
                        {"patient_id": course.patient.id} if n % 2 else {"user_id": course.nurse.id}
                    ),
                }
                for n in range(rows)
            ],
            now,
        )
        db_session.commit()
        db_session.expunge_all()  # nothing already loaded: the sweep loads what it needs
        with count_queries() as statements:
            outcome = reminders.sweep(db_session, mailing, now)
        assert outcome["sent"] == rows and outcome["batches"] == 1
        spent[rows] = len(statements)
    assert spent[4] == spent[12]


def test_an_address_the_mail_cannot_carry_is_dropped_and_the_rest_of_the_batch_goes(
    db_session, settings, course, smtp_sink
):
    """Written straight into the row (an import, an old record): the page refuses it."""
    reminders.plan_day_before(db_session, settings, at(MONDAY - dt.timedelta(days=1), 3))
    course.patient.contact_email = "ann..lee@example.org"
    now = at(MONDAY - dt.timedelta(days=1), 11)
    reminders.enqueue(
        db_session,
        [
            {
                "key": "other",
                "kind": "change_notice",
                "user_id": course.nurse.id,
                "subject": "Other",
                "body": "Body\n",
            }
        ],
        now,
    )
    db_session.commit()
    mailing = make_settings(settings.app.database_url, smtp=smtp_sink.section())
    outcome = reminders.sweep(db_session, mailing, now)
    assert outcome["sent"] == 1 and outcome["dropped"] == 1
    assert [m["Subject"] for _r, m in smtp_sink.received] == ["Other"]
    assert reminders.sweep(db_session, mailing, now)["sent"] == 0  # nothing sent twice


def test_the_day_before_reminder_says_the_time_as_it_is_when_sent(
    db_session, settings, course, smtp_sink
):
    eve = MONDAY - dt.timedelta(days=1)
    reminders.plan_day_before(db_session, settings, at(eve, 3))
    first = day_one(db_session, course)
    clock.set_now(at(eve, 8))
    infusions.reschedule(
        db_session, course.nursing, first.id, first.chair_id, later_same_day(first, 4), settings
    )
    mailing = make_settings(settings.app.database_url, smtp=smtp_sink.section())
    reminders.sweep(db_session, mailing, at(eve, 11))
    reminder = [
        " ".join(m.get_content().split())
        for _r, m in smtp_sink.received
        if m["Subject"].startswith("Reminder")
    ]
    assert len(reminder) == 1 and "tomorrow, Mon 05 Oct 2026 at 13:00" in reminder[0]


def test_moving_an_appointment_to_another_center_tells_the_nurses_of_both(
    db_session, settings, course
):
    from tests.db.clinic_fixtures import make_center

    other = make_center(db_session, "Other Center")
    db_session.commit()
    clock.set_now(at(MONDAY - dt.timedelta(days=1), 15))
    regimen_service.set_regimen(  # the physician moves the course to the other center
        db_session,
        course.doctor,
        course.patient.id,
        regimen_input(starts_on=MONDAY, center_id=other.id, based_on_version=1),
        settings,
    )
    notices = db_session.scalars(sa.select(Notice).where(Notice.kind == "change_notice")).all()
    assert sorted(n.center_id for n in notices) == sorted([course.center.id, other.id])
    assert "(was Test Center)" in notices[0].message
