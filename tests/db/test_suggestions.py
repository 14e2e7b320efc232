"""Assessments become suggestions; an approval changes the regimen and re-plans in one unit."""

import datetime as dt
import html

import pytest
import sqlalchemy as sa

from app import clock
from app.models import AuditEvent, Infusion, InfusionStatus, Regimen, Suggestion
from app.services import adverse_events as adverse_event_service
from app.services import assessments, suggestions
from app.services import regimens as regimen_service
from app.services.errors import Conflict, InvalidInput
from tests.db.clinic_fixtures import Clinic, at, give, make_center, make_patient, regimen_input

START = dt.date(2026, 3, 2)  # a Monday, months before "today" (2026-11-24)


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    center = make_center(db_session)
    physician, nurse = make_user("physician"), make_user("nurse")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    holder.patient = make_patient(db_session, holder.nursing, center, settings)
    regimen_service.set_regimen(
        db_session,
        holder.doctor,
        holder.patient.id,
        regimen_input(starts_on=START),
        settings,
        now=at(START - dt.timedelta(days=3)),
    )
    return holder


def give_until(db_session, clinic, settings, until):
    for infusion in db_session.scalars(
        sa.select(Infusion)
        .where(
            Infusion.patient_id == clinic.patient.id,
            Infusion.planned_date <= until,
            Infusion.status == InfusionStatus.SCHEDULED,
        )
        .order_by(Infusion.planned_date)
    ).all():
        give(db_session, clinic.nursing, infusion, settings)


def assess(db_session, clinic, settings, day, activity):
    return assessments.record_assessment(
        db_session,
        clinic.nursing,
        clinic.patient.id,
        assessments.AssessmentInput(assessed_on=day, scores={"cdasi_activity": activity}),
        day,
        after_record=suggestions.evaluation_hook(settings),
    )


def pending(db_session, patient_id):
    return list(
        db_session.scalars(
            sa.select(Suggestion).where(
                Suggestion.patient_id == patient_id, Suggestion.status == "pending"
            )
        )
    )


def test_a_responder_gets_one_deescalation_that_approval_applies(db_session, clinic, settings):
    assess(db_session, clinic, settings, START - dt.timedelta(days=1), 40)  # baseline
    give_until(db_session, clinic, settings, START + dt.timedelta(weeks=16))
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=8), 30)
    assert pending(db_session, clinic.patient.id) == []  # under 12 weeks on the regimen
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=12), 29)
    (first,) = pending(db_session, clinic.patient.id)
    assert first.kind == "deescalate_ivig"
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=16), 28)
    (suggestion,) = pending(db_session, clinic.patient.id)  # the newer one supersedes
    db_session.refresh(first)
    assert first.status == "superseded" and suggestion.id != first.id
    assert suggestion.proposal["change"] == "dose" and suggestion.proposal["to"] == 1.5
    assert len(suggestion.summary) < 140 and suggestion.detail
    # Evaluating again on the same evidence makes no second suggestion.
    suggestions.evaluate_patient(
        db_session, clinic.patient.id, settings, START + dt.timedelta(weeks=16)
    )
    db_session.commit()
    assert len(pending(db_session, clinic.patient.id)) == 1
    with pytest.raises(InvalidInput):
        suggestions.approve(
            db_session, clinic.doctor, suggestion.id, settings, value=1.0
        )  # no reason
    approved = suggestions.approve(db_session, clinic.doctor, suggestion.id, settings)
    assert approved.status == "approved" and approved.applied_regimen_id is not None
    current = regimen_service.current_regimen(db_session, clinic.patient.id)
    assert (current.version, current.dose_g_per_kg) == (2, 1.5)
    future = db_session.scalars(
        sa.select(Infusion).where(
            Infusion.patient_id == clinic.patient.id,
            Infusion.status == InfusionStatus.SCHEDULED,
            # Cycles still to begin: one begun today (the real date) finishes on its version.
            Infusion.cycle_planned_on >= dt.date.today() + dt.timedelta(days=1),
        )
    ).all()
    assert future and all(i.regimen_id == current.id for i in future)
    with pytest.raises(Conflict):
        suggestions.approve(db_session, clinic.doctor, suggestion.id, settings)
    actions = set(db_session.scalars(sa.select(AuditEvent.action)))
    assert {"suggestion.create", "suggestion.approve", "regimen.set"} <= actions


