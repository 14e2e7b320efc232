"""FHIR R4 vocabulary and the pure mappings behind the export and the lab import.

No FHIR library here: plain values in, plain values out (the service builds and validates the
resources with fhir.resources). Each code system names where it is defined.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

# --- code systems ------------------------------------------------------------------------------

#: LOINC (Regenstrief), the FHIR-registered URI (hl7.org/fhir/R4/loinc.html).
LOINC = "http://loinc.org"
#: UCUM units (hl7.org/fhir/R4/ucum.html).
UCUM = "http://unitsofmeasure.org"
#: SNOMED CT (hl7.org/fhir/R4/snomedct.html).
SNOMED = "http://snomed.info/sct"
#: Observation categories (hl7.org/fhir/R4/codesystem-observation-category.html).
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
#: AdverseEvent seriousness, severity and outcome (hl7.org/fhir/R4/adverseevent.html).
AE_SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
AE_SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
#: Dosage doseAndRate.type: calculated or ordered (hl7.org/fhir/R4/codesystem-dose-rate-type.html).
DOSE_RATE_TYPE = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
#: This product's own code system, for measures LOINC has no code for (CDASI, MMT-8, TIS) and
#: for our adverse event types: a fixed UUID URN, which needs no registry (RFC 4122).
LOCAL_SYSTEM = "urn:uuid:4b0f2f6e-9a51-4d8e-bf0e-6c2d6a1f3c7e"

#: SNOMED CT 47625008 "Intravenous route" and 26643006 "Oral route" (qualifier values).
ROUTE_INTRAVENOUS = ("47625008", "Intravenous route")
ROUTE_ORAL = ("26643006", "Oral route")


@dataclasses.dataclass(frozen=True)
class Score:
    """A score of an assessment, exported as an Observation with a local code."""

    column: str
    code: str
    display: str


#: The assessment's scores we export (DOMAIN.md: Response measures); "{score}" is UCUM's
#: annotation for a unitless score.
SCORES: tuple[Score, ...] = (
    Score("cdasi_activity", "cdasi-activity", "CDASI activity score (0-100)"),
    Score("cdasi_damage", "cdasi-damage", "CDASI damage score (0-32)"),
    Score("mmt8", "mmt8", "Manual muscle testing, eight groups (MMT-8, 0-80)"),
)
TIS = Score("tis", "tis", "ACR/EULAR Total Improvement Score (0-100)")
SCORE_UNIT = "{score}"


@dataclasses.dataclass(frozen=True)
class LabCode:
    """How a test on the clinic's lab list is coded: the LOINC code we export, and others we
    take on import (the same analyte reported another way)."""

    loinc: str
    display: str
    also: tuple[str, ...] = ()


#: LOINC codes (loinc.org) by our lab key (config.toml [labs.tests]).
LAB_CODES: Mapping[str, LabCode] = {
    "creatinine": LabCode(
        "14682-9", "Creatinine [Moles/volume] in Serum or Plasma", also=("2160-0",)
    ),
    # 33914-3 is the FHIR specification's own eGFR example (MDRD); the others are the same
    # quantity by other equations (CKD-EPI, CKD-EPI 2021) and are taken on import.
    "egfr": LabCode(
        "33914-3",
        "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or Plasma "
        "by Creatinine-based formula (MDRD)",
        also=("62238-1", "98979-8", "76633-7", "77147-7", "48642-3", "48643-1"),
    ),
    "hemoglobin": LabCode("718-7", "Hemoglobin [Mass/volume] in Blood"),
    "ck": LabCode("2157-6", "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma"),
    "aldolase": LabCode("1763-2", "Aldolase [Enzymatic activity/volume] in Serum or Plasma"),
    "ldh": LabCode(
        "2532-0", "Lactate dehydrogenase [Enzymatic activity/volume] in Serum or Plasma"
    ),
    "ast": LabCode(
        "1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma"
    ),
    "alt": LabCode(
        "1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma"
    ),
}


def lab_of_loinc(code: str) -> str | None:
    """Our lab key for a LOINC code, or None."""
    for key, lab in LAB_CODES.items():
        if code == lab.loinc or code in lab.also:
            return key
    return None


# --- units -------------------------------------------------------------------------------------

#: Each test's units as UCUM codes, with the factor that turns one of the unit into the first
#: (the test's reference unit). Creatinine: molar mass 113.12 g/mol, so 1 mg/dL = 88.4 µmol/L;
#: enzymes: 1 U = 1 µmol/min, so 1 µkat/L = 60 U/L (an SI definition); the international
#: unit of an enzyme assay is the same U.
UNIT_FACTORS: Mapping[str, Mapping[str, float]] = {
    "creatinine": {"umol/L": 1.0, "mmol/L": 1000.0, "mg/dL": 88.4},
    "hemoglobin": {"g/L": 1.0, "g/dL": 10.0},
    "egfr": {"mL/min/{1.73_m2}": 1.0},
    **{
        enzyme: {"U/L": 1.0, "[IU]/L": 1.0, "ukat/L": 60.0}
        for enzyme in ("ck", "aldolase", "ldh", "ast", "alt")
    },
}

#: How people write units (folded: no spaces, lower case, µ as u) -> the UCUM code.
_UCUM_ALIASES: Mapping[str, str] = {
    "umol/l": "umol/L",
    "mmol/l": "mmol/L",
    "mg/dl": "mg/dL",
    "g/l": "g/L",
    "g/dl": "g/dL",
    "u/l": "U/L",
    "iu/l": "[IU]/L",
    "[iu]/l": "[IU]/L",
    "ukat/l": "ukat/L",
    "ml/min/1.73m2": "mL/min/{1.73_m2}",
    "ml/min/{1.73_m2}": "mL/min/{1.73_m2}",
    "ml/min/1.73_m2": "mL/min/{1.73_m2}",
}


def fold_unit(unit: str) -> str:
    """A unit as compared: "µmol/L", "μmol/L" (Greek mu) and "umol/l" are one."""
    folded = "".join(unit.split()).casefold()
    return folded.replace("µ", "u").replace("μ", "u").replace("²", "2")


def ucum_code(unit: str) -> str | None:
    """The UCUM code of a unit as written ("µmol/L" -> "umol/L"), or None if unknown."""
    return _UCUM_ALIASES.get(fold_unit(unit))


def convert(test: str, value: float, from_unit: str, to_unit: str) -> float | None:
    """The value in `to_unit` (both UCUM codes of the test), or None when either is not one of
    the test's units. Rounded to 6 places, so a factor adds no spurious digits."""
    factors = UNIT_FACTORS.get(test, {})
    if from_unit not in factors or to_unit not in factors:
        return None
    if from_unit == to_unit:
        return value
    return round(value * factors[from_unit] / factors[to_unit], 6)


