"""HL7 CDS Hooks 2.0: the cards a registered EHR gets for a patient, and what its feedback does.

The EHR only reads advice here. Its clinician overriding a suggestion's card records the
suggestion's rejection (the decision record our pages use, with the reason given); accepting
one changes nothing, since therapy changes only with a physician's approval on our pages.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import sqlalchemy as sa
import sqlalchemy.dialects.postgresql
import sqlalchemy.dialects.sqlite
import sqlalchemy.orm as so

from app import clock, policy
from app.config import Settings
from app.models import AdverseEvent, CdsTokenId, Patient, Suggestion, TaperStep
from app.services import adverse_events, audit, reviews, suggestions, tapers
from app.services.context import Actor, unit_of_work
from app.services.errors import Forbidden, ServiceError

#: The spec: a card's summary is under 140 characters.
SUMMARY_MAX = 139
#: Code systems this service defines (URNs: nothing is fetched from them).
TOPIC_SYSTEM = "urn:ivig-assistant:cds:topic"
OVERRIDE_REASON_SYSTEM = "urn:ivig-assistant:cds:override-reason"
#: Feedback entries one call may carry (the spec sets no limit; this bounds the work).
MAX_FEEDBACK = 100


@dataclasses.dataclass(frozen=True)
class Coding:
    """The CDS Hooks Coding: a code in a system, with a display for people."""

    code: str
    system: str
    display: str | None = None

    def as_json(self) -> dict[str, str]:
        value = {"code": self.code, "system": self.system}
        if self.display is not None:
            value["display"] = self.display
        return value


#: What a clinician may pick when overriding a suggestion's card (CDS Hooks overrideReasons).
OVERRIDE_REASONS = (
    Coding("patient-preference", OVERRIDE_REASON_SYSTEM, "Patient preference"),
    Coding("clinical-judgement", OVERRIDE_REASON_SYSTEM, "Clinical judgement"),
    Coding("already-addressed", OVERRIDE_REASON_SYSTEM, "Already addressed"),
)


@dataclasses.dataclass(frozen=True)
class CdsService:
    """One service the discovery endpoint lists."""

    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch),
        }


#: The prefetch key under which the EHR sends the Patient being viewed.
PATIENT_PREFETCH = "patient"

PATIENT_VIEW = CdsService(
    id="ivig-patient-view",
    hook="patient-view",
    title="IVIG therapy: decisions waiting",
    description=(
        "Pending IVIG and steroid-taper suggestions for a physician's decision, taper steps due, "
        "an overdue IVIG course review and unresolved serious adverse events, for a patient "
        "the IVIG assistant knows by MRN."
    ),
    prefetch={PATIENT_PREFETCH: "Patient/{{context.patientId}}"},
)

SERVICES: dict[str, CdsService] = {PATIENT_VIEW.id: PATIENT_VIEW}


def discovery() -> dict[str, Any]:
    """The discovery document: every service with its hook and prefetch templates."""
    return {"services": [service.as_json() for service in SERVICES.values()]}


# --- JWT ids -----------------------------------------------------------------------------------


def claim_token_id(
    session: so.Session, issuer: str, jti: str, expires_at: dt.datetime, now: dt.datetime
) -> bool:
    """Record a client's JWT id; False when it was already used (a replay). One unit.

    Ids whose token has expired are purged: the token's own exp refuses those by now.
    """
    insert = (
        sa.dialects.postgresql.insert
        if session.get_bind().dialect.name == "postgresql"
        else sa.dialects.sqlite.insert
    )
    with unit_of_work(session):
        session.execute(sa.delete(CdsTokenId).where(CdsTokenId.expires_at < now))
        claimed = session.scalar(
            insert(CdsTokenId)
            .values(issuer=issuer, jti=jti, expires_at=expires_at, used_at=now)
            .on_conflict_do_nothing(index_elements=["issuer", "jti"])
            .returning(CdsTokenId.jti)
        )
    return claimed is not None


# --- matching the EHR's patient ----------------------------------------------------------------


def mrn_of(patient_resource: Mapping[str, Any] | None, system: str) -> str | None:
    """The MRN on a FHIR Patient: the value of its one identifier in `system` (else None).

    Two different values in the system are ambiguous, so they match nobody.
    """
    if not isinstance(patient_resource, Mapping):
        return None
    if patient_resource.get("resourceType") != "Patient":
        return None
    identifiers = patient_resource.get("identifier")
    if not isinstance(identifiers, list):
        return None
    values = {
        ident["value"].strip()
        for ident in identifiers
        if isinstance(ident, Mapping)
        and ident.get("system") == system
        and isinstance(ident.get("value"), str)
        and ident["value"].strip()
    }
    return values.pop() if len(values) == 1 else None


# --- cards -------------------------------------------------------------------------------------

#: (patient id, section of the patient page) -> an absolute URL of that page.
PageUrl = Callable[[int, str], str]

#: What makes Markdown of plain text anywhere in a line: links, tags, emphasis, code, tables...
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>|~])")
#: ...and at the start of a line: headings, lists ("-", "+", "1." or "1)"), setext rules.
_MARKDOWN_LINE_START = re.compile(r"^(\s*\d*)([#+=.)-])", re.MULTILINE)


def markdown_text(text: str) -> str:
    """Text as literal GitHub-flavoured Markdown: no link, tag, emphasis or list syntax in it
    takes effect (a bare URL may still be shown as a link by the client)."""
    escaped = _MARKDOWN_INLINE.sub(r"\\\1", text)
    return _MARKDOWN_LINE_START.sub(r"\1\\\2", escaped)


def short_summary(text: str) -> str:
    """One line under 140 characters; a longer one is cut at a word and marked with an ellipsis."""
    line = " ".join(text.split())
    if len(line) <= SUMMARY_MAX:
        return line
    cut = line[: SUMMARY_MAX - 1]
    if " " in cut[SUMMARY_MAX // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"


def card_uuid(settings: Settings, issuer: str, kind: str, ident: str) -> str:
    """A card's stable id for one EHR: what it is, and a MAC so that only the EHR the card was
    given to can send feedback about it (ids are otherwise easy to guess). A new secret key
    makes new ids: feedback about cards given before is then ignored."""
    mac = hmac.new(
        settings.app.secret_key.encode(),
        f"cds-card|{issuer}|{kind}|{ident}".encode(),
        hashlib.sha256,
    ).hexdigest()[:24]
    return f"{kind}.{ident}.{mac}"


def parse_card_uuid(settings: Settings, issuer: str, card: str) -> tuple[str, str] | None:
    """(kind, ident) of a card this service gave to this EHR, or None."""
    parts = card.split(".")
    if len(parts) != 3:
        return None
    kind, ident, _mac = parts
    if not hmac.compare_digest(card_uuid(settings, issuer, kind, ident), card):
        return None
    return kind, ident


@dataclasses.dataclass(frozen=True)
class PatientView:
    """A patient-view call as the EHR made it."""

    hook_instance: str
    #: The EHR's FHIR Patient.id (context.patientId): not our MRN.
    fhir_patient_id: str
    #: context.userId, e.g. "Practitioner/123" (who looks, in the EHR).
    user: str | None
    #: prefetch.patient: the FHIR Patient, or None when the EHR has none.
    patient_resource: Mapping[str, Any] | None


@dataclasses.dataclass(frozen=True)
class _CardContext:
    settings: Settings
    issuer: str
    page_url: PageUrl
    source_label: str


_ORDER = {"critical": 0, "warning": 1, "info": 2}


def patient_view_cards(
    session: so.Session,
    actor: Actor,
    issuer: str,
    settings: Settings,
    call: PatientView,
    page_url: PageUrl,
) -> list[dict[str, Any]]:
    """The cards for the patient the EHR shows (none for a patient we cannot match); audited."""
    if not policy.ehr_may(actor.role, policy.EhrAction.VIEW_CARDS):
        raise Forbidden("Only a registered EHR reads CDS cards here.")
    with unit_of_work(session):
        mrn = mrn_of(call.patient_resource, settings.cds.patient_identifier_system)
        patient = session.scalar(sa.select(Patient).where(Patient.mrn == mrn)) if mrn else None
        cards: list[dict[str, Any]] = []
        if patient is not None:
            context = _CardContext(
                settings, issuer, page_url, f"IVIG assistant ({settings.app.clinic_name})"
            )
            cards = _cards_for(session, patient, context)
        audit.record(
            session,
            actor,
            "cds.patient_view",
            "patient",
            patient.id if patient else None,
            after={
                "hook_instance": call.hook_instance[:100],
                "fhir_patient_id": call.fhir_patient_id[:100],
                "user": (call.user or "")[:200] or None,
                "matched": patient is not None,
                "cards": [card["uuid"] for card in cards],
            },
        )
    return cards


def _cards_for(
    session: so.Session, patient: Patient, context: _CardContext
) -> list[dict[str, Any]]:
    today = clock.clinic_today(patient.home_center.timezone)
    pending = [s for s in suggestions.for_patient(session, patient.id) if s.status == "pending"]
    cards = [_suggestion_card(s, patient, context) for s in pending]
    step = _due_step(session, patient.id, context.settings, today)
    if step is not None and not any(s.step_id == step[0].id for s in pending):
        cards.append(_taper_card(*step, patient, context))
    review = reviews.status(session, patient.id, context.settings, today)
    if review.overdue and review.point is not None:
        cards.append(_review_card(review, patient, context))
    cards += [
        _event_card(e, patient, context) for e in adverse_events.open_serious(session, patient.id)
    ]
    return sorted(cards, key=lambda card: _ORDER[card["indicator"]])


def _card(
    context: _CardContext,
    kind: str,
    ident: str,
    *,
    summary: str,
    indicator: str,
    detail: str,
    topic: Coding,
    link: tuple[str, str],
    overridable: bool = False,
) -> dict[str, Any]:
    label, url = link
    card: dict[str, Any] = {
        "uuid": card_uuid(context.settings, context.issuer, kind, ident),
        "summary": short_summary(summary),
        "indicator": indicator,
        "detail": detail,
        "source": {"label": context.source_label, "topic": topic.as_json()},
        "links": [{"label": label, "url": url, "type": "absolute"}],
    }
    if overridable:
        card["overrideReasons"] = [reason.as_json() for reason in OVERRIDE_REASONS]
    return card


def _suggestion_card(
    suggestion: Suggestion, patient: Patient, context: _CardContext
) -> dict[str, Any]:
    evidence = ", ".join(str(i) for i in suggestion.evidence) or "none"
    detail = "\n\n".join(
        [
            markdown_text(suggestion.detail.strip()),
            f"*Rule {markdown_text(suggestion.rule_id)} version {suggestion.rule_version}, "
            f"suggested on {suggestion.created_at.date().isoformat()}; evidence: assessments "
            f"{evidence}.*",
            "Accepting this card in the EHR changes no therapy: a physician approves or rejects "
            "the suggestion in the IVIG assistant. Overriding it here records its rejection "
            "with the reason given.",
        ]
    )
    return _card(
        context,
        "suggestion",
        str(suggestion.id),
        summary=suggestion.summary,
        indicator=suggestion.indicator,
        detail=detail,
        topic=Coding(
            f"{suggestion.rule_id}@{suggestion.rule_version}",
            TOPIC_SYSTEM,
            f"Rule {suggestion.rule_id}, version {suggestion.rule_version}",
        ),
        link=("Decide in the IVIG assistant", context.page_url(patient.id, "suggestions")),
        overridable=True,
    )


def _due_step(
    session: so.Session, patient_id: int, settings: Settings, today: dt.date
) -> tuple[TaperStep, str, float | None, dt.date] | None:
    """The patient's taper step waiting for approval (as tapers.due_queue finds it), with the
    drug, today's dose and the day it became due."""
    view = tapers.patient_taper(session, patient_id, settings, today)
    step = view.next
    if view.plan is None or step is None or not tapers.is_due(step, view.steps, today):
        return None
    assert view.next_due_on is not None  # is_due needs it
    return step, view.plan.drug, view.active.mg_per_day if view.active else None, view.next_due_on


