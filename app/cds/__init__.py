"""HL7 CDS Hooks 2.0 under /cds-services: discovery, the patient-view and order-sign services
and their feedback.

Each call but discovery carries a JWT signed by an EHR registered in config.toml
([[cds.clients]]); answers and errors are JSON. Not in the OpenAPI document: the CDS Hooks
specification is these endpoints' contract. Browsers of SMART apps may call from the origins
[cds].cors_origins names (CORS; preflights are answered): the JWT, never a cookie, is what
lets a call in, so a browser's origin decides only whether it may read the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app import clock, errors, http, policy
from app.cds import auth, bodies
from app.config import Settings
from app.services import cds as cds_service
from app.services.context import Actor
from app.services.errors import NotFound, ServiceError

bp = Blueprint("cds", __name__)

#: Where init_app keeps the registered clients (their keys are read once, at start).
CLIENTS_KEY = "cds_clients"


def init_app(app: Flask) -> None:
    """Read the clients' keys (a bad key set stops the app) and register the endpoints.

    The pages' CSRF check (app/web/csrf.py) passes CDS calls by: they carry a signed JWT
    and no cookie, and a CDS client cannot send a CSRF token.
    """
    settings: Settings = app.extensions["ivig"].settings
    app.extensions[CLIENTS_KEY] = auth.load_clients(settings)
    app.register_blueprint(bp)


#: What a browser may send to /cds-services from another origin (CORS preflight).
_CORS_METHODS = "GET, POST, OPTIONS"
_CORS_HEADERS = "Authorization, Content-Type, Accept"
#: Seconds a browser may cache a preflight's answer.
_CORS_MAX_AGE = "600"


@bp.after_request
def _cors(response: Response) -> Response:
    """Let the configured origins' browsers read our answers (errors too) and preflight."""
    origins = http.settings().cds.cors_origins
    origin = request.headers.get("Origin")
    if "*" in origins:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin is not None:
        response.vary.add("Origin")
        if origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
    if "Access-Control-Allow-Origin" in response.headers:
        response.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate, X-Request-ID"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = _CORS_METHODS
            response.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
            response.headers["Access-Control-Max-Age"] = _CORS_MAX_AGE
    return response


def _error(status: int, message: str, field: str | None = None) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="cds-services"'} if status == 401 else None
    return errors.json_error(status, message, field, headers=headers)


@bp.errorhandler(auth.TokenRefused)
def _refused(error: auth.TokenRefused) -> Response:
    # Not an audit row: refused callers must not be able to grow the append-only trail.
    current_app.logger.warning("CDS Hooks call refused (401): %s", error.message)
    return _error(401, error.message)


@bp.errorhandler(bodies.BadBody)
def _bad_body(error: bodies.BadBody) -> Response:
    return _error(400, error.message, error.field)


@bp.errorhandler(ServiceError)
def _service_error(error: ServiceError) -> Response:
    return errors.json_error(error.status, error.message, error.field, error.code)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    return _error(status, error.description or error.name)


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    current_app.logger.exception("unhandled error (request %s)", http.request_id())
    return _error(500, "Internal error; it was logged with the request id.")


def _service(service_id: str) -> cds_service.CdsService:
    service = cds_service.SERVICES.get(service_id)
    if service is None:
        raise NotFound(f"No CDS service {service_id!r}: GET /cds-services lists them.")
    return service


def _base_url() -> str:
    settings = http.settings()
    return settings.cds.audience or settings.feeds.public_base_url or request.url_root.rstrip("/")


def _authenticate(*paths: str) -> tuple[auth.Client, Actor]:
    """The registered client calling (its JWT's aud one of these paths of this service)."""
    token = auth.bearer_token(request.headers.get("Authorization", ""))
    base = _base_url()
    client = auth.verify(
        http.db(),
        current_app.extensions[CLIENTS_KEY],
        http.settings().cds,
        token,
        [base + path for path in paths],
        clock.now(),
    )
    actor = Actor(
        label=f"ehr:{client.issuer}"[:254], role=policy.EHR_CLIENT, request_id=http.request_id()
    )
    return client, actor


def _json_body() -> Mapping[str, Any]:
    body = request.get_json(silent=True) if request.is_json else None
    if not isinstance(body, Mapping):
        raise bodies.BadBody(None, "Send a JSON object with Content-Type: application/json.")
    return body


def _page_url(patient_id: int, section: str) -> str:
    return http.public_url("care.patient", patient_id=patient_id, _anchor=section)


@bp.get("/cds-services")
def discovery() -> Response:
    """The services this server offers (no token needed: it tells nothing about patients)."""
    return jsonify(cds_service.discovery())


def _same_patient(patient_resource: Mapping[str, Any] | None, fhir_patient_id: str) -> None:
    patient_id = (patient_resource or {}).get("id")
    if patient_id is not None and patient_id != fhir_patient_id:
        raise bodies.BadBody(
            "prefetch.patient.id", "must be context.patientId: the Patient in context"
        )


@bp.post("/cds-services/<service_id>")
def call(service_id: str) -> Response:
    """Answer a hook with cards: patient-view's for a patient we cannot match by MRN are none;
    order-sign's check the draft IVIG orders."""
    service = _service(service_id)
    client, actor = _authenticate(f"/cds-services/{service.id}")
    body = _json_body()
    settings = http.settings()
    call: cds_service.PatientView | cds_service.OrderSign
    if service.hook == cds_service.ORDER_SIGN.hook:
        call = bodies.order_sign(body, service, settings.cds)
    else:
        call = bodies.patient_view(body, service)
    if not bodies.has_patient_prefetch(body):
        # The spec: without the prefetch it needs and no way to fetch it, a service says 412.
        return _error(
            412,
            f"Send prefetch.{cds_service.PATIENT_PREFETCH}: this service does not call the EHR's "
            "FHIR server.",
            f"prefetch.{cds_service.PATIENT_PREFETCH}",
        )
    _same_patient(call.patient_resource, call.fhir_patient_id)
    if isinstance(call, cds_service.OrderSign):
        cards = cds_service.order_sign_cards(
            http.db(), actor, client.issuer, settings, call, _page_url
        )
    else:
        cards = cds_service.patient_view_cards(
            http.db(), actor, client.issuer, settings, call, _page_url
        )
    return jsonify(cards=cards)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    """Record what the EHR's user did with our cards (an override rejects a suggestion)."""
    service = _service(service_id)
    client, actor = _authenticate(
        f"/cds-services/{service.id}/feedback", f"/cds-services/{service.id}"
    )
    entries = bodies.feedback(_json_body())
    cds_service.record_feedback(
        http.db(), actor, client.issuer, http.settings(), service.id, entries
    )
    return Response(status=200)
