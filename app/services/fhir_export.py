"""FHIR R4 export: a patient's record as resources, each built and validated with fhir.resources.

The models are fhir.resources' R4B (4.3.0) package: HL7 keeps R4B strictly compatible with R4
(4.0.1) outside the medication-definition, evidence and subscription modules, and none of the
resources here changed (hl7.org/fhir/R4B/r4b-explanation.html). Every resource is validated by
its model and dumped back to JSON, so what leaves here is what the model accepted.

Ids are stable: our row ids with a kind ("administration-12", "lab-7"); Patient ids are our
patient ids, so `Patient/<id>` names the patient in $everything and in a lab import.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from fhir.resources.R4B.adverseevent import AdverseEvent as FhirAdverseEvent
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle as FhirBundle
from fhir.resources.R4B.medicationadministration import (
    MedicationAdministration as FhirAdministration,
)
from fhir.resources.R4B.medicationrequest import MedicationRequest as FhirRequest
from fhir.resources.R4B.observation import Observation as FhirObservation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir_core.fhirabstractmodel import FHIRAbstractModel

from app import clock
from app.config import Settings
from app.domain import fhir
from app.domain import reviews as review_domain
from app.models import (
    AdverseEvent,
    Assessment,
    Infusion,
    LabResult,
    Patient,
    Regimen,
    TaperPlan,
)
from app.services import audit, reviews, scheduling, suggestions
from app.services.context import Actor, unit_of_work
from app.services.errors import NotFound

Json = dict[str, Any]

#: The resource types the export writes, in the order $everything lists them.
RESOURCE_TYPES = (
    "Patient",
    "MedicationRequest",
    "MedicationAdministration",
    "Appointment",
    "Observation",
    "AdverseEvent",
)


def validated(model: type[FHIRAbstractModel], data: Json) -> Json:
    """The resource as its fhir.resources model accepts it, back as JSON."""
    dumped: Json = model.model_validate(data).model_dump(mode="json", exclude_none=True)
    return dumped


def _coding(system: str, code: str, display: str | None = None) -> Json:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _quantity(value: float, unit: str, code: str) -> Json:
    return {"value": value, "unit": unit, "system": fhir.UCUM, "code": code}


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def _subject(patient_id: int) -> Json:
    return {"reference": f"Patient/{patient_id}"}


# --- Patient -----------------------------------------------------------------------------------


def patient_resource(patient: Patient, mrn_system: str) -> Json:
    """The Patient: our id, the MRN under the configured system, name, sex and birth date."""
    return validated(
        FhirPatient,
        {
            "resourceType": "Patient",
            "id": str(patient.id),
            "identifier": [
                {
                    "use": "usual",
                    "type": {
                        "coding": [
                            _coding(
                                "http://terminology.hl7.org/CodeSystem/v2-0203",
                                "MR",
                                "Medical record number",
                            )
                        ]
                    },
                    "system": mrn_system,
                    "value": patient.mrn,
                }
            ],
            "name": [
                {"use": "official", "family": patient.family_name, "given": [patient.given_name]}
            ],
            "gender": patient.sex,
            "birthDate": patient.birth_date.isoformat(),
        },
    )


# --- MedicationRequest: the IVIG regimen, one per version --------------------------------------


def regimen_request(
    regimen: Regimen, ends_on: dt.date | None, status: str, patient_id: int
) -> Json:
    """A regimen version as a MedicationRequest: per infusion day, the ordered g/kg and the
    calculated grams; `timing.repeat` says days per cycle every interval, within the days
    this version was in force (first cycle to the day before the next version's)."""
    starts_on = scheduling.first_cycle_start(regimen)
    per_day_g_per_kg = regimen.dose_g_per_kg / regimen.days_per_cycle
    bounds: Json = {"start": starts_on.isoformat()}
    if ends_on is not None:
        bounds["end"] = max(ends_on, starts_on).isoformat()
    text = (
        f"{regimen.product}: {regimen.dose_g_per_kg:g} g/kg per cycle "
        f"({regimen.grams_per_cycle:g} g at {regimen.dosing_weight_kg:g} kg {regimen.weight_basis} "
        f"dosing weight), over {regimen.days_per_cycle} consecutive day(s) "
        f"every {regimen.interval_weeks} weeks"
    )
    return validated(
        FhirRequest,
        {
            "resourceType": "MedicationRequest",
            "id": fhir.resource_id("regimen", regimen.id),
            "identifier": [{"system": fhir.LOCAL_SYSTEM, "value": f"regimen-{regimen.id}"}],
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": {"text": regimen.product},
            "subject": _subject(patient_id),
            "authoredOn": _instant(regimen.created_at),
            "groupIdentifier": {"system": fhir.LOCAL_SYSTEM, "value": f"ivig-{patient_id}"},
            "note": [{"text": f"Version {regimen.version}: {regimen.reason}"}],
            "dosageInstruction": [
                {
                    "sequence": 1,
                    "text": text,
                    "route": {"coding": [_coding(fhir.SNOMED, *fhir.ROUTE_INTRAVENOUS)]},
                    "timing": {
                        "repeat": {
                            "boundsPeriod": bounds,
                            "frequency": regimen.days_per_cycle,
                            "period": regimen.interval_weeks,
                            "periodUnit": "wk",
                        }
                    },
                    "doseAndRate": [
                        {
                            "type": {"coding": [_coding(fhir.DOSE_RATE_TYPE, "ordered")]},
                            "doseQuantity": _quantity(round(per_day_g_per_kg, 6), "g/kg", "g/kg"),
                        },
                        {
                            "type": {"coding": [_coding(fhir.DOSE_RATE_TYPE, "calculated")]},
                            "doseQuantity": _quantity(regimen.grams_per_day, "g", "g"),
                        },
                    ],
                    "maxDosePerPeriod": {
                        "numerator": _quantity(regimen.grams_per_cycle, "g", "g"),
                        "denominator": _quantity(regimen.interval_weeks, "wk", "wk"),
                    },
                }
            ],
        },
    )


def regimen_requests(regimens: Sequence[Regimen], course_stopped: bool) -> list[Json]:
    """Every version of the patient's regimen, oldest first."""
    ordered = sorted(regimens, key=lambda r: r.version)
    resources = []
    for index, regimen in enumerate(ordered):
        later = ordered[index + 1] if index + 1 < len(ordered) else None
        ends_on = scheduling.first_cycle_start(later) - dt.timedelta(days=1) if later else None
        status = fhir.regimen_status(later is None, course_stopped)
        resources.append(regimen_request(regimen, ends_on, status, regimen.patient_id))
    return resources


# --- MedicationRequest: the steroid taper, one per plan version --------------------------------


def step_rows(plan: TaperPlan) -> list[fhir.StepRow]:
    return [
        fhir.StepRow(
            position=s.position,
            mg_per_day=s.mg_per_day,
            min_days=s.min_days,
            alternate_day_mg=s.alternate_day_mg,
            requires_cortisol=s.requires_cortisol,
            status=s.status,
            earliest_on=s.earliest_on,
            started_on=s.started_on,
            ended_on=s.ended_on,
        )
        for s in plan.steps
    ]


def _daily(bounds: fhir.StepBounds, first_day: dt.date, every_days: int) -> Json:
    return {
        "frequency": 1,
        "period": every_days,
        "periodUnit": "d",
        "boundsPeriod": {"start": first_day.isoformat(), "end": bounds.last_day.isoformat()},
    }


def step_dosages(drug: str, bounds: fhir.StepBounds) -> list[Json]:
    """A step's Dosage: its mg/day every day from its first to its last day; an alternate-day
    step is two Dosages of one sequence (the day-1 dose and the day-2 dose, every 2 days)."""
    step = bounds.step
    route = {"coding": [_coding(fhir.SNOMED, *fhir.ROUTE_ORAL)]}
    doses: list[tuple[float, dt.date, int]] = [(step.mg_per_day, bounds.first_day, 1)]
    if step.alternate_day_mg is not None:
        second = bounds.first_day + dt.timedelta(days=1)
        doses = [(step.mg_per_day, bounds.first_day, 2), (step.alternate_day_mg, second, 2)]
    if step.mg_per_day == 0 and step.alternate_day_mg is None:
        text = f"Stop {drug}" + (
            " (after a morning cortisol check)" if step.requires_cortisol else ""
        )
    elif step.alternate_day_mg is not None:
        text = f"{drug} {step.mg_per_day:g} mg and {step.alternate_day_mg:g} mg on alternate days"
    else:
        text = f"{drug} {step.mg_per_day:g} mg once a day"
    dosages = []
    for mg, first_day, every in doses:
        if first_day > bounds.last_day:
            continue
        dosages.append(
            {
                "sequence": bounds.sequence,
                "text": text,
                "route": route,
                "timing": {"repeat": _daily(bounds, first_day, every)},
                "doseAndRate": [{"doseQuantity": _quantity(mg, "mg", "mg")}],
            }
        )
    return dosages


def taper_request(plan: TaperPlan, status: str) -> Json:
    """A taper plan version as one MedicationRequest with a Dosage per step, in sequence, each
    bounded by the step's first and last day."""
    dosages = [
        dosage
        for bounds in fhir.step_bounds(step_rows(plan))
        for dosage in step_dosages(plan.drug, bounds)
    ]
    return validated(
        FhirRequest,
        {
            "resourceType": "MedicationRequest",
            "id": fhir.resource_id("taper", plan.id),
            "identifier": [{"system": fhir.LOCAL_SYSTEM, "value": f"taper-{plan.id}"}],
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": {"text": plan.drug},
            "subject": _subject(plan.patient_id),
            "authoredOn": _instant(plan.created_at),
            "note": [{"text": f"Version {plan.version} ({plan.template}): {plan.reason}"}],
            "dosageInstruction": dosages,
        },
    )


def taper_requests(plans: Sequence[TaperPlan]) -> list[Json]:
    ordered = sorted(plans, key=lambda p: p.version)
    return [
        taper_request(
            plan,
            fhir.taper_status(plan is ordered[-1], [s.status for s in plan.steps]),
        )
        for plan in ordered
    ]


# --- MedicationAdministration and Appointment, from the infusions ------------------------------


def _medication(infusion: Infusion) -> tuple[list[Json], Json]:
    """Contained Medications carrying each vial's lot and expiry, and the medication[x]."""
    product = infusion.regimen.product
    meds = [
        {
            "resourceType": "Medication",
            "id": f"vial-{vial.id}",
            "code": {"text": vial.product},
            "batch": {
                "lotNumber": vial.lot_number,
                "expirationDate": vial.expires_on.isoformat(),
            },
        }
        for vial in infusion.vials
    ]
    if not meds and infusion.lot_numbers:
        meds = [
            {
                "resourceType": "Medication",
                "id": "lot",
                "code": {"text": product},
                "batch": {"lotNumber": infusion.lot_numbers},
            }
        ]
    if not meds:
        return [], {"medicationCodeableConcept": {"text": product}}
    if len(meds) == 1:
        return meds, {"medicationReference": {"reference": f"#{meds[0]['id']}"}}
    parent = {
        "resourceType": "Medication",
        "id": "given",
        "code": {"text": product},
        "ingredient": [
            {"itemReference": {"reference": f"#{med['id']}"}, "isActive": True} for med in meds
        ],
    }
    return [parent, *meds], {"medicationReference": {"reference": "#given"}}


def administration(infusion: Infusion) -> Json:
    """A given (or partly given) infusion: what, how much, when, and each lot with its expiry."""
    contained, medication = _medication(infusion)
    started = infusion.given_started_at or infusion.starts_at or infusion.checked_in_at
    ended = infusion.given_ended_at or infusion.ends_at
    effective: Json
    if started is not None:
        period = {"start": _instant(started)}
        if ended is not None and ended >= started:
            period["end"] = _instant(ended)
        effective = {"effectivePeriod": period}
    else:
        effective = {"effectiveDateTime": infusion.planned_date.isoformat()}
    data: Json = {
        "resourceType": "MedicationAdministration",
        "id": fhir.resource_id("administration", infusion.id),
        "status": fhir.ADMINISTRATION_STATUS[infusion.status],
        "subject": _subject(infusion.patient_id),
        "request": {
            "reference": f"MedicationRequest/{fhir.resource_id('regimen', infusion.regimen_id)}"
        },
        **medication,
        **effective,
        "dosage": {
            "text": f"Cycle {infusion.cycle_number}, day {infusion.day_number}",
            "route": {"coding": [_coding(fhir.SNOMED, *fhir.ROUTE_INTRAVENOUS)]},
            # What was given when recorded (0 g too); the planned grams only when it is not.
            "dose": _quantity(
                infusion.planned_grams if infusion.given_grams is None else infusion.given_grams,
                "g",
                "g",
            ),
        },
    }
    if contained:
        data["contained"] = contained
    if infusion.status_reason:
        data["statusReason"] = [{"text": infusion.status_reason}]
    return validated(FhirAdministration, data)


def appointment(infusion: Infusion) -> Json:
    """An infusion as an Appointment at its center (chair and time once booked)."""
    status = fhir.APPOINTMENT_STATUS[infusion.status]
    where = infusion.center.name + (f", {infusion.chair.name}" if infusion.chair else "")
    data: Json = {
        "resourceType": "Appointment",
        "id": fhir.resource_id("appointment", infusion.id),
        "identifier": [{"system": fhir.LOCAL_SYSTEM, "value": f"infusion-{infusion.uid}"}],
        "status": status,
        "description": (
            f"IVIG {infusion.regimen.product}, cycle {infusion.cycle_number} "
            f"day {infusion.day_number} ({infusion.planned_grams:g} g)"
        ),
        "basedOn": [
            {"reference": f"MedicationRequest/{fhir.resource_id('regimen', infusion.regimen_id)}"}
        ],
        "participant": [
            {"actor": {**_subject(infusion.patient_id)}, "status": "accepted"},
            {"actor": {"display": where}, "status": "accepted"},
        ],
    }
    if infusion.starts_at is not None and infusion.ends_at is not None:
        data["start"] = _instant(infusion.starts_at)
        data["end"] = _instant(infusion.ends_at)
        data["minutesDuration"] = infusion.planned_minutes
    if status == "cancelled" and infusion.status_reason:
        data["cancelationReason"] = {"text": infusion.status_reason}
    return validated(FhirAppointment, data)


# --- Observations ------------------------------------------------------------------------------


def _category(code: str) -> list[Json]:
    return [{"coding": [_coding(fhir.OBSERVATION_CATEGORY, code)]}]


def score_observation(
    assessment: Assessment, score: fhir.Score, value: float, patient_id: int
) -> Json:
    return validated(
        FhirObservation,
        {
            "resourceType": "Observation",
            "id": fhir.resource_id("assessment", assessment.id, score.code),
            "status": "final",
            "category": _category("exam"),
            "code": {
                "coding": [_coding(fhir.LOCAL_SYSTEM, score.code, score.display)],
                "text": score.display,
            },
            "subject": _subject(patient_id),
            "effectiveDateTime": assessment.assessed_on.isoformat(),
            "valueQuantity": _quantity(value, "score", fhir.SCORE_UNIT),
        },
    )


def assessment_observations(assessment: Assessment, tis: float | None) -> list[Json]:
    """CDASI activity and damage, MMT-8, CK (with the lab's ULN) and the TIS of an assessment."""
    resources = [
        score_observation(assessment, score, value, assessment.patient_id)
        for score in fhir.SCORES
        if (value := getattr(assessment, score.column)) is not None
    ]
    if tis is not None:
        resources.append(score_observation(assessment, fhir.TIS, tis, assessment.patient_id))
    if assessment.ck is not None:
        code = fhir.LAB_CODES["ck"]
        data: Json = {
            "resourceType": "Observation",
            "id": fhir.resource_id("assessment", assessment.id, "ck"),
            "status": "final",
            "category": _category("laboratory"),
            "code": {"coding": [_coding(fhir.LOINC, code.loinc, code.display)], "text": "CK"},
            "subject": _subject(assessment.patient_id),
            "effectiveDateTime": assessment.assessed_on.isoformat(),
            "valueQuantity": _quantity(assessment.ck, "U/L", "U/L"),
        }
        if assessment.ck_uln is not None:
            data["referenceRange"] = [{"high": _quantity(assessment.ck_uln, "U/L", "U/L")}]
        resources.append(validated(FhirObservation, data))
    return resources


def lab_observation(result: LabResult, settings: Settings) -> Json:
    """A lab result: LOINC where we know the test's code, else our own; the UCUM unit."""
    known = settings.labs.tests.get(result.test)
    label = known.label if known else result.test
    lab = fhir.LAB_CODES.get(result.test)
    coding = (
        _coding(fhir.LOINC, lab.loinc, lab.display)
        if lab
        else _coding(fhir.LOCAL_SYSTEM, f"lab-{result.test}", label)
    )
    ucum = fhir.ucum_code(result.unit)
    quantity = (
        _quantity(result.value, result.unit, ucum)
        if ucum
        else {"value": result.value, "unit": result.unit}
    )
    reference: Json = {}
    for side, bound in (("low", result.ref_low), ("high", result.ref_high)):
        if bound is not None:
            reference[side] = {**quantity, "value": bound}
    data: Json = {
        "resourceType": "Observation",
        "id": fhir.resource_id("lab", result.id),
        "status": "final",
        "category": _category("laboratory"),
        "code": {"coding": [coding], "text": label},
        "subject": _subject(result.patient_id),
        "effectiveDateTime": result.taken_on.isoformat(),
        "issued": _instant(result.created_at),
        "valueQuantity": quantity,
    }
    if reference:
        data["referenceRange"] = [reference]
    return validated(FhirObservation, data)


# --- AdverseEvent ------------------------------------------------------------------------------


def adverse_event(event: AdverseEvent, given_infusions: set[int]) -> Json:
    """A reaction or adverse event: what, when, how serious (CTCAE grade as severity), the
    outcome, and the infusion suspected when it came at one that was given."""
    data: Json = {
        "resourceType": "AdverseEvent",
        "id": fhir.resource_id("adverse-event", event.id),
        "actuality": "actual",
        "event": {
            "coding": [_coding(fhir.LOCAL_SYSTEM, f"ae-{event.event_type}")],
            "text": event.description or event.event_type.replace("_", " "),
        },
        "subject": _subject(event.patient_id),
        "date": event.occurred_on.isoformat(),
        "recordedDate": _instant(event.created_at),
        "seriousness": {
            "coding": [
                _coding(
                    fhir.AE_SERIOUSNESS,
                    "serious" if event.serious else "non-serious",
                    "Serious" if event.serious else "Non-serious",
                )
            ]
        },
        "severity": {
            "coding": [_coding(fhir.AE_SEVERITY, fhir.ae_severity(event.grade))],
            "text": f"CTCAE grade {event.grade}",
        },
        "outcome": {
            "coding": [
                _coding(
                    fhir.AE_OUTCOME,
                    fhir.ae_outcome(event.grade, event.outcome, event.resolved_on is not None),
                )
            ]
        },
    }
    if event.infusion_id is not None and event.infusion_id in given_infusions:
        data["suspectEntity"] = [
            {
                "instance": {
                    "reference": "MedicationAdministration/"
                    + fhir.resource_id("administration", event.infusion_id)
                }
            }
        ]
    return validated(FhirAdverseEvent, data)


# --- a patient's record ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Record:
    """A patient's resources, by type in RESOURCE_TYPES order."""

    patient_id: int
    resources: dict[str, list[Json]]

    def all(self) -> Iterator[Json]:
        for kind in RESOURCE_TYPES:
            yield from self.resources.get(kind, [])

    def counts(self) -> dict[str, int]:
        return {kind: len(self.resources.get(kind, [])) for kind in RESOURCE_TYPES}


def _load_patient(session: so.Session, patient_id: int) -> Patient:
    patient = session.scalar(
        sa.select(Patient)
        .where(Patient.id == patient_id)
        .options(so.joinedload(Patient.home_center))
    )
    if patient is None:
        raise NotFound(f"patient_id: no patient {patient_id}", field="patient_id")
    return patient


def patient_record(session: so.Session, patient_id: int, settings: Settings) -> Record:
    """Every resource of one patient (NotFound for an unknown patient). Reads only."""
    patient = _load_patient(session, patient_id)
    today = clock.clinic_today(patient.home_center.timezone)
    regimens = list(session.scalars(sa.select(Regimen).where(Regimen.patient_id == patient_id)))
    plans = list(
        session.scalars(
            sa.select(TaperPlan)
            .where(TaperPlan.patient_id == patient_id)
            .options(so.selectinload(TaperPlan.steps))
        )
    )
    infusions = list(
        session.scalars(
            sa.select(Infusion)
            .where(Infusion.patient_id == patient_id)
            .options(
                so.selectinload(Infusion.vials),
                so.joinedload(Infusion.center),
                so.joinedload(Infusion.chair),
                so.joinedload(Infusion.regimen),
            )
            .order_by(Infusion.planned_date, Infusion.day_number, Infusion.id)
        )
    )
    assessments = list(
        session.scalars(
            sa.select(Assessment)
            .where(Assessment.patient_id == patient_id)
            .order_by(Assessment.assessed_on, Assessment.id)
        )
    )
    labs = list(
        session.scalars(
            sa.select(LabResult)
            .where(LabResult.patient_id == patient_id)
            .order_by(LabResult.taken_on, LabResult.id)
        )
    )
    events = list(
        session.scalars(
            sa.select(AdverseEvent)
            .where(AdverseEvent.patient_id == patient_id)
            .order_by(AdverseEvent.occurred_on, AdverseEvent.id)
        )
    )
    stopped = review_domain.course_stopped(reviews.course_of(session, patient_id))
    record = suggestions.load_record(session, patient_id, settings, today) if assessments else None
    given = [i for i in infusions if i.status in fhir.ADMINISTRATION_STATUS]
    observations = [
        resource
        for a in assessments
        for resource in assessment_observations(
            a,
            reviews.tis_on(session, patient_id, settings, a.assessed_on, record=record),
        )
    ] + [lab_observation(result, settings) for result in labs]
    return Record(
        patient_id=patient_id,
        resources={
            "Patient": [patient_resource(patient, settings.cds.patient_identifier_system)],
            "MedicationRequest": regimen_requests(regimens, stopped) + taper_requests(plans),
            "MedicationAdministration": [administration(i) for i in given],
            "Appointment": [appointment(i) for i in infusions],
            "Observation": observations,
            "AdverseEvent": [adverse_event(e, {i.id for i in given}) for e in events],
        },
    )


def everything(
    session: so.Session, actor: Actor, patient_id: int, settings: Settings, base_url: str
) -> Json:
    """Patient/$everything: the patient's whole record as a searchset Bundle; the read is
    audited (a whole record left the system), in one unit with nothing else.

    The Patient is the search's match and every other resource an include, so `total` is 1:
    FHIR's Bundle.total counts the matches, not the included resources."""
    with unit_of_work(session):
        record = patient_record(session, patient_id, settings)
        audit.record(
            session,
            actor,
            "fhir.everything",
            "patient",
            patient_id,
            after={"resources": record.counts()},
        )
    resources = list(record.all())
    matches = sum(resource["resourceType"] == "Patient" for resource in resources)
    entries = [
        {
            "fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
            "search": {"mode": "match" if resource["resourceType"] == "Patient" else "include"},
        }
        for resource in resources
    ]
    return validated(
        FhirBundle,
        {
            "resourceType": "Bundle",
            "id": f"everything-{patient_id}-{clock.now().strftime('%Y%m%dT%H%M%S')}",
            "type": "searchset",
            "timestamp": _instant(clock.now()),
            "total": matches,
            "entry": entries,
        },
    )


# --- the clinic-wide export (FHIR Bulk Data's NDJSON) ------------------------------------------


def export_ndjson(
    session: so.Session, actor: Actor, directory: Path, settings: Settings
) -> dict[str, int]:
    """Write every patient's resources as NDJSON, one file per type (`Patient.ndjson`...),
    one resource per line; return the count per type. Audited as one export."""
    directory.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(RESOURCE_TYPES, 0)
    files = {kind: (directory / f"{kind}.ndjson").open("w", encoding="utf-8") for kind in counts}
    try:
        patient_ids = list(session.scalars(sa.select(Patient.id).order_by(Patient.id)))
        for patient_id in patient_ids:
            record = patient_record(session, patient_id, settings)
            for kind, resources in record.resources.items():
                for resource in resources:
                    files[kind].write(json.dumps(resource, ensure_ascii=False) + "\n")
                counts[kind] += len(resources)
            session.expunge_all()
    finally:
        for handle in files.values():
            handle.close()
    with unit_of_work(session):
        audit.record(
            session,
            actor,
            "fhir.bulk_export",
            "clinic",
            None,
            after={"patients": len(patient_ids), "resources": counts, "directory": str(directory)},
        )
    return counts
