"""Demo data for the quick start: loaded idempotently, refused in production."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import clock
from app.config import Settings
from app.models import (
    Center,
    Patient,
    Regimen,
    TaperPlan,
    User,
)
from app.services import centers as center_service
from app.services import jobruns, patients, regimens, reviews, tapers
from app.services import users as user_service
from app.services.context import Actor, system_actor, unit_of_work
from app.services.errors import Forbidden


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str


DEMO_LOGINS = (
    DemoLogin("nurse", "nurse@demo.clinic", "demo-nurse-pass"),
    DemoLogin("physician", "physician@demo.clinic", "demo-physician-pass"),
    DemoLogin("admin", "admin@demo.clinic", "demo-admin-pass"),
)
_NAMES = {"nurse": "Nora Nurse", "physician": "Dr Paul Physician", "admin": "Ada Admin"}

_CENTERS = (
    ("Riverside Infusion Center", "America/New_York", "12 River Rd", 6, range(0, 5)),
    ("Hilltop Infusion Suite", "America/Chicago", "400 Hill St", 4, range(0, 6)),
)

_PATIENTS = (
    # mrn, family, given, sex, born, center index, height cm, weight kg, thrombosis risk
    ("DEMO-0001", "Garcia", "Maria", "female", dt.date(1971, 3, 14), 0, 163.0, 68.0, False),
    ("DEMO-0002", "Okafor", "James", "male", dt.date(1964, 11, 2), 0, 175.0, 100.0, False),
    ("DEMO-0003", "Lindqvist", "Eva", "female", dt.date(1985, 7, 29), 1, 170.0, 59.5, False),
    ("DEMO-0004", "Nguyen", "Thi", "female", dt.date(1958, 1, 5), 1, 152.0, 51.0, True),
    ("DEMO-0005", "Brown", "Alex", "male", dt.date(1969, 5, 20), 0, 175.0, 100.0, False),
    # The busy Monday at Riverside (_demo_busy_monday): six courses that all want 09:00.
    ("DEMO-0006", "Haddad", "Leila", "female", dt.date(1976, 9, 9), 0, 168.0, 72.0, False),
    ("DEMO-0007", "Kowalski", "Piotr", "male", dt.date(1961, 2, 17), 0, 181.0, 88.0, False),
    ("DEMO-0008", "Mensah", "Ama", "female", dt.date(1980, 12, 1), 0, 160.0, 64.0, False),
    ("DEMO-0009", "Rossi", "Marco", "male", dt.date(1955, 6, 30), 0, 172.0, 79.0, False),
    ("DEMO-0010", "Tanaka", "Yui", "female", dt.date(1990, 4, 22), 0, 158.0, 52.0, False),
    ("DEMO-0011", "Walsh", "Siobhan", "female", dt.date(1967, 8, 14), 0, 165.0, 70.0, False),
    # Courses with history at Hilltop for the clinic reports (_demo_histories).
    ("DEMO-0012", "Silva", "Ana", "female", dt.date(1973, 10, 3), 1, 161.0, 66.0, False),
    ("DEMO-0013", "Berg", "Lars", "male", dt.date(1966, 3, 8), 1, 183.0, 90.0, False),
    ("DEMO-0014", "Achebe", "Ngozi", "female", dt.date(1982, 5, 17), 1, 170.0, 74.0, False),
    ("DEMO-0015", "Moreau", "Claire", "female", dt.date(1970, 2, 11), 1, 166.0, 68.0, False),
)
#: The patients of the busy Monday.
_BUSY_MONDAY = ("DEMO-0006", "DEMO-0007", "DEMO-0008", "DEMO-0009", "DEMO-0010", "DEMO-0011")


def load_demo_data(session: so.Session, settings: Settings) -> list[DemoLogin]:
    """Create the demo users, centers, chairs and patients that are missing."""
    if settings.is_production:
        raise Forbidden("demo data is refused in production mode")
    actor = system_actor("demo")
    for login in DEMO_LOGINS:
        exists = session.scalar(sa.select(User.id).where(User.email == login.email))
        if exists is None:
            user_service.create_user(
                session,
                actor,
                email=login.email,
                full_name=_NAMES[login.role],
                role=login.role,
                password=login.password,
                settings=settings.auth,
            )
    with unit_of_work(session):
        centers = []
        for name, zone, address, chairs, weekdays in _CENTERS:
            center = session.scalar(sa.select(Center).where(Center.name == name))
            if center is None:
                center = center_service.create_center(
                    session,
                    actor,
                    center_service.CenterInput(
                        name=name,
                        timezone=zone,
                        address=address,
                        hours=tuple(
                            center_service.DayHours(day, dt.time(8), dt.time(18), nurses=2)
                            for day in weekdays
                        ),
                        chairs=tuple(
                            center_service.ChairInput(f"Chair {n}") for n in range(1, chairs + 1)
                        ),
                    ),
                )
            centers.append(center)
        physician_id = session.scalar(sa.select(User.id).where(User.email == DEMO_LOGINS[1].email))
        for mrn, family, given, sex, born, center_index, height, weight, risk in _PATIENTS:
            if session.scalar(sa.select(Patient.id).where(Patient.mrn == mrn)) is None:
                patients.create_patient(
                    session,
                    actor,
                    patients.PatientInput(
                        mrn=mrn,
                        family_name=family,
                        given_name=given,
                        sex=sex,
                        birth_date=born,
                        home_center_id=centers[center_index].id,
                        height_cm=height,
                        weight_kg=weight,
                        treating_physician_id=physician_id,
                        thrombosis_risk=risk,
                    ),
                    settings,
                )
    _demo_taper(session, settings, physician_id)
    _demo_responder(session, settings, physician_id)
    _demo_starting(session, settings, physician_id)
    _demo_busy_monday(session, settings, physician_id)
    _demo_histories(session, settings, physician_id)
    # The review job's tasks now (a run on the admin's jobs page), not at its next daily run.
    jobruns.run(session, settings, "review_due", reviews.sweep_due, process="demo load")
    return list(DEMO_LOGINS)


def _untouched(
    session: so.Session, mrn: str, made: type[Regimen] | type[TaperPlan]
) -> Patient | None:
    """The demo patient, or None when missing or already given its demo rows of `made`
    (loading the demo twice adds nothing)."""
    patient = session.scalar(sa.select(Patient).where(Patient.mrn == mrn))
    if patient is None or session.scalar(sa.select(made.id).where(made.patient_id == patient.id)):
        return None
    return patient


def _demo_starting(session: so.Session, settings: Settings, physician_id: int | None) -> None:
    """A course that starts on the next open day, the patient e-mailed with consent: moving
    that infusion sends a change notice (`make run MAIL=1` prints it)."""
    patient = _untouched(session, "DEMO-0001", Regimen)
    if patient is None:
        return
    with unit_of_work(session):
        patient.contact_email = "maria.garcia@example.org"
        patient.contact_consent_at = clock.now()
    today = clock.clinic_today(patient.home_center.timezone)
    start = today + dt.timedelta(days=1)
    while start.weekday() >= 5:  # Riverside opens Monday to Friday
        start += dt.timedelta(days=1)
    _demo_regimen(
        session, settings, physician_id, patient, start, dt.time(10), "first cycle", now=None
    )


def busy_monday() -> dt.date:
    """The Monday after next on Riverside's clock: the day the busy courses start."""
    monday = clock.clinic_today("America/New_York") + dt.timedelta(days=8)
    return monday + dt.timedelta(days=(7 - monday.weekday()) % 7)


