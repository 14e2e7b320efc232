"""The schemas' common parts: strict input models, output models, the error envelope."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationInfo, WithJsonSchema, field_validator

RoleName = Literal["nurse", "physician", "admin"]

#: A wall-clock time at a center, without an offset ("08:30:00"). JSON Schema's `time` format
#: demands an offset, so the document says what the API really sends and takes.
LocalTime = Annotated[
    dt.time,
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
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

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
