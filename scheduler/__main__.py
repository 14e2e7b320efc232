"""`python -m scheduler`: the one APScheduler process, with its job store in the database."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
from types import FrameType
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from app.config import ConfigError, Settings, load_settings
from app.db import make_engine
from scheduler import jobs

log = logging.getLogger("scheduler")


def build_scheduler(
    settings: Settings,
    scheduler_class: type[BaseScheduler] = BlockingScheduler,
    engine: sa.Engine | None = None,
) -> BaseScheduler:
    """Create the scheduler and register its few periodic jobs under fixed ids."""
    url = settings.app.database_url
    store = SQLAlchemyJobStore(engine=engine or make_engine(url), tablename="apscheduler_jobs")
    scheduler = scheduler_class(
        jobstores={"default": store},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": settings.scheduler.misfire_grace_seconds,
        },
        timezone=settings.scheduler.timezone,
    )
    scheduler.add_job(
        jobs.heartbeat,
        "interval",
        seconds=settings.scheduler.heartbeat_seconds,
        args=[url],
        id="heartbeat",
        name="scheduler heartbeat",
        replace_existing=True,
    )
    for job in jobs.JOBS.values():
        kind, trigger_args = job.trigger(settings)
        # A sweep runs at once when the scheduler starts (what came due while it was down),
        # then every interval; daily jobs keep their hour.
        first = {"next_run_time": dt.datetime.now(dt.UTC)} if kind == "interval" else {}
        scheduler.add_job(
            jobs.run,
            kind,
            args=[url, job.name],
            id=job.name,
            name=job.title,
            replace_existing=True,
            **trigger_args,
            **first,
        )
    return scheduler


def next_run_times(
    settings: Settings, connection: sa.Connection, now: dt.datetime
) -> dict[str, dt.datetime | None]:
    """When each job runs next: as the running scheduler stored it, else from its trigger
    (read on the caller's connection: on SQLite a second one would wait for its lock)."""
    stored: dict[str, dt.datetime | None] = {}
    if sa.inspect(connection).has_table("apscheduler_jobs"):
        for name, epoch in connection.execute(
            sa.text("SELECT id, next_run_time FROM apscheduler_jobs")
        ):
            stored[name] = dt.datetime.fromtimestamp(epoch, dt.UTC) if epoch else None
    zone = ZoneInfo(settings.scheduler.timezone)
    found: dict[str, dt.datetime | None] = {}
    for job in jobs.JOBS.values():
        if job.name in stored:
            found[job.name] = stored[job.name]
            continue
        kind, args = job.trigger(settings)
        trigger: BaseTrigger = (
            # A scheduler starting now first fires one interval later.
            IntervalTrigger(timezone=zone, start_date=now + dt.timedelta(**args), **args)
            if kind == "interval"
            else CronTrigger(timezone=zone, **args)
        )
        fire = trigger.get_next_fire_time(None, now.astimezone(zone))
        found[job.name] = fire.astimezone(dt.UTC) if fire else None
    return found


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        return 2
    logging.basicConfig(
        level=settings.app.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    scheduler = build_scheduler(settings)
    jobs.heartbeat(settings.app.database_url)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: shutting down", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    log.info("scheduler started (time zone %s)", settings.scheduler.timezone)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")
    finally:
        jobs.dispose_engines()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