def _demo_busy_monday(session: so.Session, settings: Settings, physician_id: int | None) -> None:
    """Six courses that start on the Monday after next, every patient wanting 09:00: first-fit
    books them side by side, six setups at once for the two nurses on shift. "Optimise the
    next four weeks" (the day board's Optimise link) spreads them."""
    monday = busy_monday()
    for mrn in _BUSY_MONDAY:
        patient = _untouched(session, mrn, Regimen)
        if patient is None:
            continue
        _demo_regimen(
            session, settings, physician_id, patient, monday, dt.time(9), "new course", now=None
        )


def _demo_regimen(
    session: so.Session,
    settings: Settings,
    physician_id: int | None,
    patient: Patient,
    start: dt.date,
    at: dt.time,
    why: str,
    now: dt.datetime | None,
) -> None:
    """The demo's regimen: 2 g/kg over 2 days every 4 weeks, set by the demo physician."""
    doctor = Actor(label="system:demo", user_id=physician_id, role="physician")
    regimens.set_regimen(
        session,
        doctor,
        patient.id,
        regimens.RegimenInput(
            product="Octagam 10%",
            dose_g_per_kg=2.0,
            days_per_cycle=2,
            interval_weeks=4,
            weight_basis="adjusted",
            starts_on=start,
            preferred_time=at,
            reason=f"Demo: refractory DM, {why}",
        ),
        settings,
        now=now,
    )


