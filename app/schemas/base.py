"""The schemas' common parts: strict input models, output models, the error envelope."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import ErrorDetails

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


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


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


def _describe(error: ErrorDetails) -> str:
    kind, context, got = error["type"], error.get("ctx", {}), error.get("input")
    if kind in ("missing", "string_too_short") and context.get("min_length", 1) == 1:
        return "required"
    if kind in _KINDS:
        return f"{_KINDS[kind]} (got {got!r})"
    if kind in _LIMITS:
        words, key = _LIMITS[kind]
        limit = context[key]
        shown = f"{limit:g}" if isinstance(limit, float) else limit
        return f"must be {words} {shown} (got {got})"
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


def first_problem(error: ValidationError) -> tuple[str | None, str]:
    """The first problem of a validation error as (field, "field: what to give"), in the words
    the API and the pages both use."""
    details = error.errors()
    if not details:
        return None, "The request is not valid."
    first = details[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    message = _describe(first)
    return field, f"{field}: {message}" if field else message
