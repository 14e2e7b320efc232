"""Stateful property test: no sequence of clinic actions breaks the therapy-integrity rules.

Hypothesis drives the real services on the real database (SQLite or PostgreSQL) with random
sequences of what a clinic does: physicians set regimens and decide suggestions, nurses move,
give, miss and cancel infusions and record assessments and reactions, admins close the
center, the scheduler rolls the horizon and evaluates the rules at night, and the clock moves
on. After every step the pure checker (app.domain.integrity) must find nothing, and the
suggestions must not contradict each other.

`make test` runs a bounded, derandomised set of examples; `make fuzz` runs many more at
random (IVIG_FUZZ_EXAMPLES, IVIG_FUZZ_STEPS). The longest sequence run is printed.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from app import clock
from app.db import make_session_factory
from app.models import (
    AdverseEvent,
    Center,
    Chair,
    Infusion,
    InfusionStatus,
    OpeningHours,
    Suggestion,
    User,
)
from app.services import adverse_events as adverse_event_service
from app.services import assessments, centers, infusions, patients, scheduling, suggestions
from app.services import integrity as integrity_service
from app.services import regimens as regimen_service
from app.services.context import Actor, unit_of_work
from app.services.errors import ServiceError
from tests.conftest import make_settings
from tests.db.clinic_fixtures import NEW_YORK

FUZZ = os.environ.get("IVIG_FUZZ") == "1"
EXAMPLES = int(os.environ.get("IVIG_FUZZ_EXAMPLES", "400" if FUZZ else "25"))
STEPS = int(os.environ.get("IVIG_FUZZ_STEPS", "60" if FUZZ else "30"))
START = dt.datetime(2027, 3, 1, 7, 0, tzinfo=NEW_YORK)  # a Monday morning
LIVE = (InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED)


class TherapyMachine(RuleBasedStateMachine):
    engine: sa.Engine
    settings: object
    longest = 0
    examples = 0
    refusals: dict[str, int] = {}
    done: dict[str, int] = {}
    reasons: dict[str, int] = {}

    def __init__(self) -> None:
        super().__init__()
        self.connection = self.engine.connect()
        self.outer = self.connection.begin()
        self.session = make_session_factory(
            self.connection, self.settings, join_transaction_mode="create_savepoint"
        )()
        self.now = START
        self.steps = 0
        clock.set_now(self.now)

    @initialize()
    def open_the_clinic(self) -> None:
        s = self.session
        center = Center(name="Fuzz Center", timezone="America/New_York")
        center.opening_hours = [
            OpeningHours(weekday=d, opens_at=dt.time(8), closes_at=dt.time(18)) for d in range(5)
        ]
        center.chairs = [Chair(name="Chair 1"), Chair(name="Chair 2")]
        s.add(center)
        people = {}
        for role in ("physician", "nurse", "admin"):
            user = User(email=f"{role}@fuzz.test", full_name=role, role=role, password_hash="x")
            s.add(user)
            s.flush()
            people[role] = Actor(label=user.email, user_id=user.id, role=role)
        s.commit()
        self.center = center
        self.doctor, self.nurse, self.admin = people["physician"], people["nurse"], people["admin"]
        self.patients = [
            patients.create_patient(
                s,
                self.nurse,
                patients.PatientInput(
                    mrn=f"F-{n}",
                    family_name="Fuzz",
                    given_name=str(n),
                    sex=sex,
                    birth_date=dt.date(1970, 1, 1),
                    home_center_id=center.id,
                    height_cm=height,
                    weight_kg=weight,
                    thrombosis_risk=n == 1,
                ),
                self.settings,
                START.date(),
            ).id
            for n, (sex, height, weight) in enumerate([("male", 175, 100), ("female", 165, 60)])
        ]

    def teardown(self) -> None:
        cls = type(self)
        cls.longest = max(cls.longest, self.steps)
        cls.examples += 1
        self.session.close()
        self.outer.rollback()
        self.connection.close()
        clock.set_now(None)

    # --- helpers --------------------------------------------------------------------------

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(NEW_YORK).date()

    def attempt(self, name: str, action) -> object:
        """Run one user action; a refusal (4xx) is fine and must leave nothing behind."""
        self.steps += 1
        try:
            result = action()
        except ServiceError as exc:
            assert 400 <= exc.status < 500
            self.refusals[name] = self.refusals.get(name, 0) + 1
            assert not self.session.in_transaction() or not (self.session.new or self.session.dirty)
            reason = exc.message.split(":")[0]
            self.reasons[f"{name}/{reason}"] = self.reasons.get(f"{name}/{reason}", 0) + 1
            return None
        self.done[name] = self.done.get(name, 0) + 1
        return result

    def rows(self, patient: int, statuses=None) -> list[Infusion]:
        statement = sa.select(Infusion).where(Infusion.patient_id == patient)
        if statuses:
            statement = statement.where(Infusion.status.in_([s.value for s in statuses]))
        return list(self.session.scalars(statement.order_by(Infusion.planned_date, Infusion.id)))

    def pick(self, items: list, index: int):
        return items[index % len(items)] if items else None

    # --- the clock ------------------------------------------------------------------------

    @rule(days=st.sampled_from([0, 1, 2, 3, 7, 14, 28]), hour=st.sampled_from([7, 12, 21]))
    def time_passes(self, days: int, hour: int) -> None:
        day = self.today + dt.timedelta(days=days)
        later = dt.datetime.combine(day, dt.time(hour), tzinfo=NEW_YORK)
        self.now = max(self.now, later)
        clock.set_now(self.now)

    # --- physicians -----------------------------------------------------------------------

    @rule(
        patient=st.integers(0, 1),
        dose=st.sampled_from([1.0, 1.5, 2.0]),
        days=st.integers(1, 3),
        interval=st.sampled_from([2, 4, 6]),
        start_in=st.integers(-3, 21),
        override=st.booleans(),
    )
    def physician_sets_a_regimen(self, patient, dose, days, interval, start_in, override):
        pid = self.patients[patient]
        current = regimen_service.current_regimen(self.session, pid)
        data = regimen_service.RegimenInput(
            product="Octagam 10%",
            dose_g_per_kg=dose,
            days_per_cycle=days,
            interval_weeks=interval,
            weight_basis="adjusted",
            starts_on=self.today + dt.timedelta(days=start_in),
            reason="fuzz",
            based_on_version=current.version if current else None,
            preferred_time=dt.time(9),
            override_reason="Discussed with the patient" if override else None,
        )
        self.attempt(
            "set_regimen",
            lambda: regimen_service.set_regimen(
                self.session, self.doctor, pid, data, self.settings
            ),
        )

    @rule(patient=st.integers(0, 1), index=st.integers(0, 9), approve=st.booleans())
    def physician_decides_a_suggestion(self, patient, index, approve):
        waiting = [
            s for s in suggestions.queue(self.session) if s.patient_id == self.patients[patient]
        ]
        chosen = self.pick(waiting, index)
        if chosen is None:
            return
        if approve:
            self.attempt(
                "approve",
                lambda: suggestions.approve(
                    self.session, self.doctor, chosen.id, self.settings, reason="fuzz"
                ),
            )
        else:
            self.attempt(
                "reject", lambda: suggestions.reject(self.session, self.doctor, chosen.id, "no")
            )

    @rule(patient=st.integers(0, 1), index=st.integers(0, 9))
    def physician_resolves_an_event(self, patient, index):
        open_events = list(
            self.session.scalars(
                sa.select(AdverseEvent).where(
                    AdverseEvent.patient_id == self.patients[patient],
                    AdverseEvent.resolved_on.is_(None),
                )
            )
        )
        event = self.pick(open_events, index)
        if event is None:
            return
        self.attempt(
            "resolve",
            lambda: adverse_event_service.resolve_adverse_event(
                self.session,
                self.doctor,
                event.id,
                self.today,
                "settled",
                self.today,
                after_record=suggestions.evaluation_hook(self.settings),
            ),
        )

    # --- nurses ---------------------------------------------------------------------------

    @rule(
        patient=st.integers(0, 1),
        index=st.integers(0, 60),
        shift=st.integers(-3, 10),
        hour=st.sampled_from([8, 9, 13, 15]),
        chair=st.integers(0, 1),
        physician=st.booleans(),
    )
    def someone_reschedules(self, patient, index, shift, hour, chair, physician):
        target = self.pick(self.rows(self.patients[patient], LIVE), index)
        if target is None:
            return
        day = target.planned_date + dt.timedelta(days=shift)
        actor = self.doctor if physician else self.nurse
        self.attempt(
            "reschedule",
            lambda: infusions.reschedule(
                self.session,
                actor,
                target.id,
                self.center.chairs[chair].id,
                dt.datetime.combine(day, dt.time(hour), tzinfo=NEW_YORK),
                self.settings,
                override_reason="Patient asked" if physician else None,
            ),
        )

    @rule(patient=st.integers(0, 1))
    def nurse_catches_up_on_the_days_records(self, patient):
        for infusion in self.rows(self.patients[patient], (InfusionStatus.SCHEDULED,)):
            if infusion.ends_at is None or infusion.ends_at > self.now:
                continue
            data = infusions.GivenInput(
                given_grams=infusion.planned_grams,
                started_at=infusion.starts_at,
                ended_at=infusion.ends_at,
                lot_numbers="LOT",
                max_rate_ml_per_kg_min=0.03,
            )
            self.attempt(
                "record_given",
                lambda i=infusion, d=data: infusions.record_given(
                    self.session, self.nurse, i.id, d, self.settings
                ),
            )

    @rule(patient=st.integers(0, 1), index=st.integers(0, 60), honest=st.booleans())
    def nurse_records_given(self, patient, index, honest):
        live = self.rows(self.patients[patient], LIVE)
        due = [i for i in live if i.planned_date <= self.today]
        target = self.pick(due or live, index)
        if target is None:
            return
        if honest and target.starts_at is not None:
            started, ended = target.starts_at, target.ends_at
        else:
            started, ended = self.now - dt.timedelta(hours=5), self.now - dt.timedelta(minutes=10)
        data = infusions.GivenInput(
            given_grams=target.planned_grams,
            started_at=started,
            ended_at=ended,
            lot_numbers="LOT",
            max_rate_ml_per_kg_min=0.03,
        )
        self.attempt(
            "record_given",
            lambda: infusions.record_given(
                self.session, self.nurse, target.id, data, self.settings
            ),
        )

    @rule(patient=st.integers(0, 1), index=st.integers(0, 60), missed=st.booleans())
    def nurse_records_missed_or_cancels(self, patient, index, missed):
        target = self.pick(self.rows(self.patients[patient], LIVE), index)
        if target is None:
            return
        status = InfusionStatus.MISSED if missed else InfusionStatus.CANCELLED
        self.attempt(
            "set_status",
            lambda: infusions.set_status(self.session, self.nurse, target.id, status, "fuzz"),
        )

    @rule(patient=st.integers(0, 1), index=st.integers(0, 60), grams=st.sampled_from([20, 60, 0]))
    def nurse_amends_a_record(self, patient, index, grams):
        recorded = self.rows(self.patients[patient], (InfusionStatus.GIVEN, InfusionStatus.PARTIAL))
        target = self.pick(recorded, index)
        if target is None:
            return
        given = infusions.GivenInput(
            given_grams=grams or target.planned_grams,
            started_at=target.given_started_at,
            ended_at=target.given_ended_at,
            lot_numbers="LOT",
            max_rate_ml_per_kg_min=0.03,
            reason="pump log",
        )
        data = infusions.AmendmentInput(
            reason="correction",
            status=InfusionStatus.PARTIAL if grams else InfusionStatus.GIVEN,
            given=given,
        )
        self.attempt(
            "amend",
            lambda: infusions.amend_infusion(
                self.session, self.nurse, target.id, data, self.settings
            ),
        )

    @rule(patient=st.integers(0, 1), activity=st.integers(0, 60))
    def nurse_records_an_assessment(self, patient, activity):
        self.attempt(
            "assessment",
            lambda: assessments.record_assessment(
                self.session,
                self.nurse,
                self.patients[patient],
                assessments.AssessmentInput(
                    assessed_on=self.today, scores={"cdasi_activity": activity}
                ),
                self.today,
                after_record=suggestions.evaluation_hook(self.settings),
            ),
        )

    @rule(
        patient=st.integers(0, 1),
        index=st.integers(0, 60),
        kind=st.sampled_from(["headache", "fever", "thrombosis"]),
        grade=st.integers(1, 3),
    )
    def nurse_records_a_reaction(self, patient, index, kind, grade):
        given = self.rows(self.patients[patient], (InfusionStatus.GIVEN, InfusionStatus.PARTIAL))
        target = self.pick(given, index)
        if target is None:
            return
        self.attempt(
            "reaction",
            lambda: adverse_event_service.record_adverse_event(
                self.session,
                self.nurse,
                target.id,
                adverse_event_service.AdverseEventInput(
                    event_type=kind, grade=grade, occurred_on=target.planned_date
                ),
                self.today,
                after_record=suggestions.evaluation_hook(self.settings),
            ),
        )

    # --- admins and the scheduler ---------------------------------------------------------

    @rule(
        days_ahead=st.integers(0, 40),
        length=st.integers(1, 3),
        chair=st.none() | st.integers(0, 1),
        hours=st.none() | st.tuples(st.integers(8, 16), st.integers(1, 4)),
    )
    def admin_closes_a_center_or_a_chair(self, days_ahead, length, chair, hours):
        """Whole days of the center shift cycles; a chair or part of a day moves bookings."""
        first = self.today + dt.timedelta(days=days_ahead)
        self.attempt(
            "closure",
            lambda: centers.add_closure(
                self.session,
                self.admin,
                self.center.id,
                centers.ClosureInput(
                    first,
                    "fuzz",
                    closed_until=first + dt.timedelta(days=length - 1),
                    chair_id=None if chair is None else self.center.chairs[chair].id,
                    from_time=None if hours is None else dt.time(hours[0]),
                    until_time=None if hours is None else dt.time(hours[0] + hours[1]),
                ),
                self.settings,
            ),
        )

    @rule()
    def scheduler_rolls_the_horizon(self):
        self.steps += 1
        for pid in self.patients:
            with unit_of_work(self.session):
                scheduling.extend_horizon(self.session, pid, self.settings)

    @rule()
    def scheduler_evaluates_everyone(self):
        self.steps += 1
        suggestions.evaluate_everyone(self.session, self.settings)

    # --- what must always hold ------------------------------------------------------------

    @invariant()
    def the_schedule_matches_the_approved_therapy(self):
        for pid in self.patients:
            found = integrity_service.check_patient(self.session, pid, self.settings)
            assert found == [], "\n".join(v.message for v in found)

    @invariant()
    def the_suggestions_do_not_contradict(self):
        for pid in self.patients:
            kinds = list(
                self.session.scalars(
                    sa.select(Suggestion.kind).where(
                        Suggestion.patient_id == pid, Suggestion.status == "pending"
                    )
                )
            )
            assert len(kinds) == len(set(kinds)), f"two pending of one kind: {kinds}"
            assert not {"review_nonresponse", "deescalate_ivig"} <= set(kinds)


def test_no_sequence_of_clinic_actions_breaks_the_therapy_rules(engine, database_url):
    TherapyMachine.engine = engine
    TherapyMachine.settings = make_settings(database_url, scheduling={"horizon_months": 4})
    TherapyMachine.longest = TherapyMachine.examples = 0
    TherapyMachine.refusals = {}
    TherapyMachine.done = {}
    TherapyMachine.reasons = {}
    run = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        derandomize=not FUZZ,
        database=None if not FUZZ else settings.default.database,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(TherapyMachine, settings=run)
    print(
        f"\nstate machine: {TherapyMachine.examples} examples, longest sequence "
        f"{TherapyMachine.longest} steps\n  done {TherapyMachine.done}\n"
        f"  refused {TherapyMachine.refusals}\n  why {TherapyMachine.reasons}"
    )
    assert TherapyMachine.examples >= 1


@pytest.fixture(autouse=True)
def _restore_clock():
    yield
    clock.set_now(None)