def _demo_past_course(
    session: so.Session,
    settings: Settings,
    physician_id: int | None,
    patient: Patient,
    weeks_ago: int,
    why: str,
) -> dt.date:
    """The demo's regimen set the day before a Monday `weeks_ago` weeks back (its infusions
    booked from then); returns that Monday. A week earlier when a cycle would begin today:
    by the afternoon it would have begun on the clock with nothing recorded, and the demo's
    next cycle (what an approval changes) would be four weeks off."""
    zone = ZoneInfo(patient.home_center.timezone)
    today = clock.clinic_today(patient.home_center.timezone)
    start = today - dt.timedelta(weeks=weeks_ago)
    start -= dt.timedelta(days=start.weekday())  # a Monday
    if (today - start).days % 28 == 0:  # the demo's cycles come every four weeks
        start -= dt.timedelta(weeks=1)
    _demo_regimen(
        session,
        settings,
        physician_id,
        patient,
        start,
        dt.time(9),
        why,
        now=dt.datetime.combine(start - dt.timedelta(days=1), dt.time(8), tzinfo=zone),
    )
    return start


def _demo_responder(session: so.Session, settings: Settings, physician_id: int | None) -> None:
    """Sixteen weeks of IVIG with a response: one more stable assessment earns a suggestion."""
    from app.models import Assessment

    patient = _untouched(session, "DEMO-0005", Regimen)
    if patient is None:
        return
    today = clock.clinic_today(patient.home_center.timezone)
    start = _demo_past_course(session, settings, physician_id, patient, 16, "cutaneous")
    _give_before(session, settings, patient.id, today)
    with unit_of_work(session):
        for days, activity in ((-1, 40.0), (56, 30.0)):
            session.add(
                Assessment(
                    patient_id=patient.id,
                    assessed_on=start + dt.timedelta(days=days),
                    cdasi_activity=activity,
                    notes="demo",
                )
            )


def _demo_taper(session: so.Session, settings: Settings, physician_id: int | None) -> None:
    """A prednisone taper begun four weeks ago, so its first step is waiting for approval."""
    patient = _untouched(session, "DEMO-0003", TaperPlan)
    if patient is None:
        return
    today = clock.clinic_today(patient.home_center.timezone)
    started = today - dt.timedelta(days=settings.steroids.start_days)
    actor = Actor(label="system:demo", user_id=physician_id, role="physician")
    tapers.create_plan(
        session,
        actor,
        patient.id,
        tapers.PlanInput(
            drug="prednisone",
            start_mg=60,
            template="banded",
            starts_on=started,
            reason="Demo: taper beside IVIG",
        ),
        settings,
        started,
    )


