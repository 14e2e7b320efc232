"""HL7 CDS Hooks 2.0: the cards a registered EHR gets for a patient, and what its feedback does.

The EHR only reads advice here. Its clinician overriding a suggestion's card records the
suggestion's rejection (the decision record our pages use, with the reason given); accepting
one changes nothing, since therapy changes only with a physician's approval on our pages.

order-sign checks the EHR's draft IVIG orders with the pages' dosing rules (app.domain.
order_check) and answers a card per finding. Its feedback is recorded as a decided Suggestion
of kind "order_check" (rule "order-sign.<check>"): approved when the clinician accepted the
card, rejected with the reason when they overrode it. The card's id carries what the card
said (under a MAC), so nothing is stored when a card is only shown.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import sqlalchemy as sa
import sqlalchemy.dialects.postgresql
import sqlalchemy.dialects.sqlite
import sqlalchemy.orm as so

from app import clock, policy
from app.config import Settings
from app.domain import order_check
from app.domain.dosing import WeightBasis
from app.models import (
    AdverseEvent,
    CdsTokenId,
    Infusion,
    Patient,
    Regimen,
    Suggestion,
    TaperStep,
)
from app.services import adverse_events, audit, regimens, reviews, suggestions, tapers
from app.services.context import Actor, unit_of_work
from app.services.errors import Forbidden, NotFound, ServiceError

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

ORDER_SIGN = CdsService(
    id="ivig-order-sign",
    hook="order-sign",
    title="IVIG order check",
    description=(
        "Checks draft IVIG MedicationRequests against the clinic's dosing rules (dose per kg "
        "per cycle and per day, days per cycle, interval and the last cycle given, rate, "
        "dosing-weight basis, whole vials) and proposes the corrected order, for a patient "
        "the IVIG assistant knows by MRN."
    ),
    prefetch={PATIENT_PREFETCH: "Patient/{{context.patientId}}"},
)

SERVICES: dict[str, CdsService] = {PATIENT_VIEW.id: PATIENT_VIEW, ORDER_SIGN.id: ORDER_SIGN}


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
        _audit_call(session, actor, "cds.patient_view", patient, call, cards)
    return cards


def _audit_call(
    session: so.Session,
    actor: Actor,
    action: str,
    patient: Patient | None,
    call: Any,
    cards: Sequence[Mapping[str, Any]],
    **details: object,
) -> None:
    """The audit row of a CDS call: who asked about whom, and the cards answered."""
    audit.record(
        session,
        actor,
        action,
        "patient",
        patient.id if patient else None,
        after={
            "hook_instance": call.hook_instance[:100],
            "fhir_patient_id": call.fhir_patient_id[:100],
            "user": (call.user or "")[:200] or None,
            "matched": patient is not None,
            **details,
            "cards": [card["uuid"] for card in cards],
        },
    )


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


# --- order-sign ----------------------------------------------------------------------------

#: The extension a draft's Dosage may carry to state its dosing-weight basis (valueCode
#: actual, ideal or adjusted); without it the clinic's basis for the patient is assumed.
WEIGHT_BASIS_EXTENSION = "urn:ivig-assistant:fhir:dosing-weight-basis"
#: Card kinds of order-sign: the card, and its suggestion (the corrected order).
ORDER_CARD = "order-check"
ORDER_FIX = "order-fix"
#: Feedback records an order check as a decided suggestion of this kind.
ORDER_CHECK_KIND = "order_check"
#: What each order check is called on a card.
_ORDER_TITLES = {
    "dose": "IVIG dose per cycle outside the clinic's limits",
    "days-per-cycle": "IVIG days per cycle outside the clinic's limits",
    "interval": "IVIG interval outside the clinic's limits",
    "grams-per-day": "IVIG grams per day above the product's maximum",
    "rate": "IVIG infusion rate above the maximum for this patient",
    "thrombosis-daily-dose": "IVIG daily dose high for a patient at thrombosis risk",
    "one-day-cycle": "IVIG dose high for a one-day cycle",
    "vial-rounding": "IVIG dose not rounded to whole vials",
    "weight-basis": "IVIG dosing weight basis differs from the clinic's",
    "interval-too-soon": "IVIG cycle too soon after the last one given",
    "product": "IVIG product not stocked by the clinic",
    "interval-unknown": "IVIG interval not stated, not checked",
    "patient": "IVIG order cannot be checked",
    "order": "IVIG order cannot be checked",
}


@dataclasses.dataclass(frozen=True)
class DraftOrder:
    """One draft IVIG MedicationRequest, read into the order check's terms (app/cds/bodies)."""

    #: Where it sits in the call, e.g. "context.draftOrders.entry.1.resource".
    field: str
    resource: Mapping[str, Any]
    #: The product the medication names: a configured one, or an IVIG brand the clinic does
    #: not stock (its check says so); None: it names none (checked as the regimen's).
    product: str | None
    amount: float
    unit: order_check.DoseUnit
    days_per_cycle: int
    #: None: the order does not say ("daily for 5 days"); its card says it is not checked.
    interval_weeks: int | None
    starts_on: dt.date | None
    weight_basis: WeightBasis | None
    rate: float | None
    rate_unit: order_check.RateUnit | None
    #: Indexes in dosageInstruction[0].doseAndRate of the dose and of the rate.
    dose_index: int
    rate_index: int | None

    @property
    def reference(self) -> str:
        ident = self.resource.get("id")
        return f"MedicationRequest/{ident}" if isinstance(ident, str) else self.field


