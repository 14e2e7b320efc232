"""The scheduler process: fixed job ids from config, and jobs that are safe to repeat."""

import datetime as dt
import threading

import sqlalchemy as sa
from alembic import command
from apscheduler.schedulers.background import BackgroundScheduler

from app.db import make_engine
from app.models import SchedulerHeartbeat
from scheduler import jobs
from scheduler.__main__ import build_scheduler
from tests.conftest import alembic_config, make_settings


def test_jobs_are_stored_in_the_database_with_fixed_ids(databases):
    url = databases.create()
    settings = make_settings(url, scheduler={"heartbeat_seconds": 30})
    engine = make_engine(url)
    for _ in range(2):  # a restart replaces the job instead of adding a second one
        scheduler = build_scheduler(settings, BackgroundScheduler, engine)
        scheduler.start(paused=True)
        jobs_by_id = {job.id: job for job in scheduler.get_jobs()}
        scheduler.shutdown()
    assert set(jobs_by_id) == {"heartbeat", *jobs.JOBS}
    assert {"extend_horizons", "evaluate_rules", "send_reminders", "review_due"} <= set(jobs.JOBS)
    job = jobs_by_id["heartbeat"]
    assert job.trigger.interval == dt.timedelta(seconds=30)
    assert job.coalesce is True and job.max_instances == 1
    assert job.misfire_grace_time == settings.scheduler.misfire_grace_seconds
    assert str(scheduler.timezone) == "UTC"
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT id FROM apscheduler_jobs")).all()
    engine.dispose()
    assert sorted(name for (name,) in stored) == sorted(jobs_by_id)
    sweep = jobs_by_id["send_reminders"]
    assert sweep.trigger.interval == dt.timedelta(minutes=settings.scheduler.reminder_sweep_minutes)
    assert sweep.args == (url, "send_reminders")
    command.check(alembic_config(url))  # the scheduler's own table is not drift


def test_heartbeat_repeated_and_in_parallel_keeps_one_row(databases):
    url = databases.create()
    errors: list[BaseException] = []

    def beat() -> None:
        try:
            jobs.heartbeat(url)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=beat) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    jobs.heartbeat(url)
    jobs.dispose_engines()
    assert errors == []
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(SchedulerHeartbeat.name)).all()
    engine.dispose()
    assert rows == [("scheduler",)]


def test_healthz_shows_the_last_heartbeat(client, db_session):
    from app.services import health

    assert client.get("/healthz").json["scheduler_last_seen"] is None
    health.beat(db_session, "scheduler")
    assert client.get("/healthz").json["scheduler_last_seen"] is not None


def _start_two_at_once(url: str) -> list[BaseException]:
    settings = make_settings(url)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def start() -> None:
        engine = make_engine(url)
        try:
            barrier.wait()
            scheduler = build_scheduler(settings, BackgroundScheduler, engine)
            scheduler.start(paused=True)
            scheduler.shutdown()
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_two_schedulers_starting_at_once_on_a_fresh_database_both_come_up(databases):
    # Hardening: nothing but APScheduler created its job table, and one of two schedulers
    # started together died on the race (UniqueViolation pg_type_typname_nsp_index).
    for _ in range(5):
        url = databases.create()
        probe = make_engine(url)
        with probe.connect() as conn:
            assert sa.inspect(conn).has_table("apscheduler_jobs")  # made by the migrations
        probe.dispose()
        assert _start_two_at_once(url) == []
