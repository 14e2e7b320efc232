"""The review pack: what a physician or a payer (BloodSTAR, Ontario IGUM) reads to judge
whether a patient's IVIG course works, on one printed page or as CSV.

Read only, in a fixed number of queries whatever the length of the course: the patient, the
course's totals, the regimen versions, the assessments each scored against the baseline
(the Total Improvement Score of app.services.reviews.tis_on, from one loaded record), the
reviews recorded, the authorisations, and the next review point (app.services.reviews.status).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.domain.reviews import ReviewPoint
from app.models import Infusion, InfusionStatus, Patient
from app.services import reviews, scheduling, suggestions
from app.services.errors import NotFound

#: Infusions whose given grams count towards the course (a partial one counts what was given).
_GIVEN = (InfusionStatus.GIVEN.value, InfusionStatus.PARTIAL.value)


@dataclasses.dataclass(frozen=True)
class PackPatient:
    patient_id: int
    name: str
    mrn: str
    birth_date: dt.date
    home_center: str
    #: The responsible physician's name (None: none recorded).
    treating_physician: str | None


@dataclasses.dataclass(frozen=True)
class PackCourse:
    #: The first day of the course's first cycle (cancelled infusions aside); None: no cycle.
    first_cycle_on: dt.date | None
    #: Cycles with at least one infusion given or partly given.
    cycles_given: int
    #: Grams recorded as given on given and partial infusions.
    grams_given: float


@dataclasses.dataclass(frozen=True)
class PackRegimen:
    version: int
    #: The version's first cycle start (its start date moved to its preferred weekday).
    from_on: dt.date
    product: str
    dose_g_per_kg: float
    days_per_cycle: int
    interval_weeks: int
    grams_per_cycle: float
    reason: str


@dataclasses.dataclass(frozen=True)
class PackAssessment:
    assessed_on: dt.date
    cdasi_activity: float | None
    cdasi_damage: float | None
    mmt8: float | None
    ck: float | None
    ck_uln: float | None
    physician_global: float | None
    patient_global: float | None
    #: Total Improvement Score as of the assessment's day against the course's baseline (two
    #: assessments on one day both show the later one's); None when a measure is missing.
    tis: float | None


@dataclasses.dataclass(frozen=True)
class PackReview:
    reviewed_on: dt.date
    due_on: dt.date | None
    decision: str
    note: str
    #: The measures the decision rested on, and the TIS, as recorded with the review.
    cdasi_activity: float | None
    mmt8: float | None
    physician_global: float | None
    tis: float | None
    reviewed_by: str


@dataclasses.dataclass(frozen=True)
class PackAuthorisation:
    reference: str
    approved_by: str
    starts_on: dt.date
    ends_on: dt.date


@dataclasses.dataclass(frozen=True)
class ReviewPack:
    #: The day the pack was drawn up (the clinic's today).
    prepared_on: dt.date
    patient: PackPatient
    course: PackCourse
    #: Oldest version first.
    regimens: tuple[PackRegimen, ...]
    #: Oldest first.
    assessments: tuple[PackAssessment, ...]
    #: Oldest first.
    reviews: tuple[PackReview, ...]
    #: By start date.
    authorisations: tuple[PackAuthorisation, ...]
    #: The next review point (None: no cycle yet, or the course was stopped).
    next_review: ReviewPoint | None
    overdue: bool
    stopped: bool
    #: The course is authorised through this day (None: no authorisation scheme).
    authorised_until: dt.date | None


def review_pack(
    session: so.Session, patient_id: int, settings: Settings, today: dt.date
) -> ReviewPack:
    """Return the patient's review pack as of `today`; NotFound for an unknown patient."""
    patient = session.scalar(
        sa.select(Patient)
        .where(Patient.id == patient_id)
        .options(so.joinedload(Patient.home_center), so.joinedload(Patient.treating_physician))
    )
    if patient is None:
        raise NotFound(f"patient_id: no patient {patient_id}", field="patient_id")
    given = Infusion.status.in_(_GIVEN)
    first_cycle_on, cycles_given, grams_given = session.execute(
        sa.select(
            sa.func.min(Infusion.planned_date),
            sa.func.count(sa.distinct(sa.case((given, Infusion.cycle_number)))),
            sa.func.sum(sa.case((given, Infusion.given_grams))),
        ).where(
            Infusion.patient_id == patient_id,
            Infusion.status != InfusionStatus.CANCELLED.value,
        )
    ).one()
    record = suggestions.load_record(session, patient_id, settings, today)
    state = reviews.status(session, patient_id, settings, today)
    physician = patient.treating_physician
    return ReviewPack(
        prepared_on=today,
        patient=PackPatient(
            patient_id=patient.id,
            name=patient.display_name,
            mrn=patient.mrn,
            birth_date=patient.birth_date,
            home_center=patient.home_center.name,
            treating_physician=physician.full_name if physician else None,
        ),
        course=PackCourse(
            first_cycle_on=first_cycle_on,
            cycles_given=int(cycles_given or 0),
            grams_given=float(grams_given or 0.0),
        ),
        regimens=tuple(
            PackRegimen(
                version=r.version,
                from_on=scheduling.first_cycle_start(r),
                product=r.product,
                dose_g_per_kg=r.dose_g_per_kg,
                days_per_cycle=r.days_per_cycle,
                interval_weeks=r.interval_weeks,
                grams_per_cycle=r.grams_per_cycle,
                reason=r.reason,
            )
            for r in sorted(record.regimens, key=lambda r: r.version)
        ),
        assessments=tuple(
            PackAssessment(
                assessed_on=a.assessed_on,
                cdasi_activity=a.cdasi_activity,
                cdasi_damage=a.cdasi_damage,
                mmt8=a.mmt8,
                ck=a.ck,
                ck_uln=a.ck_uln,
                physician_global=a.physician_global,
                patient_global=a.patient_global,
                tis=reviews.tis_on(session, patient_id, settings, a.assessed_on, record=record),
            )
            for a in sorted(record.assessments, key=lambda a: (a.assessed_on, a.id))
        ),
        reviews=tuple(
            PackReview(
                reviewed_on=r.reviewed_on,
                due_on=r.due_on,
                decision=r.decision,
                note=r.note,
                cdasi_activity=r.cdasi_activity,
                mmt8=r.mmt8,
                physician_global=r.physician_global,
                tis=r.tis,
                reviewed_by=r.reviewed_by.full_name,
            )
            for r in sorted(state.history, key=lambda r: (r.reviewed_on, r.id))
        ),
        authorisations=tuple(
            PackAuthorisation(a.reference, a.approved_by, a.starts_on, a.ends_on)
            for a in sorted(state.authorisations, key=lambda a: (a.starts_on, a.ends_on, a.id))
        ),
        next_review=state.point,
        overdue=state.overdue,
        stopped=state.stopped,
        authorised_until=state.authorised_until,
    )