@dataclasses.dataclass(frozen=True)
class UnreadableDraft:
    """A draft IVIG MedicationRequest whose dose or timing cannot be read: it gets a card
    saying it cannot be checked, and why (app/cds/bodies: an error would fail open)."""

    field: str
    resource: Mapping[str, Any]
    #: The part that cannot be read, e.g. "....dosageInstruction.0.timing.repeat.period".
    where: str
    #: Why, for people.
    reason: str

    @property
    def reference(self) -> str:
        ident = self.resource.get("id")
        return f"MedicationRequest/{ident}" if isinstance(ident, str) else self.field


@dataclasses.dataclass(frozen=True)
class OrderSign:
    """An order-sign call as the EHR made it; `drafts` are its IVIG MedicationRequests only."""

    hook_instance: str
    fhir_patient_id: str
    user: str | None
    patient_resource: Mapping[str, Any] | None
    drafts: tuple[DraftOrder | UnreadableDraft, ...]
    #: How many draft orders the Bundle held (IVIG or not).
    orders: int


def _b64(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, separators=(",", ":"), sort_keys=True, default=str)
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _unb64(ident: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(ident + "=" * (-len(ident) % 4)))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _last_cycle_started_on(session: so.Session, patient_id: int) -> dt.date | None:
    """First day of the last cycle of which a day was given (or partly given)."""
    last = session.scalar(
        sa.select(Infusion.cycle_number)
        .where(Infusion.patient_id == patient_id, Infusion.status.in_(("given", "partial")))
        .order_by(Infusion.planned_date.desc(), Infusion.id.desc())
        .limit(1)
    )
    if last is None:
        return None
    return session.scalar(
        sa.select(sa.func.min(Infusion.planned_date)).where(
            Infusion.patient_id == patient_id,
            Infusion.cycle_number == last,
            Infusion.status != "cancelled",
        )
    )


def _patient_facts(
    session: so.Session, patient: Patient, settings: Settings
) -> order_check.PatientFacts | str:
    """The facts an order is checked on, or why they are missing."""
    weight = regimens.latest_weight(session, patient.id)
    if weight is None:
        return "no weight is recorded for the patient"
    if patient.height_cm is None:
        return "no height is recorded for the patient"
    current = regimens.current_regimen(session, patient.id)
    basis = current.weight_basis if current else settings.dosing.weight_basis_default
    return order_check.PatientFacts(
        weight_kg=weight.weight_kg,
        height_cm=patient.height_cm,
        sex=patient.sex,  # type: ignore[arg-type]
        policy_basis=basis,  # type: ignore[arg-type]
        thrombosis_risk=patient.thrombosis_risk,
        renal_risk=patient.renal_risk,
        last_cycle_started_on=_last_cycle_started_on(session, patient.id),
    )


