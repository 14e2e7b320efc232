"""Walk every route x every role: the policy module decides, and nothing is left unguarded."""

import re

import pytest

from app.auth import POLICY_ATTRIBUTE
from app.models import Role
from app.policy import can
from tests.conftest import login

PUBLIC_ENDPOINTS = {
    "static",
    "auth.login",
    "auth.logout",
    "healthz",
    "openapi.spec",
    "feeds.feed",  # the secret token in the URL is the credential
}


def protected_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method, getattr(view, POLICY_ATTRIBUTE, None)


def concrete_path(rule) -> str:
    return re.sub(r"<(?:[^:<>]+:)?[^<>]+>", "999999", rule.rule)


def test_every_route_is_public_by_name_or_guarded_by_the_policy(app):
    unguarded = [f"{m} {r.rule}" for r, m, action in protected_routes(app) if action is None]
    assert unguarded == []


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_role_matrix(app, make_user, bearer, role):
    user = make_user(role)
    web = app.test_client()
    login(web, user.email)
    with web.session_transaction() as sess:
        csrf = sess["csrf"]
    headers = bearer(user)
    checked = 0
    for rule, method, action in protected_routes(app):
        path = concrete_path(rule)
        if path.startswith("/api/"):
            response = app.test_client().open(path, method=method, headers=headers, json={})
        else:
            response = web.open(path, method=method, data={"csrf_token": csrf})
        allowed = can(role, action)
        where = f"{role} {method} {path} ({action})"
        if allowed:
            assert response.status_code not in (401, 403), where
        else:
            assert response.status_code == 403, where
        checked += 1
    assert checked >= 10


def test_anonymous_gets_401_on_the_api_and_the_login_page_on_the_web(app):
    client = app.test_client()
    for rule, method, _action in protected_routes(app):
        path = concrete_path(rule)
        response = client.open(path, method=method)
        if path.startswith("/api/"):
            assert response.status_code == 401, path
            assert response.json["error"]["code"] == "unauthenticated"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        elif method == "GET":
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith("/login?next=")
        else:
            assert response.status_code == 400, path  # no CSRF token, refused before anything