# --- CSV --------------------------------------------------------------------------------------

#: The CSV's columns. Every row fills `section` and `date` and the columns of its section:
#: - patient (one row): date = the day the pack was drawn up; name ... authorised_until.
#: - regimen (a row per version): date = the version's first cycle start; version ... reason.
#: - assessment (a row per assessment): date = assessed on; cdasi_activity ... tis.
#: - review (a row per review): date = reviewed on; cdasi_activity, mmt8, physician_global and
#:   tis as recorded with it, due_on ... reviewed_by.
#: - authorisation (a row per authorisation): date = starts on; reference, approved_by, ends_on.
CSV_HEADER = (
    "section",
    "date",
    # patient
    "name",
    "mrn",
    "birth_date",
    "home_center",
    "treating_physician",
    "first_cycle_on",
    "cycles_given",
    "grams_given",
    "next_review_due",
    "review_overdue",
    "authorised_until",
    # regimen
    "version",
    "product",
    "dose_g_per_kg",
    "days_per_cycle",
    "interval_weeks",
    "grams_per_cycle",
    "reason",
    # assessment (and review: the measures it rested on)
    "cdasi_activity",
    "cdasi_damage",
    "mmt8",
    "ck",
    "ck_uln",
    "physician_global",
    "patient_global",
    "tis",
    # review
    "due_on",
    "decision",
    "note",
    "reviewed_by",
    # authorisation
    "reference",
    "approved_by",
    "ends_on",
)


def _cell(value: object) -> object:
    """Dates in ISO 8601, numbers without a needless ".0", booleans as yes/no, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _row(section: str, day: dt.date | None, **fields: object) -> list[object]:
    unknown = set(fields) - set(CSV_HEADER)
    assert not unknown, unknown
    values = {"section": section, "date": day, **fields}
    return [_cell(values.get(column)) for column in CSV_HEADER]


def csv_rows(pack: ReviewPack) -> Iterator[list[object]]:
    """The pack as CSV rows, the header (CSV_HEADER) first, then one row per line of the pack
    in the page's order: patient, regimens, assessments, reviews, authorisations."""
    yield list(CSV_HEADER)
    p, course, point = pack.patient, pack.course, pack.next_review
    yield _row(
        "patient",
        pack.prepared_on,
        name=p.name,
        mrn=p.mrn,
        birth_date=p.birth_date,
        home_center=p.home_center,
        treating_physician=p.treating_physician,
        first_cycle_on=course.first_cycle_on,
        cycles_given=course.cycles_given,
        grams_given=course.grams_given,
        next_review_due=point.due_on if point else None,
        review_overdue=pack.overdue,
        authorised_until=pack.authorised_until,
    )
    for section, items, day in (
        ("regimen", pack.regimens, "from_on"),
        ("assessment", pack.assessments, "assessed_on"),
        ("review", pack.reviews, "reviewed_on"),
        ("authorisation", pack.authorisations, "starts_on"),
    ):
        for item in items:
            fields = dataclasses.asdict(item)
            yield _row(section, fields.pop(day), **fields)
