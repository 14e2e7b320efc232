"""`python -m scheduler`: the one APScheduler process, with its job store in the database."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

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
    scheduler.add_job(
        jobs.extend_horizons,
        "cron",
        hour=settings.scheduler.horizon_hour,
        minute=17,
        args=[url],
        id="extend_horizons",
        name="book cycles that came inside the horizon",
        replace_existing=True,
    )
    scheduler.add_job(
        jobs.evaluate_rules,
        "cron",
        hour=settings.scheduler.horizon_hour,
        minute=47,
        args=[url],
        id="evaluate_rules",
        name="evaluate the rules for every patient",
        replace_existing=True,
    )
    return scheduler


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
