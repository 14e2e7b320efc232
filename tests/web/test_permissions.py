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
    "auth.reset",  # the one-time token in the URL is the credential
    "healthz",
    "openapi.spec",
    "feeds.feed",  # the secret token in the URL is the credential
    # CDS Hooks (tests/web/test_cds_hooks.py): discovery is open; the calls and their feedback
    # take a JWT signed by a registered EHR (app/cds/auth.py), never a staff login or token.
    "cds.discovery",
    "cds.call",
    "cds.feedback",
}


#: What an allowed role gets from each route, called with an unknown id (999999), an empty
#: JSON body on the API and only a CSRF token on the pages: the answer a user would see.
#: A page's queue actions go back to the queue with a message (302); the API names the
#: missing field (422) or the unknown record (404). Nothing here may be a 5xx.
ALLOWED_STATUS = {
    # The visit at the chair (pages: the unknown infusion is looked up first).
    ("GET", "/infusions/<int:infusion_id>/visit"): 404,
    ("GET", "/infusions/<int:infusion_id>/visit/record"): 404,
    ("POST", "/infusions/<int:infusion_id>/visit/check-in"): 404,
    ("POST", "/infusions/<int:infusion_id>/visit/check"): 404,
    ("POST", "/infusions/<int:infusion_id>/visit/approve-dose"): 404,
    ("POST", "/infusions/<int:infusion_id>/visit/premedication"): 404,
    ("POST", "/infusions/<int:infusion_id>/visit/start"): 404,
    ("POST", "/infusions/<int:infusion_id>/visit/rate-step"): 404,
    ("POST", "/infusions/<int:infusion_id>/visit/vitals"): 404,
    ("POST", "/infusions/<int:infusion_id>/visit/reaction"): 404,
    ("POST", "/infusions/<int:infusion_id>/visit/complete"): 404,
    ("GET", "/api/v1/infusions/<int:infusion_id>/visit"): 404,
    ("POST", "/api/v1/infusions/<int:infusion_id>/check-in"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/check"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/approve-dose"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/start"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/premedications"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/rate-steps"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/vitals"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/reactions"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/complete"): 422,
    ("GET", "/"): 200,
    ("GET", "/account/feeds"): 200,
    ("POST", "/account/feeds"): 422,
    ("POST", "/account/feeds/<int:subscription_id>/revoke"): 302,
    ("POST", "/account/feeds/<int:subscription_id>/rotate"): 302,
    ("GET", "/account/tokens"): 200,
    ("POST", "/account/tokens"): 200,
    ("POST", "/account/tokens/<int:token_id>/revoke"): 404,
    ("GET", "/account/password"): 200,
    ("POST", "/account/password"): 422,
    ("GET", "/admin/audit"): 200,
    ("GET", "/admin/audit.csv"): 200,
    ("GET", "/admin/centers"): 200,
    ("GET", "/admin/centers/new"): 200,
    ("POST", "/admin/centers/new"): 422,
    ("GET", "/admin/centers/<int:center_id>"): 404,
    ("POST", "/admin/centers/<int:center_id>"): 404,
    ("POST", "/admin/centers/<int:center_id>/chairs"): 404,
    ("POST", "/admin/centers/<int:center_id>/closures"): 404,
    ("POST", "/admin/centers/<int:center_id>/closures/preview"): 404,
    ("POST", "/admin/centers/<int:center_id>/chairs/<int:chair_id>"): 404,
    # Course reviews and authorisations; the e-mail a user receives.
    ("GET", "/api/v1/patients/<int:patient_id>/course-review"): 404,
    ("POST", "/api/v1/patients/<int:patient_id>/reviews"): 422,
    ("POST", "/api/v1/patients/<int:patient_id>/authorisations"): 422,
    ("POST", "/patients/<int:patient_id>/reviews"): 404,
    ("POST", "/patients/<int:patient_id>/authorisations"): 404,
    ("GET", "/account/mail"): 200,
    ("POST", "/account/mail"): 302,
    ("GET", "/admin/jobs"): 200,
    ("POST", "/admin/jobs/<name>/run"): 404,  # no job named 999999
    ("GET", "/admin/rules"): 200,
    ("POST", "/admin/rules"): 200,
    ("GET", "/admin/users"): 200,
    ("POST", "/admin/users"): 422,
    ("POST", "/admin/users/<int:user_id>/activate"): 404,
    ("POST", "/admin/users/<int:user_id>/deactivate"): 404,
    ("POST", "/admin/users/<int:user_id>/role"): 422,
    ("POST", "/admin/users/<int:user_id>/unlock"): 404,
    ("POST", "/admin/users/<int:user_id>/home-center"): 404,
    ("POST", "/admin/users/<int:user_id>/reset-link"): 404,
    # No mail server in the default config.toml: refused before the id is looked up.
    ("POST", "/admin/users/<int:user_id>/reset-link/email"): 409,
    ("POST", "/api/v1/adverse-events/<int:event_id>/resolve"): 422,
    ("GET", "/api/v1/audit"): 200,
    ("GET", "/api/v1/centers"): 200,
    ("POST", "/api/v1/centers"): 422,
    ("GET", "/api/v1/centers/<int:center_id>"): 404,
    ("PUT", "/api/v1/centers/<int:center_id>"): 422,
    ("POST", "/api/v1/centers/<int:center_id>/chairs"): 422,
    ("PUT", "/api/v1/chairs/<int:chair_id>"): 422,
    ("POST", "/api/v1/centers/<int:center_id>/closures"): 422,
    ("GET", "/api/v1/centers/<int:center_id>/closures"): 404,
    ("POST", "/api/v1/centers/<int:center_id>/closures/preview"): 422,
    ("GET", "/api/v1/centers/<int:center_id>/day/<day>"): 422,
    ("POST", "/api/v1/dosing/ivig"): 422,
    ("POST", "/api/v1/dosing/taper"): 422,
    ("GET", "/api/v1/infusions/<int:infusion_id>"): 404,
    ("POST", "/api/v1/infusions/<int:infusion_id>/adverse-events"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/amend"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/cancel"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/given"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/missed"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/reschedule"): 422,
    ("POST", "/api/v1/infusions/<int:infusion_id>/undo-cancel"): 404,
    ("GET", "/api/v1/me"): 200,
    ("POST", "/api/v1/me/password"): 422,
    ("POST", "/api/v1/users/<int:user_id>/activate"): 404,
    ("POST", "/api/v1/users/<int:user_id>/deactivate"): 404,
    ("PUT", "/api/v1/users/<int:user_id>/role"): 422,
    ("PUT", "/api/v1/users/<int:user_id>/home-center"): 422,
    ("POST", "/api/v1/users/<int:user_id>/reset-link"): 404,
    ("POST", "/api/v1/users/<int:user_id>/reset-link/email"): 409,
    ("POST", "/api/v1/users/<int:user_id>/unlock"): 404,
    ("GET", "/api/v1/lots/<lot>/recipients"): 200,  # an unknown lot: no one received it
    ("GET", "/api/v1/lots/<lot>/recipients.csv"): 200,
    ("GET", "/api/v1/patients"): 200,
    ("POST", "/api/v1/patients"): 422,
    ("GET", "/api/v1/patients/<int:patient_id>"): 404,
    ("PATCH", "/api/v1/patients/<int:patient_id>"): 404,
    ("GET", "/api/v1/patients/<int:patient_id>/adverse-events"): 404,
    ("GET", "/api/v1/patients/<int:patient_id>/assessments"): 404,
    ("POST", "/api/v1/patients/<int:patient_id>/assessments"): 422,
    ("GET", "/api/v1/patients/<int:patient_id>/infusions"): 404,
    ("GET", "/api/v1/patients/<int:patient_id>/labs"): 404,
    ("POST", "/api/v1/patients/<int:patient_id>/labs"): 422,
    ("GET", "/api/v1/patients/<int:patient_id>/regimens"): 404,
    ("POST", "/api/v1/patients/<int:patient_id>/regimens"): 422,
    ("POST", "/api/v1/patients/<int:patient_id>/regimens/preview"): 422,
    ("GET", "/api/v1/patients/<int:patient_id>/suggestions"): 404,
    ("GET", "/api/v1/patients/<int:patient_id>/taper"): 404,
    ("POST", "/api/v1/patients/<int:patient_id>/tapers"): 422,
    ("POST", "/api/v1/patients/<int:patient_id>/weights"): 422,
    ("GET", "/api/v1/subscriptions"): 200,
    ("POST", "/api/v1/subscriptions"): 422,
    ("POST", "/api/v1/subscriptions/<int:subscription_id>/revoke"): 404,
    ("POST", "/api/v1/subscriptions/<int:subscription_id>/rotate"): 404,
    ("GET", "/api/v1/suggestions"): 200,
    ("POST", "/api/v1/suggestions/<int:suggestion_id>/approve"): 404,
    ("POST", "/api/v1/suggestions/<int:suggestion_id>/preview"): 404,
    ("POST", "/api/v1/suggestions/<int:suggestion_id>/reject"): 422,
    ("POST", "/api/v1/taper-steps/<int:step_id>/approve"): 404,
    ("POST", "/api/v1/taper-steps/<int:step_id>/dose"): 422,
    ("POST", "/api/v1/taper-steps/<int:step_id>/hold"): 422,
    ("POST", "/api/v1/taper-steps/<int:step_id>/release"): 422,
    ("POST", "/api/v1/taper-steps/<int:step_id>/skip"): 422,
    ("GET", "/api/v1/taper-steps/due"): 200,
    ("GET", "/api/v1/tokens"): 200,
    ("POST", "/api/v1/tokens"): 201,
    ("DELETE", "/api/v1/tokens/<int:token_id>"): 404,
    ("GET", "/api/v1/users"): 200,
    ("POST", "/api/v1/users"): 422,
    ("GET", "/api/v1/worklist"): 200,
    ("POST", "/api/v1/worklist/<int:notice_id>/done"): 404,
    ("GET", "/approvals"): 200,
    ("GET", "/centers/<int:center_id>/day"): 404,
    ("GET", "/centers/<int:center_id>/placements"): 404,
    ("POST", "/centers/<int:center_id>/placements/<int:infusion_id>"): 404,
    ("GET", "/centers/<int:center_id>/optimise"): 404,
    ("GET", "/patients/<int:patient_id>/timeline"): 404,
    ("POST", "/centers/<int:center_id>/optimise"): 404,
    ("GET", "/centers/<int:center_id>/optimise/<int:proposal_id>"): 404,
    ("POST", "/centers/<int:center_id>/optimise/<int:proposal_id>/accept"): 404,
    ("POST", "/centers/<int:center_id>/optimise/<int:proposal_id>/discard"): 404,
    ("GET", "/centers/<int:center_id>/week"): 404,
    ("GET", "/dosing/ivig"): 200,
    ("POST", "/dosing/ivig"): 422,
    ("GET", "/infusions/<int:infusion_id>"): 404,
    ("GET", "/infusions/<int:infusion_id>.ics"): 404,
    ("POST", "/infusions/<int:infusion_id>/adverse-events"): 404,
    ("POST", "/infusions/<int:infusion_id>/amend"): 404,
    ("POST", "/infusions/<int:infusion_id>/cancel"): 404,
    ("POST", "/infusions/<int:infusion_id>/given"): 404,
    ("POST", "/infusions/<int:infusion_id>/missed"): 404,
    ("POST", "/infusions/<int:infusion_id>/reschedule"): 404,
    ("POST", "/infusions/<int:infusion_id>/undo-cancel"): 404,
    ("GET", "/patients"): 200,
    ("GET", "/patients/<int:patient_id>"): 404,
    ("POST", "/patients/<int:patient_id>/adverse-events/<int:event_id>/resolve"): 404,
    ("POST", "/patients/<int:patient_id>/assessments"): 404,
    ("POST", "/patients/<int:patient_id>/details"): 404,
    ("POST", "/patients/<int:patient_id>/labs"): 404,
    ("POST", "/patients/<int:patient_id>/regimens"): 404,
    ("POST", "/patients/<int:patient_id>/regimens/preview"): 404,
    ("GET", "/patients/<int:patient_id>/taper/print"): 404,
    ("GET", "/patients/<int:patient_id>/review-pack"): 404,
    ("GET", "/patients/<int:patient_id>/review-pack.csv"): 404,
    # The stewardship ledger and the rule outcomes (tests/web/test_stewardship.py).
    ("GET", "/patients/<int:patient_id>/stewardship"): 404,
    ("GET", "/reports/stewardship"): 200,
    ("GET", "/reports/stewardship.csv"): 200,
    ("GET", "/reports/rules"): 200,
    ("GET", "/reports/rules.csv"): 200,
    # The clinic reports (tests/web/test_clinic_report.py).
    ("GET", "/reports/clinic"): 200,
    ("GET", "/reports/clinic.csv"): 200,
    ("POST", "/patients/<int:patient_id>/tapers"): 404,
    ("POST", "/patients/<int:patient_id>/weights"): 404,
    ("GET", "/patients/new"): 200,
    ("GET", "/recalls"): 200,
    ("GET", "/recalls.csv"): 200,
    ("POST", "/patients/new"): 422,
    ("GET", "/suggestions"): 200,
    ("POST", "/suggestions/<int:suggestion_id>/approve"): 302,
    ("POST", "/suggestions/<int:suggestion_id>/preview"): 302,
    ("POST", "/suggestions/<int:suggestion_id>/reject"): 302,
    ("POST", "/taper-steps/<int:step_id>/approve"): 302,
    ("POST", "/taper-steps/<int:step_id>/dose"): 302,
    ("POST", "/taper-steps/<int:step_id>/dose/preview"): 302,
    ("POST", "/taper-steps/<int:step_id>/hold"): 302,
    ("POST", "/taper-steps/<int:step_id>/release"): 302,
    ("POST", "/taper-steps/<int:step_id>/skip"): 302,
    ("GET", "/worklist"): 200,
    ("POST", "/worklist/<int:notice_id>/done"): 302,
    # FHIR (tests/web/test_fhir.py): the unknown patient's OperationOutcome; a form post where
    # a Bundle is expected is a 415.
    ("GET", "/fhir/Patient/<int:patient_id>/$everything"): 404,
    ("POST", "/fhir"): 415,
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
    routes = {(m, r.rule) for r, m, _action in protected_routes(app)}
    assert routes == set(ALLOWED_STATUS), "a route was added or removed: say what it answers"


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
            assert response.status_code == ALLOWED_STATUS[(method, rule.rule)], where
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
        elif path.startswith("/fhir"):
            # FHIR clients get an OperationOutcome, not the login page (app/fhir).
            assert response.status_code == 401, path
            assert response.json["issue"][0]["code"] == "login"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        elif method == "GET":
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith("/login?next=")
        else:
            assert response.status_code == 400, path  # no CSRF token, refused before anything
