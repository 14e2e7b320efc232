"""Hardening: answers that were 500s or accepted nonsense now say what is wrong (issue 11)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.http import MAX_JSON_DEPTH, json_depth


@pytest.fixture
def physician(make_user, bearer):
    return bearer(make_user("physician"))


def taper_body(**changes: object) -> dict:
    body = {
        "drug": "prednisone",
        "start_mg": 60,
        "template": "banded",
        "starts_on": dt.date.today().isoformat(),
    }
    return body | changes


@pytest.mark.parametrize("start_mg", [5e-324, 2.2e-309, 1e-12])
def test_a_start_dose_too_small_for_any_tablet_is_422_not_500(client, physician, start_mg):
    response = client.post(
        "/api/v1/dosing/taper", headers=physician, json=taper_body(start_mg=start_mg)
    )
    assert response.status_code == 422, response.json
    assert response.json["error"]["field"] == "start_mg"


def test_a_custom_step_too_small_for_any_tablet_is_422(client, physician):
    steps = [
        {"mg_per_day": 10, "min_days": 14},
        {"mg_per_day": 2.2e-309, "min_days": 14},
        {"mg_per_day": 0, "min_days": 1},
    ]
    response = client.post(
        "/api/v1/dosing/taper",
        headers=physician,
        json=taper_body(start_mg=10, template="custom", steps=steps),
    )
    assert response.status_code == 422
    assert response.json["error"]["field"] == "steps[1].mg_per_day"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_nested_a_thousand_deep_is_refused_not_a_500(client, physician):
    for depth in (MAX_JSON_DEPTH + 1, 1000, 100_000):
        response = client.post(
            "/api/v1/dosing/taper",
            headers=physician | {"Content-Type": "application/json"},
            data=nested(depth),
        )
        assert response.status_code == 400, depth
        assert response.json["error"]["code"] == "bad_request"
        assert str(MAX_JSON_DEPTH) in response.json["error"]["message"]


def test_json_depth_skips_brackets_inside_strings():
    assert json_depth(b'{"a": "[[[[[[", "b": [1, {"c": "\\"]]"}]}') == 3
    assert json_depth(json.dumps({"x": [[[]]]}).encode()) == 4
    assert json_depth(b"") == 0


def test_a_list_or_null_body_is_refused_not_taken_as_empty(client, physician):
    for body in ("null", "[]", '"x"'):
        response = client.post(
            "/api/v1/tokens", headers=physician | {"Content-Type": "application/json"}, data=body
        )
        assert response.status_code == 400, body
        assert "must be an object" in response.json["error"]["message"]


def test_true_is_not_a_number_and_a_number_is_not_a_date(client, physician, make_user, bearer):
    from app.models import Center

    response = client.post(
        "/api/v1/dosing/ivig",
        headers=physician,
        json={
            "weight_kg": 100,
            "height_cm": 175,
            "sex": "male",
            "dose_g_per_kg": 2,
            "days_per_cycle": True,
            "weight_basis": "adjusted",
            "product": "Octagam 10%",
        },
    )
    assert response.status_code == 422 and response.json["error"]["field"] == "days_per_cycle"
    admin = bearer(make_user("admin"))
    for until in ("0.5", "1700000000"):
        response = client.get(f"/api/v1/audit?until={until}", headers=admin)
        assert response.status_code == 422, until
        assert response.json["error"]["field"] == "until"
    assert client.get("/api/v1/audit?until=2026-12-02T09:00:00Z", headers=admin).status_code == 200
    assert Center  # the models import (for the assessment test below)


def test_an_assessment_before_the_patient_was_born_is_422(
    client, db_session, settings, make_user, bearer
):
    from app.services.context import system_actor
    from tests.db.clinic_fixtures import make_center, make_patient

    patient = make_patient(db_session, system_actor("test"), make_center(db_session), settings)
    nurse = bearer(make_user("nurse"))
    response = client.post(
        f"/api/v1/patients/{patient.id}/assessments",
        headers=nurse,
        json={"assessed_on": "0001-01-01", "cdasi_activity": 20},
    )
    assert response.status_code == 422 and response.json["error"]["field"] == "assessed_on"


def test_local_times_are_documented_as_what_the_api_sends(client, physician, db_session):
    import re

    from tests.db.clinic_fixtures import make_center

    make_center(db_session)
    spec = client.get("/api/v1/openapi.json").get_data(as_text=True)
    assert '"format": "time"' not in spec  # JSON Schema's time format needs an offset
    schema = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    pattern = schema["CenterList.OpeningHoursOut"]["properties"]["opens_at"]["pattern"]
    centers = client.get("/api/v1/centers", headers=physician).json["centers"]
    sent = [h["opens_at"] for c in centers for h in c["opening_hours"]]
    assert sent and all(re.fullmatch(pattern, value) for value in sent)


def test_a_retry_with_the_same_idempotency_key_writes_once(
    client, db_session, settings, make_user, bearer
):
    import sqlalchemy as sa

    from app.models import Assessment
    from app.services.context import system_actor
    from tests.db.clinic_fixtures import make_center, make_patient

    patient = make_patient(db_session, system_actor("test"), make_center(db_session), settings)
    nurse = bearer(make_user("nurse"))
    url = f"/api/v1/patients/{patient.id}/assessments"
    body = {"assessed_on": "2026-11-30", "cdasi_activity": 22}
    keyed = nurse | {"Idempotency-Key": "tablet-7:assessment:41"}
    first = client.post(url, headers=keyed, json=body)
    again = client.post(url, headers=keyed, json=body)  # the answer was lost; the client retries
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert db_session.scalar(sa.select(sa.func.count(Assessment.id))) == 1
    other = client.post(url, headers=keyed, json=body | {"cdasi_activity": 23})
    assert other.status_code == 422 and other.json["error"]["field"] == "Idempotency-Key"
    assert client.post(url, headers=nurse, json=body).status_code == 201  # no key: a new row
    assert db_session.scalar(sa.select(sa.func.count(Assessment.id))) == 2
    # Another user's identical key is theirs, not this one.
    second_nurse = bearer(make_user("nurse")) | {"Idempotency-Key": "tablet-7:assessment:41"}
    assert "Idempotent-Replayed" not in client.post(url, headers=second_nurse, json=body).headers


def test_an_unsupported_method_is_405_with_allow_not_400(client):
    for method in ("PUT", "DELETE", "TRACE"):
        response = client.open("/healthz", method=method)
        assert response.status_code == 405, method
        assert "GET" in response.headers["Allow"]


def test_every_api_route_documents_the_4xx_it_answers(client):
    spec = client.get("/api/v1/openapi.json").json
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if "security" not in operation:
                continue  # public: the document and nothing else
            assert {"400", "401", "403", "404", "409", "422"} <= set(operation["responses"]), (
                method,
                path,
            )
