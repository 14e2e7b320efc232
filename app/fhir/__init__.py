"""FHIR R4 under /fhir: Patient/$everything (a Bundle of the whole record) and the lab import.

Who may call: staff signed in to the pages (session cookie; a POST needs the page's CSRF token
as X-CSRF-Token) or with an API token (`Authorization: Bearer <token>`), and a registered EHR
with a JWT signed as for CDS Hooks (app/cds/auth.py verifies it; its `aud` is <base>/fhir).
Every answer, errors too, is application/fhir+json; an error is an OperationOutcome.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fhir.resources.R4B.operationoutcome import OperationOutcome
from flask import Blueprint, Flask, current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app import cds, clock, http, policy
from app.auth import POLICY_ATTRIBUTE
from app.cds import auth as cds_auth
from app.policy import Action, EhrAction
from app.services import fhir_export, fhir_import
from app.services import users as user_service
from app.services.context import Actor
from app.services.errors import AuthenticationFailed, Forbidden, ServiceError

bp = Blueprint("fhir", __name__, url_prefix="/fhir")

MEDIA_TYPE = "application/fhir+json"

#: HTTP status -> the OperationOutcome issue type (hl7.org/fhir/R4/valueset-issue-type.html).
_ISSUE_TYPE = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "invalid",
}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _fhir_json(body: dict[str, Any], status: int = 200) -> Response:
    response = Response(
        json.dumps(body, ensure_ascii=False), status=status, content_type=MEDIA_TYPE
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="fhir"'
    return response


def outcome(status: int, issues: Sequence[fhir_import.Issue]) -> Response:
    """An OperationOutcome (validated by its model) with this HTTP status."""
    body = fhir_export.validated(
        OperationOutcome,
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "fatal" if status >= 500 else "error",
                    "code": issue.code,
                    "diagnostics": issue.text,
                    **({"expression": [issue.expression]} if issue.expression else {}),
                }
                for issue in issues
            ],
        },
    )
    return _fhir_json(body, status)


def _one(status: int, text: str, expression: str = "", code: str | None = None) -> Response:
    return outcome(
        status, [fhir_import.Issue(expression, code or _ISSUE_TYPE.get(status, "exception"), text)]
    )


@bp.errorhandler(cds_auth.TokenRefused)
def _refused(error: cds_auth.TokenRefused) -> Response:
    # Not an audit row: refused callers must not be able to grow the append-only trail.
    current_app.logger.warning("FHIR call refused (401): %s", error.message)
    return _one(401, error.message)


@bp.errorhandler(fhir_import.BundleRefused)
def _bundle_refused(error: fhir_import.BundleRefused) -> Response:
    return outcome(error.status, error.issues)


@bp.errorhandler(ServiceError)
def _service_error(error: ServiceError) -> Response:
    return _one(error.status, error.message, error.field or "")


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    return _one(status, error.description or error.name)


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    current_app.logger.exception("unhandled error (request %s)", http.request_id())
    return _one(500, "Internal error; it was logged with the request id.", code="exception")


def _base_url() -> str:
    settings = http.settings()
    return settings.cds.audience or settings.feeds.public_base_url or request.url_root.rstrip("/")


def _ehr_actor(token: str) -> Actor:
    client = cds_auth.verify(
        http.db(),
        current_app.extensions[cds.CLIENTS_KEY],
        http.settings().cds,
        token,
        [_base_url() + "/fhir"],
        clock.now(),
    )
    return Actor(
        label=f"ehr:{client.issuer}"[:254], role=policy.EHR_CLIENT, request_id=http.request_id()
    )


def caller(staff_action: Action, ehr_action: EhrAction) -> Actor:
    """Who is calling, after the policy: an EHR's JWT, a staff API token, or the staff
    session. A bearer header, when sent, is the only credential read."""
    header = request.headers.get("Authorization")
    if header is not None:
        token = cds_auth.bearer_token(header)
        if not token.startswith(user_service.TOKEN_PREFIX):
            actor = _ehr_actor(token)
            if not policy.ehr_may(actor.role, ehr_action):
                raise Forbidden("This EHR client may not do this.")
            return actor
        g.user = user_service.resolve_api_token(http.db(), token)
        if g.user is None:
            raise AuthenticationFailed("The API token is unknown, expired or revoked.")
    user = http.current_user()
    if user is None:
        raise AuthenticationFailed(
            "Sign in, or send Authorization: Bearer <API token or a registered EHR's JWT>."
        )
    if not policy.can(user.role, staff_action):
        raise Forbidden("Your role does not allow this.")
    return http.actor()


F = TypeVar("F", bound=Callable[..., Any])


def guarded(staff_action: Action, ehr_action: EhrAction) -> Callable[[F], F]:
    """Apply the policy to a FHIR view, which gets the acting Actor as `actor`."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            return view(*args, actor=caller(staff_action, ehr_action), **kwargs)

        setattr(wrapped, POLICY_ATTRIBUTE, staff_action)
        return wrapped  # type: ignore[return-value]

    return decorator


@bp.get("/Patient/<int:patient_id>/$everything")
@guarded(Action.EXPORT_RECORD, EhrAction.READ_RECORD)
def everything(patient_id: int, actor: Actor) -> Response:
    """The patient's whole record as a searchset Bundle (audited)."""
    bundle = fhir_export.everything(
        http.db(), actor, patient_id, http.settings(), _base_url() + "/fhir"
    )
    return _fhir_json(bundle)


@bp.post("")
@guarded(Action.RECORD_ASSESSMENT, EhrAction.IMPORT_LABS)
def transaction(actor: Actor) -> Response:
    """A transaction Bundle of lab Observations: recorded all or none."""
    if not request.is_json:
        return _one(415, f"Send the Bundle as {MEDIA_TYPE}.", "Bundle")
    answer = fhir_import.import_labs(http.db(), actor, request.get_data(), http.settings())
    return _fhir_json(answer)
