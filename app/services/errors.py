"""Errors a service raises; adapters turn them into HTTP answers or messages."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service refuses; nothing has been written."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def details(self) -> dict[str, object]:
        """Return more the client may act on, beside code, message and field."""
        return {}


class InvalidInput(ServiceError):
    status = 422
    code = "invalid"


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
