"""Two physicians approve the same suggestion at once: exactly one applies, the other gets 409."""

import threading

import sqlalchemy as sa

from app import create_app
from app.clock import clinic_today as local_today
from app.models import AuditEvent, Patient, Regimen, Suggestion
from app.services import assessments, demo, suggestions
from app.services.context import system_actor
from tests.conftest import make_settings


def test_parallel_approvals_apply_once(databases):
    url = databases.create()
    app = create_app(make_settings(url))
    state = app.extensions["ivig"]
    session = state.session_factory()
    demo.load_demo_data(session, state.settings)
    patient = session.scalar(sa.select(Patient).where(Patient.mrn == "DEMO-0005"))
    today = local_today(patient.home_center.timezone)
    assessments.record_assessment(
        session,
        system_actor("test"),
        patient.id,
        assessments.AssessmentInput(assessed_on=today, scores={"cdasi_activity": 29}),
        today,
        after_record=suggestions.evaluation_hook(state.settings),
    )
    suggestion_id = session.scalar(sa.select(Suggestion.id).where(Suggestion.status == "pending"))
    session.close()
    runner = app.test_cli_runner()
    token = runner.invoke(args=["tokens", "create", "--email", "physician@demo.clinic"]).output
    headers = {"Authorization": f"Bearer {token.strip().splitlines()[-1]}"}
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def approve() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            f"/api/v1/suggestions/{suggestion_id}/approve", json={}, headers=headers
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=approve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    session = state.session_factory()
    versions = session.scalar(
        sa.select(sa.func.count(Regimen.id)).where(Regimen.patient_id == patient.id)
    )
    approvals = session.scalar(
        sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "suggestion.approve")
    )
    session.close()
    state.engine.dispose()
    assert sorted(statuses) == [200, 409]
    assert versions == 2 and approvals == 1
