"""Login, logout, CSRF and the session cookie, through real HTTP."""

import sqlalchemy as sa

from app import create_app
from app.models import AuditEvent
from tests.conftest import PASSWORD, csrf_of, login, make_settings


def test_nurse_logs_in_and_sees_the_landing_page(client, make_user):
    nurse = make_user("nurse")
    response = login(client, nurse.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Today" in page and nurse.full_name in page
    assert "Audit trail" not in page  # navigation follows the role


def test_wrong_password_gets_a_clear_message_and_no_session(client, make_user):
    nurse = make_user("nurse")
    response = login(client, nurse.email, "not-the-password")
    assert response.status_code == 401
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_lockout_message_after_too_many_failures(client, make_user, settings):
    nurse = make_user("nurse")
    for _ in range(settings.auth.max_failed_logins):
        login(client, nurse.email, "wrong")
    response = login(client, nurse.email, PASSWORD)
    assert response.status_code == 401
    assert "locked" in response.get_data(as_text=True)


def test_login_redirects_back_to_a_local_page_only(client, make_user):
    nurse = make_user("nurse")
    client.get("/login")
    token = csrf_of(client)
    data = {"email": nurse.email, "password": PASSWORD, "csrf_token": token}
    response = client.post("/login?next=//evil.example/x", data=data)
    assert response.headers["Location"] == "/"
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    client.get("/login")
    data["csrf_token"] = csrf_of(client)
    response = client.post("/login?next=/patients", data=data)
    assert response.headers["Location"] == "/patients"


def test_forms_without_the_csrf_token_are_refused(client, make_user, db_session):
    nurse = make_user("nurse")
    client.get("/login")
    response = client.post("/login", data={"email": nurse.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True)
    assert not db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "user.login")
    ).all()


def test_logout_ends_the_session_even_for_a_copied_cookie(client, app, make_user):
    nurse = make_user("nurse")
    login(client, nurse.email)
    cookie = client.get_cookie("ivig_session")
    assert cookie is not None
    response = client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 302
    thief = app.test_client()
    thief.set_cookie("ivig_session", cookie.value)
    assert thief.get("/").status_code == 302


def test_session_cookie_flags(client, make_user):
    nurse = make_user("nurse")
    response = login(client, nurse.email)
    header = next(h for h in response.headers.getlist("Set-Cookie") if "ivig_session" in h)
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert "Secure" not in header


def test_production_cookie_is_secure(database_url, session_factory, make_user):
    settings = make_settings(
        database_url,
        app={"mode": "production", "secret_key": "k" * 40},
        feeds={"public_base_url": "https://ivig.example.org"},
    )
    app = create_app(settings, session_factory=session_factory)
    client = app.test_client()
    nurse = make_user("nurse")
    response = login(client, nurse.email)
    header = next(h for h in response.headers.getlist("Set-Cookie") if "ivig_session" in h)
    assert "Secure" in header
    # Production pages also ask browsers to keep to https.
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_pages_carry_security_headers(client):
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Request-ID"]
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert "Strict-Transport-Security" not in response.headers  # not in development (http)


def test_unknown_page_is_a_friendly_404_without_a_trace(client, make_user):
    login(client, make_user("nurse").email)
    response = client.get("/no/such/page")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "nothing at this address" in body and "Traceback" not in body
