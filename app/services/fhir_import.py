"""Lab import: a FHIR transaction Bundle of Observations recorded through the lab service.

Every entry is checked before anything is written, and every problem is reported naming its
entry (`Bundle.entry[3].resource.code`); a value in another unit of the test is converted
(app.domain.fhir.UNIT_FACTORS). Then all entries are recorded in one unit of work through
app.services.labs.record_lab, with its checks and its audit row per result: all land or none.

Whose result: `subject.identifier` in the configured MRN system ([cds]
patient_identifier_system) names the patient. A `subject.reference` is read only as our own
id (Patient/<id> as $everything exports it), never as the EHR's: beside an MRN it must name
the same patient, else the entry is refused (an EHR's own Patient id would otherwise file the
result on whoever has that id here); a reference alone is accepted as our id, and one beside
an identifier of another system is refused (it may be that system's id).

Which day: an `effectiveDateTime` (or `effectivePeriod.start`) with a time is the day on the
patient's home center's clock (03:00Z is the evening before in New York); a date is that day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from fhir.resources.R4B.bundle import Bundle as FhirBundle
from fhir.resources.R4B.observation import Observation as FhirObservation
from fhir.resources.R4B.quantity import Quantity
from pydantic import ValidationError

from app import clock
from app.config import LabTestSettings, Settings
from app.domain import fhir
from app.models import Patient
from app.services import audit, labs
from app.services.context import Actor, unit_of_work
from app.services.errors import ServiceError
from app.services.fhir_export import validated

Json = dict[str, Any]

#: Result statuses recorded (hl7.org/fhir/R4/valueset-observation-status.html): final ones.
_RECORDED_STATUSES = ("final", "amended", "corrected")
_PATIENT_REFERENCE = re.compile(r"^Patient/([1-9][0-9]{0,9})$")
#: Where in an Observation each field of app.services.labs.LabInput comes from.
_EXPRESSION_OF_FIELD = {
    "test": "code",
    "value": "valueQuantity.value",
    "unit": "valueQuantity.unit",
    "taken_on": "effectiveDateTime",
    "ref_low": "referenceRange[0].low",
    "ref_high": "referenceRange[0].high",
}


@dataclasses.dataclass(frozen=True)
class Issue:
    """One problem, as an OperationOutcome issue: FHIRPath `expression`, issue type `code`."""

    expression: str
    code: str
    text: str


class BundleRefused(ServiceError):
    """The Bundle is refused whole; nothing was written."""

    def __init__(self, status: int, issues: Sequence[Issue]) -> None:
        super().__init__("; ".join(f"{i.expression}: {i.text}" for i in issues), None)
        self.status = status
        self.issues = tuple(issues)


@dataclasses.dataclass(frozen=True)
class _Entry:
    index: int
    patient: Patient
    data: labs.LabInput
    #: The unit the value was sent in, when it was converted.
    converted_from: str | None


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _load(body: bytes, settings: Settings) -> list[Any]:
    """The Bundle's entries, after the checks of the whole Bundle (400 or 413)."""
    limits = settings.fhir
    if len(body) > limits.max_bundle_bytes:
        raise BundleRefused(
            413,
            [
                Issue(
                    "Bundle",
                    "too-long",
                    f"the Bundle has {len(body)} bytes; at most {limits.max_bundle_bytes} "
                    "are taken (fhir.max_bundle_bytes)",
                )
            ],
        )
    try:
        bundle = json.loads(body, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleRefused(400, [Issue("Bundle", "structure", f"not JSON: {exc}")]) from exc
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        got = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
        raise BundleRefused(
            400,
            [Issue("resourceType", "structure", f"send a Bundle (got {got!r})")],
        )
    if bundle.get("type") != "transaction":
        raise BundleRefused(
            400,
            [
                Issue(
                    "Bundle.type",
                    "value",
                    f"must be 'transaction' (got {bundle.get('type')!r}): all or nothing",
                )
            ],
        )
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise BundleRefused(
            400, [Issue("Bundle.entry", "required", "send at least one entry (an Observation)")]
        )
    if len(entries) > limits.max_bundle_entries:
        raise BundleRefused(
            413,
            [
                Issue(
                    "Bundle.entry",
                    "too-long",
                    f"the Bundle has {len(entries)} entries; at most "
                    f"{limits.max_bundle_entries} are taken (fhir.max_bundle_entries)",
                )
            ],
        )
    return entries


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _find_patient(
    session: so.Session, observation: FhirObservation, settings: Settings
) -> Patient | str:
    """The subject as our patient, or what is wrong with it (the module docstring's rules)."""
    subject = observation.subject
    if subject is None:
        return "say whose result it is: the MRN as identifier, or Patient/<our id>"
    system = settings.cds.patient_identifier_system
    identifier = subject.identifier
    by_reference = None
    if subject.reference:
        found = _PATIENT_REFERENCE.match(subject.reference)
        by_reference = session.get(Patient, int(found.group(1))) if found else None
    if identifier is not None and identifier.system == system and identifier.value:
        mrn = identifier.value.strip()
        patient = session.scalar(sa.select(Patient).where(Patient.mrn == mrn))
        if patient is None:
            return f"no patient with MRN {identifier.value!r} here"
        if subject.reference and (by_reference is None or by_reference.id != patient.id):
            return (
                f"the reference {subject.reference!r} is not the patient with MRN {mrn!r} here "
                "(a reference is read as our own id): send the MRN alone, or both agreeing"
            )
        return patient
    if identifier is not None:
        # Beside another system's identifier, the reference is likely in that system's ids.
        return (
            f"the identifier is not an MRN in system {system}: name the patient by it (the MRN), "
            "or by Patient/<our id> alone"
        )
    if subject.reference:
        return by_reference or f"no patient {subject.reference!r} here (send Patient/<our id>)"
    return f"name the patient by identifier in system {system} (the MRN) or as Patient/<our id>"


def _test_of(observation: FhirObservation, settings: Settings) -> str | None:
    for coding in observation.code.coding or ():
        if coding.system == fhir.LOINC and coding.code:
            key = fhir.lab_of_loinc(coding.code)
            if key is not None and key in settings.labs.tests:
                return key
    return None


def _known_codes(settings: Settings) -> str:
    return ", ".join(
        f"{fhir.LAB_CODES[key].loinc} ({test.label})"
        for key, test in settings.labs.tests.items()
        if key in fhir.LAB_CODES
    )


def _in_unit(test: str, known: LabTestSettings, quantity: Quantity) -> tuple[float, str] | str:
    """The quantity's value in the unit the test is recorded in, and the unit it came in; or
    what is wrong with it."""
    if quantity.value is None:
        return "give the value"
    if quantity.comparator is not None:
        return f"a value with comparator {quantity.comparator!r} is not recorded"
    value = float(quantity.value)
    sent = quantity.code if quantity.system == fhir.UCUM and quantity.code else quantity.unit
    if not sent:
        return f"give the unit (UCUM code, e.g. {fhir.ucum_code(known.unit) or known.unit})"
    if fhir.fold_unit(sent) == fhir.fold_unit(known.unit):
        return value, sent
    target = fhir.ucum_code(known.unit)
    source = fhir.ucum_code(sent) if quantity.system != fhir.UCUM else sent
    converted = fhir.convert(test, value, source, target) if source is not None and target else None
    if converted is None:
        units = ", ".join(fhir.UNIT_FACTORS.get(test, {})) or known.unit
        return f"{sent!r} does not convert to {known.unit} for {known.label} (send one of {units})"
    return converted, sent


def _taken_on(observation: FhirObservation, timezone: str | None) -> dt.date | None:
    """The day the sample was taken: an instant is read on the home center's clock."""
    moment = observation.effectiveDateTime
    if moment is None and observation.effectivePeriod is not None:
        moment = observation.effectivePeriod.start
    if isinstance(moment, dt.datetime):
        if moment.utcoffset() is not None and timezone is not None:
            return moment.astimezone(ZoneInfo(timezone)).date()
        return moment.date()
    if isinstance(moment, dt.date):
        return moment
    return None


def _parse(index: int, raw: Any) -> FhirObservation | list[Issue]:
    """The entry's Observation as its model reads it, or what is wrong with its structure."""
    at = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("resource"), dict):
        return [Issue(f"{at}.resource", "required", "each entry carries an Observation")]
    resource = raw["resource"]
    if resource.get("resourceType") != "Observation":
        got = resource.get("resourceType")
        return [
            Issue(
                f"{at}.resource.resourceType", "not-supported", f"only Observations (got {got!r})"
            )
        ]
    request = raw.get("request")
    if (
        not isinstance(request, dict)
        or request.get("method") != "POST"
        or str(request.get("url", "")).split("?")[0] != "Observation"
    ):
        return [Issue(f"{at}.request", "not-supported", "send method POST, url Observation")]
    try:
        return FhirObservation.model_validate(resource)
    except ValidationError as exc:
        return [
            Issue(f"{at}.resource{_path(error['loc'])}", "structure", error["msg"])
            for error in exc.errors()
        ]