def _give_before(session: so.Session, settings: Settings, patient_id: int, day: dt.date) -> None:
    """Record every booked infusion of the patient before `day` as given, as planned."""
    from app.models import Infusion, InfusionStatus
    from app.services import infusions

    past = session.scalars(
        sa.select(Infusion)
        .where(
            Infusion.patient_id == patient_id,
            Infusion.status == InfusionStatus.SCHEDULED,
            Infusion.planned_date < day,
        )
        .order_by(Infusion.planned_date)
    ).all()
    nurse = Actor(label="system:demo")
    for infusion in past:
        assert infusion.starts_at is not None and infusion.ends_at is not None  # booked
        infusions.record_given(
            session,
            nurse,
            infusion.id,
            infusions.GivenInput(
                given_grams=infusion.planned_grams,
                started_at=infusion.starts_at,
                ended_at=infusion.ends_at,
                lot_numbers="DEMO-LOT",
                max_rate_ml_per_kg_min=0.04,
            ),
            settings,
        )


@dataclass(frozen=True)
class _Visit:
    """An assessment `day` days into the course: CDASI activity, and how much better (a
    fraction) than at the start the other measures of the Total Improvement Score are."""

    day: int
    cdasi_activity: float
    better: float


@dataclass(frozen=True)
class _History:
    mrn: str
    weeks_ago: int
    visits: tuple[_Visit, ...]
    #: (day, decision, note) of each course review.
    reviews: tuple[tuple[int, str, str], ...] = ()
    #: (cycle, type, grade, serious) of each adverse event, on the cycle's first day.
    events: tuple[tuple[int, str, int, bool], ...] = ()
    #: A prednisone taper begun with the course, its steps approved as they fell due.
    taper: bool = False


#: The clinic reports' demo (up to 40 weeks of history at Hilltop): a responder who
#: reached remission while tapering prednisone, a patient stopped after a thrombosis, one who
#: did not respond after 20 weeks, and one six weeks in. DEMO-0005 is the responder.
_HISTORIES = (
    _History(
        "DEMO-0015",
        40,
        (
            _Visit(-1, 38.0, 0.0),
            _Visit(48, 30.0, 0.3),
            _Visit(104, 22.0, 0.45),
            _Visit(174, 12.0, 0.55),
            _Visit(251, 10.0, 0.6),
        ),
        reviews=((50, "continue", ""), (180, "continue", "")),
        events=((2, "headache", 1, False),),
        taper=True,
    ),
    _History(
        "DEMO-0012",
        24,
        (
            _Visit(-1, 30.0, 0.0),
            _Visit(48, 31.0, 0.02),
            _Visit(104, 32.0, 0.0),
        ),
        reviews=(
            (50, "continue", ""),
            (126, "stop", "Deep vein thrombosis after cycle 5; IVIG stopped."),
        ),
        events=((1, "headache", 2, False), (5, "thrombosis", 3, True)),
    ),
    _History(
        "DEMO-0013",
        20,
        (_Visit(-1, 26.0, 0.0), _Visit(48, 25.0, 0.0), _Visit(104, 27.0, 0.0)),
        reviews=((50, "continue", ""),),
    ),
    _History("DEMO-0014", 6, (_Visit(-1, 34.0, 0.0), _Visit(27, 33.0, 0.0))),
)


def _demo_histories(session: so.Session, settings: Settings, physician_id: int | None) -> None:
    """Courses with months of history (_HISTORIES), for the clinic reports, the stewardship
    ledger and the timeline: infusions given, assessments, reviews, adverse events, a taper."""
    for history in _HISTORIES:
        patient = _untouched(session, history.mrn, Regimen)
        if patient is None:
            continue
        _demo_history(session, settings, physician_id, patient, history)


