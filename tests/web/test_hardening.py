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
