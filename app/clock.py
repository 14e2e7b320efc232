"""The one clock: every "now" in the app and the scheduler comes from here.

Production reads the system clock. Tests (and the stateful property test's clock rule) set a
fixed instant with `frozen_at`, so time-dependent rules can be exercised deterministically.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

_fixed: dt.datetime | None = None


def now() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    if _fixed is not None:
        return _fixed
    return dt.datetime.now(dt.UTC)


def clinic_today(timezone: str) -> dt.date:
    """Return today's date on a center's wall clock (IANA time zone): the clinic's "today"."""
    from app.domain.schedule import local_date

    return local_date(now(), timezone)


def set_now(instant: dt.datetime | None) -> None:
    """Fix the clock at an aware instant (None returns to the system clock)."""
    global _fixed
    if instant is not None and instant.utcoffset() is None:
        raise ValueError("the clock needs an aware datetime")
    _fixed = None if instant is None else instant.astimezone(dt.UTC)


@contextmanager
def frozen_at(instant: dt.datetime) -> Iterator[None]:
    """Run a block with the clock fixed at an instant, then restore the previous clock."""
    previous = _fixed
    set_now(instant)
    try:
        yield
    finally:
        set_now(previous)
