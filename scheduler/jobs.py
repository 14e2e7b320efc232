"""Scheduler jobs: the registry of periodic jobs, each a thin call of one service function.

APScheduler stores `run(database_url, name)` (module-level, plain arguments) in its job table;
`run` records each run in `job_runs` (app.services.jobruns). `flask --app wsgi jobs run NAME`
runs one now; `flask --app wsgi jobs list` shows them with their next run times.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings, load_settings
from app.db import make_engine, make_session_factory
from app.models import JobRun
from app.services import health, housekeeping, jobruns, reminders, reviews, scheduling, suggestions
from app.services.context import system_actor

log = logging.getLogger(__name__)

_engines: dict[str, sa.Engine] = {}


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    title: str
    body: jobruns.Body
    #: APScheduler trigger name and its arguments, from the settings.
    trigger: Callable[[Settings], tuple[str, dict[str, Any]]]

    def describe(self, settings: Settings) -> str:
        kind, args = self.trigger(settings)
        if kind == "interval":
            return f"every {args['minutes']} min"
        return f"daily at {args['hour']:02d}:{args['minute']:02d} ({settings.scheduler.timezone})"


def _evaluate_rules(session: so.Session, settings: Settings, now: dt.datetime) -> Mapping[str, int]:
    run = system_actor("scheduler", request_id=f"job-{uuid.uuid4().hex[:28]}")
    return {"suggestions": suggestions.evaluate_everyone(session, settings, cause=run)}


def _daily(
    minute: int, hour: Callable[[Settings], int] | None = None
) -> Callable[[Settings], tuple[str, dict[str, Any]]]:
    def trigger(settings: Settings) -> tuple[str, dict[str, Any]]:
        at = hour(settings) if hour else settings.scheduler.daily_hour
        return "cron", {"hour": at, "minute": minute}

    return trigger


def _horizon_hour(settings: Settings) -> int:
    return settings.scheduler.horizon_hour


def _sweep(settings: Settings) -> tuple[str, dict[str, Any]]:
    return "interval", {"minutes": settings.scheduler.reminder_sweep_minutes}


#: Every periodic job (the heartbeat aside), by name.
JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job(
            "extend_horizons",
            "book cycles that came inside the horizon",
            scheduling.extend_everyone,
            _daily(17, _horizon_hour),
        ),
        Job(
            "evaluate_rules",
            "evaluate the rules for every patient",
            _evaluate_rules,
            _daily(47, _horizon_hour),
        ),
        Job(
            "review_due",
            "course reviews and authorisations coming due: nurse and physician tasks",
            reviews.sweep_due,
            _daily(5),
        ),
        Job(
            "day_before_reminders",
            "reminders for tomorrow's appointments",
            reminders.plan_day_before,
            _daily(25),
        ),
        Job(
            "housekeeping",
            "expire old suggestions, flag weight changes, prune job history",
            housekeeping.run,
            _daily(40),
        ),
        Job("send_reminders", "send due reminders and tasks by e-mail", reminders.sweep, _sweep),
    )
}


def _open(database_url: str) -> tuple[so.Session, Settings]:
    """Open a session on one engine per database URL (kept for the process), with settings."""
    settings = load_settings(overrides={"app": {"database_url": database_url}})
    engine = _engines.get(database_url)
    if engine is None:
        engine = _engines[database_url] = make_engine(database_url)
    return make_session_factory(engine, settings)(), settings


def dispose_engines() -> None:
    """Close every pooled connection (at shutdown)."""
    while _engines:
        _engines.popitem()[1].dispose()


def heartbeat(database_url: str, name: str = "scheduler") -> None:
    """Record that the scheduler is alive (an upsert: repeats and parallel runs are harmless)."""
    session, _settings = _open(database_url)
    try:
        health.beat(session, name)
    finally:
        session.close()


def run(database_url: str, name: str) -> str:
    """Run one registered job now (what the scheduler calls); return how the run ended."""
    session, settings = _open(database_url)
    try:
        return run_in(session, settings, name).status
    finally:
        session.close()


def run_in(
    session: so.Session, settings: Settings, name: str, process: str | None = None
) -> JobRun:
    """Run one registered job in a session (the CLI and tests); a failure is recorded."""
    job = JOBS.get(name)
    if job is None:
        raise KeyError(f"no job {name!r}; jobs: {', '.join(sorted(JOBS))}")
    return jobruns.run(session, settings, name, job.body, process=process)


def default_database_url() -> str:
    return load_settings().app.database_url
