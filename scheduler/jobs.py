"""Scheduler jobs: module-level functions taking plain values, each idempotent."""

from __future__ import annotations

import logging

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import load_settings
from app.db import make_engine, make_session_factory
from app.services import health

log = logging.getLogger(__name__)

_engines: dict[str, sa.Engine] = {}


def _session_factory(database_url: str) -> so.sessionmaker:
    """Return a session factory on one engine per database URL, kept for the process."""
    engine = _engines.get(database_url)
    if engine is None:
        engine = _engines[database_url] = make_engine(database_url)
    return make_session_factory(engine)


def dispose_engines() -> None:
    """Close every pooled connection (at shutdown)."""
    while _engines:
        _engines.popitem()[1].dispose()


def heartbeat(database_url: str, name: str = "scheduler") -> None:
    """Record that the scheduler is alive (an upsert: repeats and parallel runs are harmless)."""
    session = _session_factory(database_url)()
    try:
        health.beat(session, name)
    finally:
        session.close()


def default_database_url() -> str:
    return load_settings().app.database_url
