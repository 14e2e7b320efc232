"""Read HTML forms with the API's own input models, so a page and the API accept the same
values and refuse bad ones in the same words (the field named, the limit given)."""

from __future__ import annotations

import datetime as dt
import types
from typing import Any, TypeVar, Union, get_args, get_origin

from flask import request
from pydantic import ValidationError

from app.domain import schedule
from app.schemas.base import Input, first_problem
from app.services.errors import InvalidInput

M = TypeVar("M", bound=Input)

#: Longest value a re-rendered form echoes back (the models refuse longer ones anyway).
_MAX_ECHO = 500
#: What a browser's datetime-local field sends.
_LOCAL_FORMAT = "YYYY-MM-DDTHH:MM"


def _kinds(annotation: Any) -> set[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return set(get_args(annotation))
    return {annotation}


def typed() -> dict[str, str]:
    """What was sent, to show again for correction (an unticked checkbox is absent)."""
    return {key: value[:_MAX_ECHO] for key, value in request.form.items() if key != "csrf_token"}


def checkbox(name: str) -> bool:
    return request.form.get(name) in ("on", "1", "true", "yes")


def local_datetime(name: str, raw: str, timezone: str) -> dt.datetime:
    """Read a datetime-local value as the center's wall clock and return it in UTC."""
    try:
        naive = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            f"{name}: give a date and time as {_LOCAL_FORMAT} (got {raw!r})", field=name
        ) from None
    if naive.tzinfo is not None:
        return naive
    instant = schedule.local_to_utc(naive.date(), naive.time(), timezone)
    if instant is None:
        raise InvalidInput(
            f"{name}: {raw} does not exist on the center's clock (the clocks change then)",
            field=name,
        )
    return instant


def _value(name: str, kinds: set[Any], timezone: str | None) -> Any:
    """One field's value from the form, or None when the form leaves it empty."""
    if bool in kinds:
        return checkbox(name)
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    if dt.datetime in kinds and timezone is not None:
        return local_datetime(name, raw, timezone)
    return raw


def parse(model: type[M], *, timezone: str | None = None, **given: Any) -> M:
    """Validate the form's fields with `model`; a datetime is read on `timezone`'s wall clock,
    an empty field is left out (its default applies, or it is reported missing), and `given`
    supplies values the page decides itself. A bad value raises InvalidInput naming the field."""
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        value = given[name] if name in given else _value(name, _kinds(info.annotation), timezone)
        if value is not None:
            data[name] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, message = first_problem(exc)
        raise InvalidInput(message, field=field) from None