def test_a_non_responder_is_flagged_for_review_and_rejection_sticks(db_session, clinic, settings):
    assess(db_session, clinic, settings, START - dt.timedelta(days=1), 40)
    give_until(db_session, clinic, settings, START + dt.timedelta(weeks=9))
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=9), 38)
    (suggestion,) = pending(db_session, clinic.patient.id)
    assert suggestion.kind == "review_nonresponse" and suggestion.indicator == "warning"
    with pytest.raises(InvalidInput):
        suggestions.reject(db_session, clinic.doctor, suggestion.id, " ")
    suggestions.reject(db_session, clinic.doctor, suggestion.id, "Skin improving clinically; wait")
    suggestions.evaluate_patient(
        db_session, clinic.patient.id, settings, START + dt.timedelta(weeks=9)
    )
    db_session.commit()
    assert pending(db_session, clinic.patient.id) == []  # not repeated without new evidence
    assert db_session.scalar(sa.select(sa.func.count(Regimen.id))) == 1  # therapy unchanged


def test_a_cycle_missed_altogether_is_not_counted_as_given(db_session, clinic, settings):
    """Two cycles given and the third missed on both days: the rules see two cycles, too few
    to judge a response (the non-response review waits for three)."""
    from app.services import infusions

    assess(db_session, clinic, settings, START - dt.timedelta(days=1), 40)
    give_until(db_session, clinic, settings, START + dt.timedelta(weeks=5))
    third = db_session.scalars(
        sa.select(Infusion).where(
            Infusion.patient_id == clinic.patient.id, Infusion.cycle_number == 3
        )
    ).all()
    assert len(third) == 2
    for infusion in third:
        infusions.set_status(
            db_session, clinic.nursing, infusion.id, InfusionStatus.MISSED, "patient unwell"
        )
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=9), 38)
    assert pending(db_session, clinic.patient.id) == []
    record = suggestions.load_record(
        db_session, clinic.patient.id, settings, START + dt.timedelta(weeks=9)
    )
    assert record.day_ones_given == [START, START + dt.timedelta(weeks=4)]


def test_a_serious_adverse_event_holds_ivig_and_blocks_deescalation(db_session, clinic, settings):
    assess(db_session, clinic, settings, START - dt.timedelta(days=1), 40)
    give_until(db_session, clinic, settings, START + dt.timedelta(weeks=16))
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=8), 30)
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=12), 29)
    given = db_session.scalars(
        sa.select(Infusion).where(Infusion.status == InfusionStatus.GIVEN)
    ).first()
    adverse_event_service.record_adverse_event(
        db_session,
        clinic.nursing,
        given.id,
        adverse_event_service.AdverseEventInput(
            event_type="thrombosis", grade=3, occurred_on=START + dt.timedelta(weeks=15)
        ),
        START + dt.timedelta(weeks=15),
    )
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=16), 28)
    kinds = {s.kind: s for s in pending(db_session, clinic.patient.id)}
    assert set(kinds) == {"safety_hold"} and kinds["safety_hold"].indicator == "critical"
    suggestions.approve(db_session, clinic.doctor, kinds["safety_hold"].id, settings)
    assert not db_session.scalars(
        sa.select(Infusion).where(
            Infusion.patient_id == clinic.patient.id,
            Infusion.status == InfusionStatus.SCHEDULED,
            Infusion.planned_date > dt.date.today() + dt.timedelta(days=1),
        )
    ).all()


