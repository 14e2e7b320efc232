"""The schemas' common parts: strict input models, output models, the error envelope."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import ErrorDetails

from app.services.errors import Problem

RoleName = Literal["nurse", "physician", "admin"]


def _wall_clock(value: dt.time) -> dt.time:
    if value.tzinfo is not None:
        raise ValueError("give a local time as HH:MM, without an offset")
    return value


#: A wall-clock time at a center, without an offset ("08:30:00"). JSON Schema's `time` format
#: demands an offset, so the document says what the API really sends and takes.
LocalTime = Annotated[
    dt.time,
    AfterValidator(_wall_clock),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
            "description": "local wall-clock time at the center, HH:MM[:SS], no offset",
            "example": "08:30:00",
        }
    ),
]


#: A record's id as a request names it: the database's integer range (a larger number names
#: nothing, and is refused as out of range rather than looked up).
RecordId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_values(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse what pydantic would quietly convert: true as 1, 0.5 as a Unix time."""
        if info.field_name is None:
            return value
        annotation = cls.model_fields[info.field_name].annotation
        kinds = {annotation, *get_args(annotation)}
        if isinstance(value, bool) and kinds & {int, float}:
            raise ValueError("give a number, not true or false")
        if bool in kinds and value is not None and not isinstance(value, bool):
            raise ValueError(f"give true or false (got {value!r})")
        if dt.time in kinds and value is not None and not isinstance(value, str | dt.time):
            raise ValueError(f"give a time as HH:MM (got {value!r})")
        for kind, example in ((dt.datetime, "2026-12-02T09:00:00Z"), (dt.date, "2026-12-02")):
            if kind not in kinds or value is None or isinstance(value, dt.date):
                continue
            try:
                kind.fromisoformat(value)
            except (TypeError, ValueError):
                raise ValueError(f"give an ISO 8601 {kind.__name__}, e.g. {example}") from None
            break
        return value


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ProblemOut(BaseModel):
    field: str | None
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None
    problems: list[ProblemOut] | None = Field(
        None, description="a body that fails validation: every problem at once"
    )


class ErrorOut(BaseModel):
    error: ErrorBody


WeightBasisName = Literal["actual", "ideal", "adjusted"]

SexName = Literal["female", "male"]


#: How a value of the wrong kind is described, by pydantic's error type.
_KINDS = {
    "float_parsing": "give a number",
    "float_type": "give a number",
    "finite_number": "give a finite number",
    "int_parsing": "give a whole number",
    "int_type": "give a whole number",
    "int_from_float": "give a whole number",
    "bool_parsing": "give true or false",
    "bool_type": "give true or false",
    "time_parsing": "give a time as HH:MM",
    "time_type": "give a time as HH:MM",
    "string_type": "give text",
}
_LIMITS = {
    "greater_than": ("more than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
}


def _describe(error: ErrorDetails, unit: str | None = None) -> str:
    kind, context, got = error["type"], error.get("ctx", {}), error.get("input")
    if kind in ("missing", "string_too_short") and context.get("min_length", 1) == 1:
        return "required"
    if kind in _KINDS:
        return f"{_KINDS[kind]} (got {got!r})"
    if kind in _LIMITS:
        words, key = _LIMITS[kind]
        limit = context[key]
        shown = f"{limit:g}" if isinstance(limit, float) else limit
        if unit and limit == 1 and unit in ("weeks", "days", "minutes", "hours"):
            unit = unit[:-1]
        return f"must be {words} {shown}{' ' + unit if unit else ''} (got {got})"
    if kind in ("literal_error", "enum"):
        return f"one of {context['expected']} (got {got!r})"
    if kind == "string_too_long":
        return f"at most {context['max_length']} characters"
    if kind == "string_too_short":
        return f"at least {context['min_length']} characters"
    if kind == "value_error":
        return str(context.get("error", error["msg"]))
    if kind == "extra_forbidden":
        return "not a field of this request"
    return error["msg"][:1].lower() + error["msg"][1:]


#: The unit a field's limits are in, by the end of its name (the API's naming convention).
_UNITS = (
    ("_g_per_kg", "g/kg"),
    ("_ml_per_kg_min", "mL/kg/min"),
    ("_ml_per_kg_h", "mL/kg/h"),
    ("_kg", "kg"),
    ("_cm", "cm"),
    ("_mg", "mg"),
    ("_grams", "g"),
    ("_weeks", "weeks"),
    ("_days", "days"),
    ("_minutes", "minutes"),
    ("_hours", "hours"),
    ("days_per_cycle", "days"),
    ("percent", "%"),
)


def unit_of(field: str) -> str | None:
    """The unit of a field's values, from its name (weight_kg: kg), or None."""
    return next((unit for end, unit in _UNITS if field.endswith(end)), None)


def problems_of(error: ValidationError) -> tuple[Problem, ...]:
    """Every problem of a validation error, each with its field and what to give (limits
    with their unit), in the words the API and the pages both use."""
    found = []
    for detail in error.errors():
        field = ".".join(str(part) for part in detail["loc"]) or None
        found.append(Problem(field, _describe(detail, unit_of(field) if field else None)))
    return tuple(found) or (Problem(None, "The request is not valid."),)


def first_problem(error: ValidationError) -> tuple[str | None, str]:
    """The first problem of a validation error as (field, "field: what to give")."""
    first = problems_of(error)[0]
    return first.field, f"{first.field}: {first.text}" if first.field else first.text