def order_sign_cards(
    session: so.Session,
    actor: Actor,
    issuer: str,
    settings: Settings,
    call: OrderSign,
    page_url: PageUrl,
) -> list[dict[str, Any]]:
    """Check each draft IVIG order with the pages' rules: a card per finding; audited.

    Drafts with no IVIG order get no cards whoever the patient is; IVIG drafts for a patient
    we cannot match are a 404 (they cannot be checked, and saying nothing would read as
    "no problem").
    """
    if not policy.ehr_may(actor.role, policy.EhrAction.VIEW_CARDS):
        raise Forbidden("Only a registered EHR reads CDS cards here.")
    with unit_of_work(session):
        mrn = mrn_of(call.patient_resource, settings.cds.patient_identifier_system)
        patient = session.scalar(sa.select(Patient).where(Patient.mrn == mrn)) if mrn else None
        if call.drafts and patient is None:
            raise NotFound(
                "prefetch.patient.identifier: no patient of this clinic has an MRN in "
                f"{settings.cds.patient_identifier_system} matching this Patient; its IVIG "
                "orders cannot be checked here",
                field="prefetch.patient.identifier",
            )
        cards: list[dict[str, Any]] = []
        findings: list[str] = []
        if patient is not None and call.drafts:
            context = _CardContext(
                settings, issuer, page_url, f"IVIG assistant ({settings.app.clinic_name})"
            )
            facts = _patient_facts(session, patient, settings)
            today = clock.clinic_today(patient.home_center.timezone)
            current = regimens.current_regimen(session, patient.id)
            for draft in call.drafts:
                made = _order_cards(draft, facts, today, current, patient, call, context)
                findings += [card["source"]["topic"]["code"] for card in made]
                cards += made
        _audit_call(
            session,
            actor,
            "cds.order_sign",
            patient,
            call,
            cards,
            orders=call.orders,
            ivig_orders=[draft.reference[:100] for draft in call.drafts],
            findings=findings,
        )
    return sorted(cards, key=lambda card: _ORDER[card["indicator"]])


def _order_cards(
    draft: DraftOrder | UnreadableDraft,
    facts: order_check.PatientFacts | str,
    today: dt.date,
    current: Regimen | None,
    patient: Patient,
    call: OrderSign,
    context: _CardContext,
) -> list[dict[str, Any]]:
    if isinstance(draft, UnreadableDraft):
        why = f"order cannot be checked: {draft.where}: {draft.reason}"
        unread = order_check.Finding("order", False, why, draft.reason)
        return [_order_card(draft, unread, None, patient, call, context)]
    # A draft naming a product we do not stock is checked as that product (the product
    # check says so), never as the patient's own: only one naming none is the regimen's.
    product = draft.product or (current.product if current is not None else None)
    if isinstance(facts, str) or product is None:
        why = (
            facts
            if isinstance(facts, str)
            else ("the order names no product the clinic stocks and the patient has no regimen")
        )
        finding = order_check.Finding("patient", False, why, "")
        return [_order_card(draft, finding, None, patient, call, context)]
    rules = order_check.Rules(
        context.settings.product_catalog(),
        context.settings.dosing_limits(),
        context.settings.scheduling.interval_tolerance_days,
    )
    dose = order_check.DraftDose(
        product=product,
        amount=draft.amount,
        unit=draft.unit,
        days_per_cycle=draft.days_per_cycle,
        interval_weeks=draft.interval_weeks,
        starts_on=draft.starts_on or today,
        weight_basis=draft.weight_basis,
        rate=draft.rate,
        rate_unit=draft.rate_unit,
    )
    try:
        checked = order_check.check_order(dose, facts, rules)
    except order_check.Uncheckable as exc:
        finding = order_check.Finding("patient", False, str(exc), "")
        return [_order_card(draft, finding, None, patient, call, context)]
    return [_order_card(draft, f, checked, patient, call, context) for f in checked.findings]


