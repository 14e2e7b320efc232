"""Read typed values from HTML forms; a bad value names its field."""

from __future__ import annotations

import datetime as dt
import math

from flask import request

from app.domain import schedule
from app.services.errors import InvalidInput


def text(name: str, max_length: int = 2000) -> str:
    return request.form.get(name, "")[:max_length].strip()


def optional_text(name: str, max_length: int = 2000) -> str | None:
    return text(name, max_length) or None


def number(name: str, label: str | None = None) -> float:
    raw = text(name, 40)
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{label or name}: give a number (got {raw!r})", field=name) from None
    if not math.isfinite(value):
        raise InvalidInput(f"{label or name}: give a finite number", field=name)
    return value


def optional_number(name: str) -> float | None:
    return number(name) if text(name, 40) else None


def whole(name: str) -> int:
    raw = text(name, 20)
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name}: give a whole number (got {raw!r})", field=name) from None


def optional_whole(name: str) -> int | None:
    return whole(name) if text(name, 20) else None


def date(name: str) -> dt.date:
    raw = text(name, 20)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name}: give a date as YYYY-MM-DD (got {raw!r})", field=name) from None


def time(name: str) -> dt.time | None:
    raw = text(name, 10)
    if not raw:
        return None
    try:
        return dt.time.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name}: give a time as HH:MM (got {raw!r})", field=name) from None


def local_datetime(name: str, timezone: str) -> dt.datetime:
    """Read a datetime-local field as the center's wall clock and return it in UTC."""
    raw = text(name, 30)
    try:
        naive = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            f"{name}: give a date and time as YYYY-MM-DDTHH:MM (got {raw!r})", field=name
        ) from None
    instant = schedule.local_to_utc(naive.date(), naive.time(), timezone)
    if instant is None:
        raise InvalidInput(
            f"{name}: {raw} does not exist on the center's clock (the clocks change then)",
            field=name,
        )
    return instant


def checkbox(name: str) -> bool:
    return request.form.get(name) in ("on", "1", "true", "yes")


def choice(name: str, allowed: tuple[str, ...]) -> str:
    """Return one of the allowed values, or a 422 naming the field and the choices."""
    value = text(name, 40)
    if value not in allowed:
        raise InvalidInput(f"{name}: one of {', '.join(allowed)} (got {value!r})", field=name)
    return value
