"""Errors a service raises; adapters turn them into HTTP answers or messages."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: the field it is about (None: the whole request) and
    what to give instead, without the field's name ("must be at most 80 kg (got 90)")."""

    field: str | None
    text: str

    @classmethod
    def of(cls, field: str | None, message: str) -> Problem:
        """From a message that starts with its field's name ("weight_kg: ...")."""
        prefix = f"{field}: "
        if field and message.startswith(prefix):
            message = message[len(prefix) :]
        return cls(field, message)


class ServiceError(Exception):
    """A request the service refuses; nothing has been written."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        field: str | None = None,
        problems: tuple[Problem, ...] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        #: Every problem found at once (a form's fields); by default this one.
        self.problems = problems or (Problem.of(field, message),)

    def details(self) -> dict[str, object]:
        """Return more the client may act on, beside code, message and field."""
        return {}


class InvalidInput(ServiceError):
    status = 422
    code = "invalid"

    @classmethod
    def every(cls, problems: Sequence[Any]) -> InvalidInput:
        """One refusal for a domain's problems (each with `field` and a message that starts
        with it), every one of them kept for the page."""
        found = tuple(Problem.of(p.field, p.message) for p in problems)
        return cls("; ".join(p.message for p in problems), field=found[0].field, problems=found)


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class AuthenticationFailed(ServiceError):
    status = 401
    code = "unauthenticated"


class Unavailable(ServiceError):
    """A server the request needs (the mail server) cannot be reached or refused the work."""

    status = 503
    code = "unavailable"
