"""Health check, the admin audit page, and the CLI."""

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import create_app
from app.db import make_engine
from app.models import AuditEvent, User
from app.services import users as user_service
from tests.conftest import login, make_settings


def test_healthz_reports_ok_and_the_backend(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert response.json["database"] in ("sqlite", "postgresql")


def test_healthz_is_503_when_the_database_does_not_answer(database_url):
    dead = make_engine(
        "postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    app = create_app(make_settings(database_url), session_factory=so.sessionmaker(bind=dead))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert "Traceback" not in response.get_data(as_text=True)


def test_admin_filters_the_audit_trail(client, make_user):
    admin = make_user("admin")
    make_user("physician", email="doc@test.clinic")
    login(client, admin.email)
    page = client.get("/admin/audit", query_string={"action": "user.login"}).get_data(as_text=True)
    assert page.count('data-testid="audit-row"') == 1
    page = client.get("/admin/audit", query_string={"actor": "system:test"}).get_data(as_text=True)
    assert page.count('data-testid="audit-row"') == 2
    assert "doc@test.clinic" in page


def test_nurse_cannot_open_the_audit_trail(client, make_user):
    login(client, make_user("nurse").email)
    response = client.get("/admin/audit")
    assert response.status_code == 403
    assert "role does not allow" in response.get_data(as_text=True)


def test_admin_creates_a_user_in_the_browser_form(client, make_user, db_session):
    admin = make_user("admin")
    login(client, admin.email)
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    form = {"csrf_token": csrf, "full_name": "Nia", "email": "nia@test.clinic", "role": "nurse"}
    response = client.post("/admin/users", data=form | {"password": "short"})
    assert response.status_code == 422
    assert "at least 10 characters" in response.get_data(as_text=True)
    response = client.post("/admin/users", data=form | {"password": "long-enough-pw"})
    assert response.status_code == 302
    assert db_session.scalar(sa.select(User.role).where(User.email == "nia@test.clinic")) == "nurse"


def test_cli_creates_a_user_and_a_token_that_works(app, client, db_session):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "cli@test.clinic",
            "--name",
            "Cli Nurse",
            "--role",
            "nurse",
            "--password",
            "cli-password-1",
        ]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["tokens", "create", "--email", "cli@test.clinic"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.json["email"] == "cli@test.clinic"
    assert (
        db_session.scalar(
            sa.select(AuditEvent.actor_label).where(AuditEvent.action == "api_token.create")
        )
        == "system:cli"
    )


def test_cli_reports_bad_input_without_a_trace(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["tokens", "create", "--email", "ghost@test.clinic"])
    assert result.exit_code != 0
    assert "no user with ghost@test.clinic" in result.output
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "a@b.co",
            "--name",
            "A",
            "--role",
            "nurse",
            "--password",
            "x",
        ]
    )
    assert result.exit_code != 0 and "at least 10" in result.output


def test_demo_data_loads_twice_without_duplicates(app, db_session):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "load"])
    second = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0 and second.exit_code == 0
    assert "nurse@demo.clinic" in first.output
    assert db_session.scalar(sa.select(sa.func.count(User.id))) == 3
    user_service.get_user_by_email(db_session, "nurse@demo.clinic")
