"""Scheduler jobs: module-level functions taking plain values, each idempotent."""

from __future__ import annotations

import logging

from app.config import load_settings
from app.db import make_engine, make_session_factory
from app.services import health

log = logging.getLogger(__name__)

_factories: dict[str, object] = {}


def _session_factory(database_url: str):
    factory = _factories.get(database_url)
    if factory is None:
        factory = make_session_factory(make_engine(database_url))
        _factories[database_url] = factory
    return factory


def heartbeat(database_url: str, name: str = "scheduler") -> None:
    """Record that the scheduler is alive (an upsert: repeats and parallel runs are harmless)."""
    session = _session_factory(database_url)()
    try:
        health.beat(session, name)
    finally:
        session.close()


def default_database_url() -> str:
    return load_settings().app.database_url