def test_simulation_replays_a_rule_file_without_saving(app, db_session, clinic, settings, tmp_path):
    assess(db_session, clinic, settings, START - dt.timedelta(days=1), 40)
    give_until(db_session, clinic, settings, START + dt.timedelta(weeks=9))
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=9), 38)
    before = db_session.scalar(sa.select(sa.func.count(Suggestion.id)))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["rules", "simulate", "--patient", str(clinic.patient.id)])
    assert result.exit_code == 0, result.output
    assert "non_response_review" in result.output and "nothing was saved" in result.output
    stricter = suggestions.DEFAULT_RULES.read_text().replace(
        "cycles_given >= 3", "cycles_given >= 30"
    )
    path = tmp_path / "rules.toml"
    path.write_text(stricter)
    result = runner.invoke(args=["rules", "simulate", "--rules", str(path)])
    assert result.exit_code == 0 and "non_response_review" not in result.output
    path.write_text(stricter.replace("cycles_given >= 30", "cycles_givn >= 30"))
    result = runner.invoke(args=["rules", "simulate", "--rules", str(path)])
    assert (
        result.exit_code != 0
        and "non_response_review" in result.output
        and "cycles_givn" in result.output
    )
    assert db_session.scalar(sa.select(sa.func.count(Suggestion.id))) == before


def test_nightly_evaluation_loads_in_bulk_and_repeats_nothing(
    db_session, count_queries, clinic, settings
):
    assess(db_session, clinic, settings, START - dt.timedelta(days=1), 40)
    give_until(db_session, clinic, settings, START + dt.timedelta(weeks=9))
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=9), 38)
    assert suggestions.evaluate_everyone(db_session, settings, START + dt.timedelta(weeks=9)) == 0
    others = [
        make_patient(db_session, clinic.nursing, clinic.center, settings, mrn=f"Q-{n}").id
        for n in range(6)
    ]
    with count_queries() as statements:
        suggestions.load_records(db_session, others[:2], settings, START)
    with count_queries() as more:
        suggestions.load_records(db_session, [clinic.patient.id, *others], settings, START)
    assert 0 < len(more) <= len(statements)  # the number of queries does not grow with patients


def test_the_simulation_page_replays_and_refuses_a_bad_file(
    app, client, db_session, clinic, settings, make_user
):
    from tests.conftest import csrf_of, login

    assess(db_session, clinic, settings, START - dt.timedelta(days=1), 40)
    give_until(db_session, clinic, settings, START + dt.timedelta(weeks=9))
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=9), 38)
    login(client, make_user("admin").email)
    page = client.post(
        "/admin/rules", data={"csrf_token": csrf_of(client), "patients": clinic.patient.mrn}
    )
    assert page.status_code == 200 and "non_response_review" in page.get_data(as_text=True)
    assert f"For 1 patient(s): {clinic.patient.display_name}" in page.get_data(as_text=True)
    # Clinic setup: a name that matches nobody said nothing and ran for everyone.
    nobody = client.post("/admin/rules", data={"csrf_token": csrf_of(client), "patients": "Zed"})
    assert nobody.status_code == 422
    assert "no patient's name or MRN matches 'Zed'" in html.unescape(nobody.get_data(as_text=True))
    assert 'data-testid="simulate-count"' not in nobody.get_data(as_text=True)
    bad = suggestions.DEFAULT_RULES.read_text().replace("cycles_given >= 3", "cycles_givn >= 3")
    page = client.post("/admin/rules", data={"csrf_token": csrf_of(client), "rules": bad})
    assert page.status_code == 422 and "cycles_givn" in page.get_data(as_text=True)


