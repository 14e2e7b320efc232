"""The JSON API under /api/v1 (bearer tokens; OpenAPI at /api/v1/openapi.json)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from apiflask import APIBlueprint
from flask import Response, g, request

from app import http
from app.auth import require
from app.policy import Action
from app.services import idempotency

bp = APIBlueprint("api", __name__, url_prefix="/api/v1", tag="IVIG assistant")

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


#: Ids are 32-bit integers (PostgreSQL `integer`): a larger one in a path is out of range (422).
_MAX_ID = 2**31 - 1
#: Path parameters that are dates (the view parses them, so a bad one is a 422 naming it).
_DATE_PARAMETERS = frozenset({"day"})


def complete_document(spec: dict[Any, Any] | str) -> dict[Any, Any] | str:
    """Say in the document what the API does: a JSON body is required where one is taken, an
    id in a path is a positive 32-bit integer, a date in a path is a date, and an overlong URL
    is a 414."""
    if isinstance(spec, str):
        return spec
    for operations in spec.get("paths", {}).values():
        parameters = list(operations.get("parameters", ()))
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
            # gunicorn refuses a request line over 4 KB before the app sees it.
            operation.setdefault("responses", {}).setdefault(
                "414", {"description": "URI too long (the server's limit is 4,094 bytes)"}
            )
            parameters += operation.get("parameters", ())
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if parameter.get("in") != "path":
                continue
            if schema.get("type") == "integer":
                schema.update(minimum=1, maximum=_MAX_ID)
            elif parameter.get("name") in _DATE_PARAMETERS:
                schema.update(format="date")
    return spec


@bp.before_request
def _replay_or_claim() -> Any:
    """With an Idempotency-Key, answer a finished retry from the store, or claim the key."""
    key = request.headers.get("Idempotency-Key")
    user = http.current_user()
    if key is None or request.method not in _WRITES or user is None:
        return None
    key_id, stored = idempotency.claim(
        http.db(), user.id, key, request.method, request.path, request.get_data(cache=True)
    )
    if stored is not None:
        response = Response(stored.body, status=stored.status, content_type=stored.content_type)
        response.headers["Idempotent-Replayed"] = "true"
        return response
    g.idempotency_key = key_id
    return None


@bp.after_request
def _remember_answer(response: Response) -> Response:
    key_id = g.pop("idempotency_key", None)
    if key_id is not None:
        http.db().rollback()  # whatever the view left open; its work is committed or gone
        idempotency.finish(
            http.db(), key_id, response.status_code, response.get_data(), response.content_type
        )
    return response


F = TypeVar("F", bound=Callable[..., Any])


def guarded(action: Action) -> Callable[[F], F]:
    """Apply the policy and document the bearer requirement and its error answers."""

    def decorator(view: F) -> F:
        view = require(action)(view)
        return bp.doc(
            security="BearerAuth",
            responses={
                400: "Malformed request (not JSON, not an object, nested too deep)",
                401: "No or invalid bearer token",
                403: "Role not allowed",
                404: "No such record",
                409: "Conflicts with the record as it is now (stale version, a therapy rule)",
                422: "A field is missing, of the wrong type or out of range (named in error.field)",
            },
        )(view)

    return decorator


from app.api import (  # noqa: E402, F401  (register routes)
    admin,
    assessments,
    boards,
    centers,
    feeds,
    infusions,
    labs,
    patients,
    recalls,
    records,
    regimens,
    reviews,
    suggestions,
    tapers,
    visits,
)