def _demo_history(
    session: so.Session,
    settings: Settings,
    physician_id: int | None,
    patient: Patient,
    history: _History,
) -> None:
    from app.models import Infusion, InfusionStatus
    from app.services import adverse_events, infusions

    today = clock.clinic_today(patient.home_center.timezone)
    start = _demo_past_course(
        session, settings, physician_id, patient, history.weeks_ago, "history"
    )
    _demo_visits(session, patient.id, start, history.visits)
    doctor = Actor(label="system:demo", user_id=physician_id, role="physician")
    nurse = Actor(label="system:demo")
    stopped_on: dt.date | None = None
    reviewed = [(day, 0, decision, note) for day, decision, note in history.reviews]
    # An event on a cycle's first day (cycles every 4 weeks from the start).
    happened = [
        (28 * (cycle - 1), 1, kind, str(grade)) for cycle, kind, grade, _s in history.events
    ]
    serious = {28 * (cycle - 1): flag for cycle, _k, _g, flag in history.events}
    for day, order, what, detail in sorted(reviewed + happened):
        on = start + dt.timedelta(days=day)
        _give_before(session, settings, patient.id, on + dt.timedelta(days=1))
        if order == 0:
            reviews.record_review(
                session,
                doctor,
                patient.id,
                reviews.ReviewInput(decision=what, note=detail, reviewed_on=on),
                settings,
            )
            stopped_on = on if what == "stop" else None
            continue
        infusion_id = session.scalar(
            sa.select(Infusion.id).where(
                Infusion.patient_id == patient.id,
                Infusion.planned_date == on,
                Infusion.status == InfusionStatus.GIVEN,
            )
        )
        assert infusion_id is not None
        adverse_events.record_adverse_event(
            session,
            nurse,
            infusion_id,
            adverse_events.AdverseEventInput(
                event_type=what, grade=int(detail), occurred_on=on, serious=serious[day]
            ),
            today,
        )
    if stopped_on is None:
        _give_before(session, settings, patient.id, today)
    else:
        for infusion_id in session.scalars(
            sa.select(Infusion.id).where(
                Infusion.patient_id == patient.id,
                Infusion.status.in_([InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED]),
            )
        ).all():
            infusions.set_status(
                session, doctor, infusion_id, InfusionStatus.CANCELLED, "Course stopped at review"
            )
    if history.taper:
        _demo_taper_history(session, settings, doctor, patient.id, start, today)


def _demo_visits(
    session: so.Session, patient_id: int, start: dt.date, visits: tuple[_Visit, ...]
) -> None:
    from app.models import Assessment

    with unit_of_work(session):
        for visit in visits:
            kept = 1 - visit.better
            session.add(
                Assessment(
                    patient_id=patient_id,
                    assessed_on=start + dt.timedelta(days=visit.day),
                    cdasi_activity=visit.cdasi_activity,
                    cdasi_damage=6.0,
                    mmt8=round(62 * (1 + visit.better / 4), 1),
                    ck=round(900 * kept),
                    ck_uln=200.0,
                    physician_global=round(6 * kept, 1),
                    patient_global=round(6.5 * kept, 1),
                    haq=round(1.2 * kept, 2),
                    extramuscular_global=round(4 * kept, 1),
                    notes="demo",
                )
            )


def _demo_taper_history(
    session: so.Session,
    settings: Settings,
    doctor: Actor,
    patient_id: int,
    start: dt.date,
    today: dt.date,
) -> None:
    """Prednisone 40 mg/day from the course's start, banded, each step approved when due."""
    tapers.create_plan(
        session,
        doctor,
        patient_id,
        tapers.PlanInput(
            drug="prednisone",
            start_mg=40,
            template="banded",
            starts_on=start,
            reason="Demo: taper beside IVIG",
        ),
        settings,
        start,
    )
    while True:
        plan = tapers.current_plan(session, patient_id)
        assert plan is not None
        step = tapers.next_step(plan.steps)
        due = tapers.due_on(plan.steps)
        if step is None or due is None or due >= today or step.mg_per_day == 0:
            return
        tapers.approve_step(session, doctor, step.id, settings, today=due)
