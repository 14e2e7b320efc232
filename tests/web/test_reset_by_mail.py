"""Password reset links by e-mail, against a real SMTP server on 127.0.0.1 (aiosmtpd): what
the admin sees, what arrives in the user's mailbox, and what is left when the server is down."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from app import create_app
from app.models import AuditEvent, PasswordReset
from app.services import accounts as account_service
from tests.conftest import PASSWORD, csrf_of, free_port, login, make_settings
from tests.web.test_care_pages import logged_in, text_of

NEW_PASSWORD = "a-new-password-9"
LINK = re.compile(r"http://localhost/reset/[A-Za-z0-9_-]+")


def post(client, path: str, **fields: str):
    return client.post(path, data={"csrf_token": csrf_of(client), **fields})


@pytest.fixture
def mail_app(database_url, session_factory, smtp_sink):
    """The app with [smtp] pointing at the sink."""
    app = create_app(
        make_settings(database_url, smtp=smtp_sink.section()), session_factory=session_factory
    )
    app.config["TESTING"] = True
    return app


@pytest.fixture
def down_app(database_url, session_factory):
    """The app with [smtp] pointing at a port nothing listens on."""
    section = {"host": "127.0.0.1", "port": free_port(), "from_address": "ivig@test.clinic"}
    app = create_app(make_settings(database_url, smtp=section), session_factory=session_factory)
    app.config["TESTING"] = True
    return app


def reset_rows(db_session, user_id: int) -> list[PasswordReset]:
    db_session.expire_all()
    return list(
        db_session.scalars(sa.select(PasswordReset).where(PasswordReset.user_id == user_id))
    )


def reset_audit(db_session, user_id: int) -> list[AuditEvent]:
    return list(
        db_session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.action == "user.reset_link", AuditEvent.entity_id == str(user_id)
            )
        )
    )


def test_the_emailed_link_arrives_at_the_users_address_and_works_once(
    mail_app, smtp_sink, make_user, db_session
):
    admin, nurse = make_user("admin"), make_user("nurse")
    page = logged_in(mail_app, admin)
    listing = text_of(page.get("/admin/users"))
    assert f'action="/admin/users/{nurse.id}/reset-link/email"' in listing
    assert "E-mail reset link" in listing

    sent = post(page, f"/admin/users/{nurse.id}/reset-link/email")
    assert sent.status_code == 302 and sent.headers["Location"] == "/admin/users"
    after = text_of(page.get("/admin/users"))
    assert f"A reset link was e-mailed to {nurse.email}; it works once, until" in after
    assert "/reset/" not in after  # the link went to the user only

    assert len(smtp_sink.received) == 1
    envelope_to, message = smtp_sink.received[0]
    assert envelope_to == [nurse.email]
    assert message["To"].addresses[0].addr_spec == nurse.email
    assert message["From"].addresses[0].addr_spec == "ivig@test.clinic"
    assert message["Subject"] == "IVIG Infusion Clinic: your password reset link"
    assert message.get_content_type() == "text/plain"
    body = message.get_content()
    flat = " ".join(body.split())
    assert f"Test Admin ({admin.email}) asked for a new password" in flat
    assert "The link works once, for 24 hours: until " in flat and " UTC on " in flat
    links = LINK.findall(body)
    assert len(links) == 1

    audit_rows = reset_audit(db_session, nurse.id)
    assert [row.after["emailed_to"] for row in audit_rows] == [nurse.email]
    assert audit_rows[0].actor_user_id == admin.id

    path = links[0].removeprefix("http://localhost")
    visitor = mail_app.test_client()
    form = visitor.get(path)
    assert form.status_code == 200 and nurse.email in text_of(form)
    done = post(visitor, path, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    assert login(mail_app.test_client(), nurse.email, PASSWORD).status_code == 401
    assert login(mail_app.test_client(), nurse.email, NEW_PASSWORD).status_code == 302

    again = mail_app.test_client()
    assert again.get(path).status_code == 410
    again.get("/login")  # a CSRF token for the form post
    reuse = post(again, path, password="yet-another-pass-1", confirm="yet-another-pass-1")
    assert reuse.status_code == 410 and "used, replaced or has expired" in text_of(reuse)


def test_a_mail_server_that_is_down_leaves_no_working_link(
    down_app, make_user, db_session, monkeypatch
):
    admin, nurse = make_user("admin"), make_user("nurse")
    page = logged_in(down_app, admin)
    handed = text_of(post(page, f"/admin/users/{nurse.id}/reset-link"))
    older = re.search(r'id="reset-url" readonly value="([^"]+)"', handed).group(1)
    before = [(row.id, row.ended_at) for row in reset_rows(db_session, nurse.id)]

    # Know the token the failed attempt makes, to try it afterwards.
    made = "token-of-the-e-mail-that-never-left-0123456789"
    monkeypatch.setattr(account_service, "secrets", SimpleNamespace(token_urlsafe=lambda _n: made))
    failed = post(page, f"/admin/users/{nurse.id}/reset-link/email")
    assert failed.status_code == 503
    message = text_of(failed)
    assert "cannot be reached (Connection refused)" in message
    assert f"The reset link for {nurse.email} was not sent and does not work" in message
    assert 'role="alert"' in message

    assert down_app.test_client().get(f"/reset/{made}").status_code == 410
    # Nothing half-written: no new link, the older one not ended, no audit row claiming a send.
    assert [(row.id, row.ended_at) for row in reset_rows(db_session, nurse.id)] == before
    assert [row.after.get("emailed_to") for row in reset_audit(db_session, nurse.id)] == [None]
    assert down_app.test_client().get(older.removeprefix("http://localhost")).status_code == 200


def test_without_smtp_the_page_offers_no_email(app, make_user, bearer):
    admin, nurse = make_user("admin"), make_user("nurse")
    page = logged_in(app, admin)
    listing = text_of(page.get("/admin/users"))
    assert "Reset link" in listing
    assert "E-mail reset link" not in listing and "reset-link/email" not in listing
    refused = post(page, f"/admin/users/{nurse.id}/reset-link/email")
    assert refused.status_code == 409 and "no mail server configured" in text_of(refused)
    api = app.test_client().post(
        f"/api/v1/users/{nurse.id}/reset-link/email", headers=bearer(admin)
    )
    assert api.status_code == 409 and api.json["error"]["code"] == "conflict"


def test_a_deactivated_account_gets_no_email(mail_app, smtp_sink, make_user):
    admin, nurse = make_user("admin"), make_user("nurse")
    page = logged_in(mail_app, admin)
    assert post(page, f"/admin/users/{nurse.id}/deactivate").status_code == 302
    refused = post(page, f"/admin/users/{nurse.id}/reset-link/email")
    assert refused.status_code == 409 and "reactivate the account" in text_of(refused)
    assert smtp_sink.received == []


def test_the_api_emails_the_link_and_does_not_show_it(mail_app, smtp_sink, make_user, bearer):
    admin, nurse = make_user("admin"), make_user("nurse")
    answer = mail_app.test_client().post(
        f"/api/v1/users/{nurse.id}/reset-link/email", headers=bearer(admin)
    )
    assert answer.status_code == 201
    assert set(answer.json) == {"sent_to", "expires_at"} and answer.json["sent_to"] == nurse.email
    (_to, message), *_ = smtp_sink.received
    (link,) = LINK.findall(message.get_content())
    assert mail_app.test_client().get(link.removeprefix("http://localhost")).status_code == 200


def test_the_api_answers_503_when_the_mail_server_is_down(down_app, make_user, bearer, db_session):
    admin, nurse = make_user("admin"), make_user("nurse")
    answer = down_app.test_client().post(
        f"/api/v1/users/{nurse.id}/reset-link/email", headers=bearer(admin)
    )
    assert answer.status_code == 503
    assert answer.json["error"]["code"] == "unavailable"
    assert "cannot be reached" in answer.json["error"]["message"]
    assert reset_rows(db_session, nurse.id) == []
    spec = down_app.test_client().get("/api/v1/openapi.json").json
    documented = spec["paths"]["/api/v1/users/{user_id}/reset-link/email"]["post"]["responses"]
    assert {"201", "401", "403", "404", "409", "503"} <= set(documented)
