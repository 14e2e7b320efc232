"""Read CDS Hooks request bodies into the service's values; a wrong one is a 400 naming the field.

Unknown fields are ignored (the spec reserves `extension` and lets hooks grow).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

from app.services import cds as cds_service

#: Longest string read from a body (ids, codes, comments); the spec sets no limits.
_MAX_TEXT = 4000


class BadBody(Exception):
    """The body is not what the spec asks for (HTTP 400)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = str(self)


def _text(value: Any, field: str | None, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadBody(field, "give a non-empty string" if required else "give a string")
    if len(value) > _MAX_TEXT:
        raise BadBody(field, f"at most {_MAX_TEXT} characters")
    return value


def _object(value: Any, field: str | None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadBody(field, "give a JSON object")
    return value


def patient_view(body: Any, service: cds_service.CdsService) -> cds_service.PatientView:
    """Read a patient-view call (hook, hookInstance, context.patientId, prefetch.patient).

    A missing prefetch.patient is None here; the view answers 412 for it (the service cannot
    fetch the Patient itself). A null one means the EHR has no such Patient.
    """
    body = _object(body, None)
    hook = _text(body.get("hook"), "hook")
    if hook != service.hook:
        raise BadBody("hook", f"this service answers the {service.hook} hook (got {hook!r})")
    hook_instance = _text(body.get("hookInstance"), "hookInstance")
    _text(body.get("fhirServer"), "fhirServer", required=False)
    context = _object(body.get("context"), "context")
    patient_id = _text(context.get("patientId"), "context.patientId")
    user = _text(context.get("userId"), "context.userId", required=False)
    prefetch = body.get("prefetch")
    resource = None
    if prefetch is not None:
        resource = _object(prefetch, "prefetch").get(cds_service.PATIENT_PREFETCH)
        if resource is not None:
            resource = _object(resource, "prefetch.patient")
    assert hook_instance is not None and patient_id is not None
    return cds_service.PatientView(hook_instance, patient_id, user, resource)


def has_patient_prefetch(body: Mapping[str, Any]) -> bool:
    """Whether the call carries the prefetch.patient key (null counts: the EHR has none)."""
    prefetch = body.get("prefetch")
    return isinstance(prefetch, Mapping) and cds_service.PATIENT_PREFETCH in prefetch


def _timestamp(value: Any, field: str) -> dt.datetime:
    text = _text(value, field)
    assert text is not None
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadBody(field, "give an ISO 8601 date and time, e.g. 2026-12-03T10:05:31Z") from None
    if instant.utcoffset() is None:
        raise BadBody(field, "give the time in UTC, e.g. 2026-12-03T10:05:31Z")
    return instant.astimezone(dt.UTC)


def _coding(value: Any, field: str) -> cds_service.Coding | None:
    if value is None:
        return None
    coding = _object(value, field)
    code = _text(coding.get("code"), f"{field}.code")
    system = _text(coding.get("system"), f"{field}.system", required=False) or ""
    display = _text(coding.get("display"), f"{field}.display", required=False)
    assert code is not None
    return cds_service.Coding(code, system, display)


def _entry(value: Any, field: str) -> cds_service.Feedback:
    entry = _object(value, field)
    card = _text(entry.get("card"), f"{field}.card")
    outcome = entry.get("outcome")
    if outcome not in ("accepted", "overridden"):
        raise BadBody(f"{field}.outcome", f'give "accepted" or "overridden" (got {outcome!r})')
    when = _timestamp(entry.get("outcomeTimestamp"), f"{field}.outcomeTimestamp")
    reason = entry.get("overrideReason")
    coding, comment = None, None
    if reason is not None:
        reason = _object(reason, f"{field}.overrideReason")
        coding = _coding(reason.get("reason"), f"{field}.overrideReason.reason")
        comment = _text(
            reason.get("userComment"), f"{field}.overrideReason.userComment", required=False
        )
    accepted = entry.get("acceptedSuggestions") or []
    if not isinstance(accepted, list):
        raise BadBody(f"{field}.acceptedSuggestions", "give a list")
    ids = tuple(
        _text(_object(s, f"{field}.acceptedSuggestions.{n}").get("id"), f"{field}.id") or ""
        for n, s in enumerate(accepted)
    )
    assert card is not None
    kind: Literal["accepted", "overridden"] = outcome
    return cds_service.Feedback(card, kind, when, coding, comment, ids)


def feedback(body: Any) -> list[cds_service.Feedback]:
    """Read a feedback call: {"feedback": [{card, outcome, overrideReason, outcomeTimestamp}]}."""
    entries = _object(body, None).get("feedback")
    if not isinstance(entries, list):
        raise BadBody("feedback", "give a list of feedback entries")
    if len(entries) > cds_service.MAX_FEEDBACK:
        raise BadBody("feedback", f"at most {cds_service.MAX_FEEDBACK} entries a call")
    return [_entry(value, f"feedback.{n}") for n, value in enumerate(entries)]
