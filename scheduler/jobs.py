"""Scheduler jobs: module-level functions taking plain values, each idempotent."""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings, load_settings
from app.db import make_engine, make_session_factory
from app.services import audit, health, scheduling, suggestions
from app.services.context import system_actor, unit_of_work
from app.services.errors import ServiceError

log = logging.getLogger(__name__)

_engines: dict[str, sa.Engine] = {}


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


def extend_horizons(database_url: str) -> int:
    """Book cycles that have come inside the horizon, for every patient; returns how many.

    Safe if two schedulers run it at once: each patient is handled in its own transaction
    under a PostgreSQL transaction-level advisory lock (SQLite serialises writers), and a
    re-run books nothing new (only cycles after the last one booked are added).
    """
    session, settings = _open(database_url)
    postgres = session.get_bind().dialect.name == "postgresql"
    booked = 0
    try:
        for patient_id in scheduling.patients_with_regimens(session):
            session.rollback()
            try:
                with unit_of_work(session):
                    if postgres:
                        session.execute(
                            sa.text("SELECT pg_advisory_xact_lock(:key, :patient)"),
                            {"key": _LOCK_KEY, "patient": patient_id},
                        )
                    result = scheduling.extend_horizon(session, patient_id, settings)
                    if result.created:
                        audit.record(
                            session,
                            system_actor("scheduler"),
                            "infusions.extend_horizon",
                            "patient",
                            patient_id,
                            after=result.summary(),
                        )
            except ServiceError as exc:
                # One patient's refusal (a therapy rule) must not stop everyone else's roll.
                log.warning("extend_horizons: patient %d not extended: %s", patient_id, exc)
                continue
            booked += len(result.created)
    finally:
        session.close()
    log.info("extend_horizons: booked %d infusions", booked)
    return booked


def evaluate_rules(database_url: str) -> int:
    """Nightly: run the rules for every patient (facts change with time: weeks, due steps)."""
    session, settings = _open(database_url)
    try:
        run = system_actor("scheduler", request_id=f"job-{uuid.uuid4().hex[:28]}")
        made = suggestions.evaluate_everyone(session, settings, cause=run)
    finally:
        session.close()
    log.info("evaluate_rules: %d new suggestions", made)
    return made


#: Advisory lock id for extend_horizons (any stable 64-bit number).
_LOCK_KEY = 480_177


def default_database_url() -> str:
    return load_settings().app.database_url
