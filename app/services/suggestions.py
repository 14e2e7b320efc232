"""The rules engine's suggestions: evaluated from the facts, decided only by physicians."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy.orm as so


def evaluation_hook() -> Callable[[so.Session, int, dt.date], object] | None:
    """Return the function that evaluates a patient's rules after new evidence (none yet)."""
    return None