@dataclasses.dataclass(frozen=True)
class _Basics:
    patient: Patient
    test: str
    taken_on: dt.date
    value: Quantity


def _basics(
    session: so.Session, at: str, observation: FhirObservation, settings: Settings
) -> _Basics | list[Issue]:
    """Whose result, of which test, on which day, and its value: each one there, or named."""
    issues: list[Issue] = []
    patient = _find_patient(session, observation, settings)
    if isinstance(patient, str):
        issues.append(Issue(f"{at}.subject", "not-found", patient))
    test = _test_of(observation, settings)
    if test is None:
        known = _known_codes(settings)
        issues.append(
            Issue(f"{at}.code", "code-invalid", f"no LOINC code of a lab list test; one of {known}")
        )
    if observation.status not in _RECORDED_STATUSES:
        recorded = ", ".join(_RECORDED_STATUSES)
        issues.append(Issue(f"{at}.status", "value", f"only results that are {recorded}"))
    home = None if isinstance(patient, str) else patient.home_center.timezone
    taken_on = _taken_on(observation, home)
    if taken_on is None:
        issues.append(Issue(f"{at}.effectiveDateTime", "required", "give the day it was taken"))
    if observation.valueQuantity is None:
        issues.append(Issue(f"{at}.valueQuantity", "required", "give the result as a Quantity"))
    if issues or isinstance(patient, str):
        return issues
    assert test is not None and taken_on is not None and observation.valueQuantity is not None
    return _Basics(patient, test, taken_on, observation.valueQuantity)


