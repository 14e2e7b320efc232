"""Error answers: JSON envelopes on the API, friendly pages elsewhere, never a stack trace."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from apiflask import APIFlask
from apiflask.exceptions import HTTPError
from flask import current_app, jsonify, render_template
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from app import http
from app.schemas.base import first_problem, problems_of
from app.services.errors import ServiceError

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}

_FRIENDLY = {
    400: "The request could not be understood. Reload the page and try again.",
    401: "Please log in.",
    403: "Your role does not allow this page. Ask an administrator if you need it.",
    404: "There is nothing at this address.",
    405: "This page cannot be used that way.",
    409: "Someone else changed this at the same time. Reload and try again.",
    413: "What you sent is too large.",
    500: "Something went wrong on our side. The error was logged; please try again.",
}


#: The error envelope as the OpenAPI document states it for every 4xx and 5xx.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        }
    },
}


def _plain_headers(headers: Any) -> dict[str, str]:
    return {str(name): str(value) for name, value in dict(headers or {}).items()}


def json_error(
    status: int,
    message: str,
    field: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """Return the API's error envelope."""
    envelope: dict[str, Any] = {
        "code": code or _CODES.get(status, "error"),
        "message": message,
        "field": field,
    }
    envelope.update(extra or {})
    body = {"error": envelope}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _first_validation_problem(detail: Any) -> tuple[str | None, str]:
    """Flatten APIFlask's {"json": {"field": ["msg"]}} into (field, message)."""
    if isinstance(detail, dict):
        for location in detail.values():
            if isinstance(location, dict):
                for field, messages in location.items():
                    text = messages[0] if isinstance(messages, list) and messages else messages
                    field_name = None if field == "_schema" else str(field)
                    prefix = f"{field_name}: " if field_name else ""
                    return field_name, f"{prefix}{text}"
    return None, "The request body is not valid."


def _page(status: int, message: str | None = None) -> tuple[str, int]:
    return (
        render_template(
            "errors/error.html", status=status, message=message or _FRIENDLY.get(status, "")
        ),
        status,
    )


def _api_error(error: HTTPError) -> Response:
    """APIFlask's own errors (request validation, abort) in the API's envelope."""
    if error.status_code == 422 and isinstance(error.__cause__, ValidationError):
        field, message = first_problem(error.__cause__)
        problems = [{"field": p.field, "message": p.text} for p in problems_of(error.__cause__)]
        return json_error(
            422,
            message,
            field,
            headers=_plain_headers(error.headers),
            extra={"problems": problems},
        )
    if error.status_code == 422 and error.detail:
        field, message = _first_validation_problem(error.detail)
        return json_error(422, message, field, headers=_plain_headers(error.headers))
    return json_error(error.status_code, error.message or "", headers=_plain_headers(error.headers))


def _service_error(error: ServiceError) -> Any:
    if http.is_api_request():
        return json_error(
            error.status, error.message, error.field, error.code, extra=error.details()
        )
    return _page(error.status, error.message)


def _allow(error: HTTPException) -> str:
    return ", ".join(getattr(error, "valid_methods", None) or [])


def _http_error(error: HTTPException) -> Any:
    status = error.code or 500
    if http.is_api_request():
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
            message = "Send Authorization: Bearer <token> with a valid API token."
        elif status == 405:
            headers["Allow"] = _allow(error)
            message = error.description or "Method not allowed."
        else:
            message = error.description or error.name
        return json_error(status, message, headers=headers)
    custom = error.description != type(error).description
    response = current_app.make_response(_page(status, error.description if custom else None))
    if status == 405:
        response.headers["Allow"] = _allow(error)
    return response


#: Values a request may carry that Python or the database cannot hold: a 422, never a 500.
_OUT_OF_RANGE = {
    OverflowError: "A number in the request is out of range.",
    sa.exc.DataError: "A value in the request is out of range for the database.",
}


def _out_of_range(error: Exception) -> Any:
    message = next(m for kind, m in _OUT_OF_RANGE.items() if isinstance(error, kind))
    if http.is_api_request():
        return json_error(422, message)
    return _page(422, message)


def _unexpected(error: Exception) -> Any:
    current_app.logger.exception("unhandled error (request %s)", http.request_id())
    if http.is_api_request():
        return json_error(500, "Internal error; it was logged with the request id.")
    return _page(InternalServerError.code)


def register(app: APIFlask) -> None:
    """Install the error handlers on the app."""
    app.error_processor(_api_error)
    app.register_error_handler(ServiceError, _service_error)
    app.register_error_handler(HTTPException, _http_error)
    for kind in _OUT_OF_RANGE:
        app.register_error_handler(kind, _out_of_range)
    app.register_error_handler(Exception, _unexpected)