# --- statuses ----------------------------------------------------------------------------------

#: Our infusion statuses -> Appointment.status (hl7.org/fhir/R4/valueset-appointmentstatus.html).
#: An unbooked infusion has no chair or time yet: proposed (the only status, with cancelled
#: and waitlist, that may lack start and end: invariant app-3).
APPOINTMENT_STATUS: Mapping[str, str] = {
    "scheduled": "booked",
    "unbooked": "proposed",
    "checked_in": "checked-in",
    "in_chair": "arrived",
    "given": "fulfilled",
    "partial": "fulfilled",
    "missed": "noshow",
    "cancelled": "cancelled",
}

#: Infusion statuses that gave a dose -> MedicationAdministration.status
#: (hl7.org/fhir/R4/valueset-medication-admin-status.html): a partial dose was stopped.
ADMINISTRATION_STATUS: Mapping[str, str] = {"given": "completed", "partial": "stopped"}

#: Our reaction outcomes -> AdverseEvent.outcome codes.
AE_OUTCOMES: Mapping[str, str] = {
    "resolved": "resolved",
    "improving": "recovering",
    "ongoing": "ongoing",
    "transferred": "unknown",
}


def ae_severity(grade: int) -> str:
    """CTCAE grade -> AdverseEvent.severity (mild, moderate, severe): grade 1 is mild, 2
    moderate, 3 and above severe (CTCAE's own words for grades 1-3)."""
    return "mild" if grade <= 1 else "moderate" if grade == 2 else "severe"


def ae_outcome(grade: int, outcome: str | None, resolved: bool) -> str:
    """The AdverseEvent.outcome code: fatal for grade 5, resolved once resolved, else the
    nurse's outcome at the chair, else ongoing."""
    if grade >= 5:
        return "fatal"
    if resolved:
        return "resolved"
    return AE_OUTCOMES.get(outcome or "", "ongoing")


def regimen_status(is_latest: bool, course_stopped: bool) -> str:
    """MedicationRequest.status of a regimen version: the latest is active (stopped once the
    course was stopped at a review); an earlier version was replaced: completed."""
    if not is_latest:
        return "completed"
    return "stopped" if course_stopped else "active"


def taper_status(is_latest: bool, step_statuses: Sequence[str]) -> str:
    """MedicationRequest.status of a taper plan: a replaced plan was stopped (its open steps
    were cancelled); the latest is completed once no step is planned, active or held."""
    if not is_latest:
        return "stopped"
    open_ = {"planned", "active", "held"}
    return "active" if any(s in open_ for s in step_statuses) else "completed"


# --- taper steps as dated doses ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StepRow:
    """A stored taper step as the export reads it."""

    position: int
    mg_per_day: float
    min_days: int
    alternate_day_mg: float | None
    requires_cortisol: bool
    status: str
    earliest_on: dt.date
    started_on: dt.date | None
    ended_on: dt.date | None


@dataclasses.dataclass(frozen=True)
class StepBounds:
    """A step on the calendar: its first and last day (both inclusive, as a FHIR Period)."""

    step: StepRow
    #: 1, 2, 3 ... in plan order (Dosage.sequence).
    sequence: int
    first_day: dt.date
    last_day: dt.date


def step_bounds(steps: Sequence[StepRow]) -> list[StepBounds]:
    """Date the steps of a plan as they are stored: each from the day it started (else its
    earliest day) for its days (the 0 mg stop at the end: its one day, as
    app.domain.taper.date_steps places it), or to the day it ended. Skipped and cancelled
    steps are not taken and are left out."""
    live = [s for s in sorted(steps, key=lambda s: s.position) if s.status not in _NOT_TAKEN]
    bounds = []
    for number, step in enumerate(live, start=1):
        first = step.started_on or step.earliest_on
        is_stop = number == len(live) and step.mg_per_day == 0
        if step.ended_on is not None:
            end = max(step.ended_on, first + dt.timedelta(days=1))
        else:
            end = first + dt.timedelta(days=1 if is_stop else step.min_days)
        bounds.append(StepBounds(step, number, first, end - dt.timedelta(days=1)))
    return bounds


_NOT_TAKEN = frozenset({"skipped", "cancelled"})


def resource_id(kind: str, key: int | str, *parts: str) -> str:
    """A stable FHIR id ("administration-123", "assessment-5-mmt8"): [A-Za-z0-9-.]{1,64}."""
    return "-".join((kind, str(key), *parts))[:64]