def _range(
    at: str, observation: FhirObservation, basics: _Basics, known: LabTestSettings
) -> tuple[dict[str, float | None], list[Issue]]:
    """The lab's reference range in the test's unit (a bound without a unit: the value's)."""
    bounds: dict[str, float | None] = {"low": None, "high": None}
    issues = []
    for reference in (observation.referenceRange or ())[:1]:
        for side in ("low", "high"):
            quantity = getattr(reference, side)
            if quantity is None:
                continue
            if quantity.unit is None and quantity.code is None:
                value = basics.value
                quantity = quantity.model_copy(
                    update={"unit": value.unit, "code": value.code, "system": value.system}
                )
            bound = _in_unit(basics.test, known, quantity)
            if isinstance(bound, str):
                issues.append(Issue(f"{at}.referenceRange[0].{side}", "value", bound))
            else:
                bounds[side] = bound[0]
    return bounds, issues


def _check_entry(
    session: so.Session, index: int, raw: Any, settings: Settings
) -> _Entry | list[Issue]:
    """The entry as the lab service's input, or every problem found in it."""
    observation = _parse(index, raw)
    if isinstance(observation, list):
        return observation
    at = f"Bundle.entry[{index}].resource"
    basics = _basics(session, at, observation, settings)
    if isinstance(basics, list):
        return basics
    known = settings.labs.tests[basics.test]
    value = _in_unit(basics.test, known, basics.value)
    if isinstance(value, str):
        return [Issue(f"{at}.valueQuantity.unit", "value", value)]
    bounds, issues = _range(at, observation, basics, known)
    data = labs.LabInput(
        test=basics.test,
        value=value[0],
        taken_on=basics.taken_on,
        unit=known.unit,
        ref_low=bounds["low"],
        ref_high=bounds["high"],
    )
    patient = basics.patient
    try:
        labs.check_lab(data, settings.labs, clock.clinic_today(patient.home_center.timezone))
        if basics.taken_on < patient.birth_date:
            raise ServiceError(
                f"taken_on: not before the patient's birth date ({patient.birth_date})",
                field="taken_on",
            )
    except ServiceError as exc:
        expression = _EXPRESSION_OF_FIELD.get(exc.field or "", "")
        where = f"{at}.{expression}" if expression else at
        issues.append(Issue(where, "value", exc.problems[0].text))
    if issues:
        return issues
    same = fhir.fold_unit(value[1]) == fhir.fold_unit(known.unit) or (
        fhir.ucum_code(value[1]) is not None
        and fhir.ucum_code(value[1]) == fhir.ucum_code(known.unit)
    )
    converted = None if same else value[1]
    return _Entry(index, patient, data, converted)


def import_labs(session: so.Session, actor: Actor, body: bytes, settings: Settings) -> Json:
    """Record a transaction Bundle of lab Observations, all or none; answer the
    transaction-response Bundle. BundleRefused names every entry that is wrong."""
    raw_entries = _load(body, settings)
    with unit_of_work(session):
        checked = [_check_entry(session, i, raw, settings) for i, raw in enumerate(raw_entries)]
        issues = [issue for item in checked if isinstance(item, list) for issue in item]
        if issues:
            raise BundleRefused(422, issues)
        entries = [item for item in checked if isinstance(item, _Entry)]
        recorded = []
        for entry in entries:
            today = clock.clinic_today(entry.patient.home_center.timezone)
            try:
                result = labs.record_lab(
                    session, actor, entry.patient.id, entry.data, today, settings.labs
                )
            except ServiceError as exc:
                raise BundleRefused(
                    422, [Issue(f"Bundle.entry[{entry.index}].resource", "value", exc.message)]
                ) from exc
            recorded.append((entry, result))
        audit.record(
            session,
            actor,
            "fhir.lab_import",
            "lab_result",
            None,
            after={
                "results": [result.id for _entry, result in recorded],
                "patients": sorted({entry.patient.id for entry in entries}),
                "converted": {
                    str(entry.index): entry.converted_from
                    for entry in entries
                    if entry.converted_from
                },
            },
        )
    return validated(
        FhirBundle,
        {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "timestamp": clock.now().astimezone(dt.UTC).isoformat(timespec="seconds"),
            "entry": [
                {
                    "response": {
                        "status": "201 Created",
                        "location": f"Observation/{fhir.resource_id('lab', result.id)}",
                        "lastModified": result.created_at.astimezone(dt.UTC).isoformat(
                            timespec="seconds"
                        ),
                    }
                }
                for _entry, result in recorded
            ],
        },
    )