def corrected_order(draft: DraftOrder, correction: order_check.Correction) -> dict[str, Any]:
    """The draft MedicationRequest, whole, with one correction written in (same id).

    The narrative and the dosage's free text are left out: they would say the old dose.
    """
    resource = copy.deepcopy(dict(draft.resource))
    resource.pop("text", None)
    dosage = resource["dosageInstruction"][0]
    dosage.pop("text", None)
    rates = dosage["doseAndRate"]
    if correction.amount is not None:
        rates[draft.dose_index]["doseQuantity"]["value"] = round(correction.amount, 4)
    if correction.rate is not None and draft.rate_index is not None:
        rates[draft.rate_index]["rateQuantity"]["value"] = round(correction.rate, 4)
    if correction.amount is not None or correction.weight_basis is not None:
        # Other doses (an exported regimen's "calculated" grams) would say the old dose.
        dosage["doseAndRate"] = [
            entry
            for n, entry in enumerate(rates)
            if n in (draft.dose_index, draft.rate_index) or "doseQuantity" not in entry
        ]
    if correction.weight_basis is not None:
        others = [
            e
            for e in dosage.get("extension", [])
            if not (isinstance(e, Mapping) and e.get("url") == WEIGHT_BASIS_EXTENSION)
        ]
        dosage["extension"] = [
            *others,
            {"url": WEIGHT_BASIS_EXTENSION, "valueCode": correction.weight_basis},
        ]
    if correction.starts_on is not None:
        repeat = dosage["timing"]["repeat"]
        bounds = repeat.get("boundsPeriod")
        repeat["boundsPeriod"] = {
            **(bounds if isinstance(bounds, Mapping) else {}),
            "start": correction.starts_on.isoformat(),
        }
    return resource


def _order_summary(rule: str, found: str, corrected: str) -> str:
    """A card's summary: the check, what the order says, what to use instead."""
    title = _ORDER_TITLES.get(rule, "IVIG order check")
    if not found:
        return short_summary(title)
    return short_summary(f"{title}: {found}" + (f"; use {corrected}" if corrected else ""))


def _order_card(
    draft: DraftOrder | UnreadableDraft,
    finding: order_check.Finding,
    checked: order_check.OrderCheck | None,
    patient: Patient,
    call: OrderSign,
    context: _CardContext,
) -> dict[str, Any]:
    summary = _order_summary(finding.rule, finding.found, finding.corrected or "")
    hook = hashlib.sha256(call.hook_instance.encode()).hexdigest()[:12]
    # What feedback records, under the card id's MAC: nothing is stored when cards are shown.
    ident = _b64(
        {
            "p": patient.id,
            "r": finding.rule,
            "v": order_check.RULES_VERSION,
            "i": "critical" if finding.hard else "warning",
            "o": draft.reference[:100],
            "h": hook,
            "f": finding.found,
            "t": finding.corrected or "",
        }
    )
    parts = [markdown_text(finding.message.strip()) + "."]
    if checked is not None and isinstance(draft, DraftOrder):
        every = (
            f"every {draft.interval_weeks} weeks"
            if draft.interval_weeks is not None
            else "the interval not stated"
        )
        parts.append(
            f"Checked on a dosing weight of {checked.dosing_weight_kg:.1f} kg "
            f"({checked.weight_basis} basis): {checked.dose_g_per_kg_per_cycle:.3g} g/kg per "
            f"cycle over {draft.days_per_cycle} day(s), {every}."
        )
    elif isinstance(draft, UnreadableDraft):
        parts.append(
            "The IVIG assistant read this draft as an IVIG order but not its dose or timing, "
            "so none of its dosing checks were made: check it by hand, or write it as a dose "
            "per infusion day (g/kg or g) given on so many days every so many weeks."
        )
    parts.append(
        "*Order check "
        + markdown_text(f"order-sign.{finding.rule}")
        + f" version {order_check.RULES_VERSION}: the rules the IVIG assistant's pages use.* "
        "Overriding records this check's rejection with your reason; accepting it records "
        "its approval. The IVIG assistant's own regimen changes only on its pages."
    )
    rule = f"order-sign.{finding.rule}"
    card = _card(
        context,
        ORDER_CARD,
        ident,
        summary=summary,
        indicator="critical" if finding.hard else "warning",
        detail="\n\n".join(parts),
        topic=Coding(
            f"{rule}@{order_check.RULES_VERSION}",
            TOPIC_SYSTEM,
            f"Order check {rule}, version {order_check.RULES_VERSION}",
        ),
        link=(
            "Open the regimen in the IVIG assistant",
            context.page_url(patient.id, "current-regimen"),
        ),
        overridable=True,
    )
    if (
        finding.correction is not None
        and isinstance(draft, DraftOrder)
        and isinstance(draft.resource.get("id"), str)
    ):
        card["selectionBehavior"] = "at-most-one"
        card["suggestions"] = [
            {
                "label": short_summary(f"Change the order: {finding.corrected}"),
                "uuid": card_uuid(
                    context.settings,
                    context.issuer,
                    ORDER_FIX,
                    hashlib.sha256(ident.encode()).hexdigest()[:16],
                ),
                "isRecommended": True,
                "actions": [
                    {
                        "type": "update",
                        "description": short_summary(
                            f"Replace {draft.reference} with the order corrected to "
                            f"{finding.corrected}"
                        ),
                        "resource": corrected_order(draft, finding.correction),
                    }
                ],
            }
        ]
    return card


