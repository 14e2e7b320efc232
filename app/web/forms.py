"""Read HTML forms with the API's own input models, so a page and the API accept the same
values and refuse bad ones in the same words (the limit given, with its unit); show a refused
form's problems all at once, each next to its field in the words of the field's label, and
listed above the page with links to the fields."""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from flask import Flask, g, request
from pydantic import ValidationError

from app.domain import schedule
from app.domain.schedule import local_date
from app.schemas.base import Input, first_problem, problems_of
from app.services.errors import InvalidInput, Problem, ServiceError

M = TypeVar("M", bound=Input)

#: Longest value a re-rendered form echoes back (the models refuse longer ones anyway).
_MAX_ECHO = 500
#: What a browser's datetime-local field sends.
_LOCAL_FORMAT = "YYYY-MM-DDTHH:MM"


def _kinds(annotation: Any) -> set[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return set(get_args(annotation))
    return {annotation}


def sent() -> dict[str, str]:
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
        raise InvalidInput(message, field=field, problems=problems_of(exc)) from None


def parse_all(model: type[M], parts: Mapping[str, Callable[[], Any]], **given: Any) -> M:
    """Like `parse`, with some fields read by the page itself (`parts`: a week of hours, a
    number of chairs); the problems of every part and of the model are raised at once."""
    problems: list[Problem] = []
    for name, read in parts.items():
        try:
            given[name] = read()
        except InvalidInput as exc:  # the field takes its default; the model checks the rest
            problems.extend(exc.problems)
    try:
        parsed = parse(model, **given)
    except InvalidInput as exc:
        problems.extend(exc.problems)
    if problems:
        first = problems[0]
        message = f"{first.field}: {first.text}" if first.field else first.text
        raise InvalidInput(message, field=first.field, problems=tuple(problems))
    return parsed


# --- showing a refused form's problems ------------------------------------------------------


def refuse(error: ServiceError, form: str) -> None:
    """Show `error`'s problems on the form `form` when this request renders the page again
    (with what was typed): each next to its field, all of them listed above the page."""
    g.refused_form = form
    g.form_problems = error.problems
    g.form_labels = {}


def _problems() -> tuple[Problem, ...]:
    return tuple(g.get("form_problems", ()))


def _matches(problem: Problem, name: str) -> bool:
    # "hours.0.opens_at" belongs to the field the page shows as "hours".
    field = problem.field or ""
    return field == name or field.startswith(f"{name}.")


def problem(form: str, name: str) -> str | None:
    """What is wrong with a field of a form refused in this request, or None."""
    if g.get("refused_form") != form:
        return None
    texts = [p.text for p in _problems() if _matches(p, name)]
    return "; ".join(texts) or None


def refused(form: str) -> bool:
    """Whether this request refused the form (the page shows it again, open)."""
    return bool(g.get("refused_form") == form)


def typed(form: str, name: str, default: Any = "") -> Any:
    """What was typed into a field of the form this request refused, else `default` (the
    value the page shows otherwise); an unticked checkbox of a refused form is False."""
    if not refused(form):
        return default
    if default is True or default is False:
        return name in request.form
    return request.form.get(name, "")[:_MAX_ECHO]


def note_label(form: str, name: str, label: str) -> str:
    """Remember the label a field was shown with, for the list of problems (renders nothing)."""
    if g.get("refused_form") == form:
        g.form_labels[name] = label
    return ""


def _humane(field: str) -> str:
    return field.split(".")[0].replace("_", " ").capitalize()


def problem_list() -> list[dict[str, str | None]]:
    """The refused form's problems for the list above the page: each with the label its
    field was shown with (and a link to it), or, for a field the page does not show, its name
    in words."""
    form = g.get("refused_form")
    labels: dict[str, str] = g.get("form_labels", {})
    listed = []
    for item in _problems():
        name = next((n for n in labels if _matches(item, n)), None)
        label = labels[name] if name else (_humane(item.field) if item.field else None)
        anchor = f"{form}-{name}" if name else None
        listed.append({"label": label, "anchor": anchor, "text": item.text})
    return listed


def choices(items: Any, value: str, text: str) -> list[tuple[Any, Any]]:
    """(value, text) pairs for a select from records' attributes (`centers|choices("id",
    "name")`)."""
    return [(getattr(item, value), getattr(item, text)) for item in items]


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(
        problem=problem,
        note_label=note_label,
        problem_list=problem_list,
        refused=refused,
        typed=typed,
    )
    app.jinja_env.filters["choices"] = choices
    app.jinja_env.filters["pairs"] = lambda values: [(value, value) for value in values]
    # An instant as the day it is at a center ("2026-11-30"), e.g. a task's due date.
    app.jinja_env.filters["local_date"] = lambda at, zone: local_date(at, zone).isoformat()
    # An instant on a center's wall clock ("2026-11-30 08:00").
    app.jinja_env.filters["local_time"] = lambda at, zone: at.astimezone(ZoneInfo(zone)).strftime(
        "%Y-%m-%d %H:%M"
    )