def _taper_card(
    step: TaperStep,
    drug: str,
    current_mg: float | None,
    due_on: dt.date,
    patient: Patient,
    context: _CardContext,
) -> dict[str, Any]:
    now = f" (from {current_mg:g} mg/day)" if current_mg is not None else ""
    detail = (
        f"The next step of the {markdown_text(drug)} taper, {step.mg_per_day:g} mg/day{now}, is "
        f"due since {due_on.isoformat()}. The dose changes only when a physician approves the "
        "step in the IVIG assistant."
    )
    if step.requires_cortisol:
        detail += " Stopping needs a morning cortisol first."
    return _card(
        context,
        "taper-step",
        str(step.id),
        summary=f"Steroid taper step due: {drug} {step.mg_per_day:g} mg/day since "
        f"{due_on.isoformat()}, awaiting a physician's approval",
        indicator="info",
        detail=detail,
        topic=Coding("taper-step-due", TOPIC_SYSTEM, "Steroid taper step due"),
        link=("Open the taper in the IVIG assistant", context.page_url(patient.id, "taper")),
    )


def _review_card(
    review: reviews.ReviewStatus, patient: Patient, context: _CardContext
) -> dict[str, Any]:
    point = review.point
    assert point is not None
    due = point.due_on.isoformat()
    parts = [
        f"Review {point.number} of the IVIG course ({markdown_text(point.reason)}) was due on "
        f"{due}. Until a physician records it, no new cycles are booked, and a cycle starts at "
        "the chair only with a reason."
    ]
    if review.missing_labels:
        parts.append(
            "Measures it needs and not yet recorded: "
            + markdown_text(", ".join(review.missing_labels))
            + "."
        )
    return _card(
        context,
        "course-review",
        f"{patient.id}-{point.number}",
        summary=f"IVIG course review overdue since {due}: new cycles wait for a physician's review",
        indicator="warning",
        detail="\n\n".join(parts),
        topic=Coding("course-review-overdue", TOPIC_SYSTEM, "IVIG course review overdue"),
        link=(
            "Record the review in the IVIG assistant",
            context.page_url(patient.id, "course-review"),
        ),
    )