def test_a_flare_after_deescalation_returns_to_the_controlled_regimen(db_session, clinic, settings):
    from app.services import tapers

    assess(db_session, clinic, settings, START - dt.timedelta(days=1), 40)
    give_until(db_session, clinic, settings, START + dt.timedelta(weeks=16))
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=8), 30)
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=12), 20)
    (deescalation,) = pending(db_session, clinic.patient.id)
    assert deescalation.kind == "deescalate_ivig"
    suggestions.approve(db_session, clinic.doctor, deescalation.id, settings)
    lowered = regimen_service.current_regimen(db_session, clinic.patient.id)
    assert (lowered.version, lowered.dose_g_per_kg) == (2, 1.5)
    effective = max(clock.clinic_today("America/New_York"), lowered.starts_on)
    tapers.create_plan(
        db_session,
        clinic.doctor,
        clinic.patient.id,
        tapers.PlanInput(
            drug="prednisone",
            start_mg=20,
            template="banded",
            starts_on=effective,
            start_days=90,
            reason="DM",
        ),
        settings,
        effective,
    )
    flare_day = effective + dt.timedelta(weeks=6)
    assess(db_session, clinic, settings, flare_day, 31)  # 11 points above the nadir of 20
    kinds = {s.kind: s for s in pending(db_session, clinic.patient.id)}
    assert "flare_return" in kinds and kinds["flare_return"].proposal["to_version"] == 1
    view = tapers.patient_taper(db_session, clinic.patient.id, settings, flare_day)
    assert view.next is not None and view.next.status == "held"  # held at once, no approval needed
    suggestions.approve(db_session, clinic.doctor, kinds["flare_return"].id, settings)
    back = regimen_service.current_regimen(db_session, clinic.patient.id)
    assert (back.version, back.dose_g_per_kg) == (3, 2.0)


def test_a_long_remission_at_the_lowest_regimen_is_reviewed_for_stopping(
    db_session, make_user, settings
):
    center = make_center(db_session, "Remission Center")
    physician, nurse = make_user("physician"), make_user("nurse")
    holder = Clinic(center=center, physician=physician, nurse=nurse, patient=None)  # type: ignore[arg-type]
    holder.patient = make_patient(db_session, holder.nursing, center, settings, mrn="REM-1")
    regimen_service.set_regimen(
        db_session,
        holder.doctor,
        holder.patient.id,
        regimen_input(starts_on=START, dose_g_per_kg=1.0, days_per_cycle=1, interval_weeks=8),
        settings,
        now=at(START - dt.timedelta(days=3)),
    )
    assess(db_session, holder, settings, START - dt.timedelta(days=1), 40)
    give_until(db_session, holder, settings, START + dt.timedelta(weeks=36))
    for week in (8, 16, 24, 32):
        assess(db_session, holder, settings, START + dt.timedelta(weeks=week), 10)
        assert "discontinuation_review" not in {
            s.kind for s in pending(db_session, holder.patient.id)
        }
    assess(
        db_session, holder, settings, START + dt.timedelta(weeks=36), 9
    )  # > 6 months in remission
    kinds = {s.kind for s in pending(db_session, holder.patient.id)}
    assert "discontinuation_review" in kinds and "deescalate_ivig" not in kinds


def test_approving_is_previewed_and_a_stale_preview_is_refused(db_session, clinic, settings):
    # Clinic setup: a physician approved a therapy change with one click and no preview.
    from app.services.previews import PreviewChanged

    assess(db_session, clinic, settings, START - dt.timedelta(days=1), 40)
    give_until(db_session, clinic, settings, START + dt.timedelta(weeks=16))
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=8), 30)
    assess(db_session, clinic, settings, START + dt.timedelta(weeks=12), 29)
    (suggestion,) = pending(db_session, clinic.patient.id)
    decision = suggestions.Decision()
    before = db_session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    summary, preview = suggestions.preview_approval(
        db_session, clinic.doctor, suggestion.id, settings, decision
    )
    assert (summary["old"]["dose_g_per_kg"], summary["new"]["dose_g_per_kg"]) == (2.0, 1.5)
    assert summary["new"]["grams_per_day"] == 62
    assert preview.counts["dose"] > 0 and preview.counts["moved"] == 0
    db_session.expire_all()
    assert db_session.get(Suggestion, suggestion.id).status == "pending"  # nothing kept
    assert regimen_service.current_regimen(db_session, clinic.patient.id).version == 1
    assert db_session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == before

    with pytest.raises(PreviewChanged) as stale:
        suggestions.approve(db_session, clinic.doctor, suggestion.id, settings, fingerprint="x")
    assert stale.value.preview.fingerprint == preview.fingerprint
    assert db_session.get(Suggestion, suggestion.id).status == "pending"
    approved = suggestions.approve(
        db_session, clinic.doctor, suggestion.id, settings, fingerprint=preview.fingerprint
    )
    assert approved.status == "approved"