def _record_order_check(
    session: so.Session, actor: Actor, ident: str, entry: Feedback
) -> dict[str, Any]:
    """Record what the EHR's clinician did with an order-sign card, once per card: a decided
    suggestion (approved when accepted, rejected with the reason when overridden)."""
    if not policy.ehr_may(actor.role, policy.EhrAction.RECORD_ORDER_CHECK):
        raise Forbidden("Only a registered EHR sends CDS feedback here.")
    said = _unb64(ident)
    if said is None or not isinstance(said.get("p"), int):
        return {"result": "ignored: the card's contents cannot be read"}
    patient = session.get(Patient, said["p"])
    if patient is None:
        return {"result": "ignored: the patient is gone"}
    key = "cds-order:" + hashlib.sha256(entry.card.encode()).hexdigest()[:48]
    same = session.scalar(sa.select(Suggestion).where(Suggestion.dedupe_key == key))
    if same is not None:
        return {"result": f"ignored: already recorded ({same.status})", "suggestion_id": same.id}
    corrected = str(said.get("t") or "")
    if entry.outcome == "accepted":
        status = "approved"
        reason = (
            f"EHR accepted: the order was changed to {corrected}"
            if corrected and entry.accepted_suggestions
            else "EHR accepted the order check"
        )
    else:
        status, reason = "rejected", override_reason(entry)
    now = clock.now()
    rule = str(said.get("r", "dose"))[:40]
    indicator = said.get("i") if said.get("i") in ("critical", "warning") else "warning"
    summary = _order_summary(rule, str(said.get("f") or ""), corrected)
    suggestion = Suggestion(
        patient_id=patient.id,
        dedupe_key=key,
        kind=ORDER_CHECK_KIND,
        rule_id=f"order-sign.{rule}",
        rule_version=int(said.get("v") or order_check.RULES_VERSION),
        indicator=indicator,
        summary=summary,
        detail=(
            f"An EHR order-sign check of {said.get('o')}: {said.get('f')}"
            + (f"; the correction proposed: {corrected}" if corrected else "")
            + ". Recorded from the EHR's feedback; the IVIG assistant's regimen did not change."
        ),
        proposal={"order": said.get("o"), "from": said.get("f"), "to": corrected or None},
        facts={"hook_instance_sha256": said.get("h"), "outcome_at": entry.outcome_at.isoformat()},
        evidence=[],
        status=status,
        decided_at=now,
        decision_reason=reason,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(suggestion)
            session.flush()
    except sa.exc.IntegrityError:
        return {"result": "ignored: already recorded"}
    audit.record(
        session,
        actor,
        "suggestion.approve" if status == "approved" else "suggestion.reject",
        "suggestion",
        suggestion.id,
        after={
            "kind": ORDER_CHECK_KIND,
            "rule": suggestion.rule_id,
            "reason": reason,
            "via": "cds.feedback",
        },
    )
    return {"result": status, "patient_id": patient.id, "suggestion_id": suggestion.id}


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
    if kind == ORDER_CARD:
        return noted | _record_order_check(session, actor, ident, entry)
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