def _event_card(event: AdverseEvent, patient: Patient, context: _CardContext) -> dict[str, Any]:
    kind = event.event_type.replace("_", " ")
    parts = [
        f"A serious {kind} (grade {event.grade}) on {event.occurred_on.isoformat()} is not "
        "resolved. No IVIG de-escalation or steroid taper step is proposed until a physician "
        "resolves it in the IVIG assistant; review whether IVIG can continue safely."
    ]
    if event.description.strip():
        parts.append("Recorded: " + markdown_text(event.description.strip()))
    return _card(
        context,
        "adverse-event",
        str(event.id),
        summary=f"Serious adverse event not resolved: {kind}, grade {event.grade}, on "
        f"{event.occurred_on.isoformat()}; IVIG safety review needed",
        indicator="critical",
        detail="\n\n".join(parts),
        topic=Coding("serious-adverse-event", TOPIC_SYSTEM, "Serious adverse event"),
        link=(
            "Open the adverse events in the IVIG assistant",
            context.page_url(patient.id, "adverse-events"),
        ),
    )


# --- feedback ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Feedback:
    """One feedback entry: what the EHR's user did with one card."""

    card: str
    outcome: Literal["accepted", "overridden"]
    outcome_at: dt.datetime
    reason: Coding | None = None
    comment: str | None = None
    accepted_suggestions: tuple[str, ...] = ()


#: The reason text a rejection keeps may be this long (suggestions.reject's limit).
_REASON_MAX = 2000


def override_reason(entry: Feedback) -> str:
    """The rejection reason recorded for an override: "EHR override: <display> — <comment>"."""
    known = {r.code: r.display for r in OVERRIDE_REASONS}
    said = None
    if entry.reason is not None:
        said = entry.reason.display or (
            known.get(entry.reason.code) if entry.reason.system == OVERRIDE_REASON_SYSTEM else None
        )
        said = said or entry.reason.code
    text = f"EHR override: {said or 'no reason given'}"
    comment = " ".join((entry.comment or "").split())
    if comment:
        text += f" — {comment}"
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 1] + "…"


def record_feedback(
    session: so.Session,
    actor: Actor,
    issuer: str,
    settings: Settings,
    service_id: str,
    entries: Sequence[Feedback],
) -> list[dict[str, Any]]:
    """Apply an EHR's feedback in one unit, with one audit row; return what each entry did.

    An override of a pending suggestion's card rejects it (suggestions.reject, with the EHR's
    reason); anything else (an accepted card, another card's override, a card we did not give
    this EHR, a suggestion already decided) only goes into the audit row.
    """
    if not policy.ehr_may(actor.role, policy.EhrAction.RECORD_OVERRIDE):
        raise Forbidden("Only a registered EHR sends CDS feedback here.")
    with unit_of_work(session):
        results = [_apply(session, actor, issuer, settings, entry) for entry in entries]
        audit.record(
            session, actor, "cds.feedback", "cds_service", service_id, after={"entries": results}
        )
    return results


def _apply(
    session: so.Session, actor: Actor, issuer: str, settings: Settings, entry: Feedback
) -> dict[str, Any]:
    noted: dict[str, Any] = {
        "card": entry.card[:200],
        "outcome": entry.outcome,
        "outcome_at": entry.outcome_at,
        "reason": entry.reason.as_json() if entry.reason else None,
        "comment": (entry.comment or "")[:_REASON_MAX] or None,
    }
    parsed = parse_card_uuid(settings, issuer, entry.card)
    if parsed is None:
        return noted | {"result": "ignored: not a card this service gave this EHR"}
    kind, ident = parsed
    noted |= {"kind": kind, "id": ident}
    if kind != "suggestion" or entry.outcome == "accepted":
        return noted | {"result": "noted: no therapy changes without a physician's approval"}
    suggestion = session.get(Suggestion, int(ident))
    if suggestion is None:
        return noted | {"result": "ignored: the suggestion is gone"}
    if suggestion.status != "pending":
        return noted | {"result": f"ignored: the suggestion is already {suggestion.status}"}
    try:
        with session.begin_nested():
            suggestions.reject(session, actor, suggestion.id, override_reason(entry))
    except ServiceError as exc:
        return noted | {"result": f"ignored: {exc.message}"}
    return noted | {"result": "rejected", "patient_id": suggestion.patient_id}
