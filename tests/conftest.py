"""Fixtures: a throwaway database per run (SQLite or PostgreSQL by TEST_DB), migrated by Alembic.

Each test runs inside a transaction rolled back at teardown; services' commits become
savepoints. Tests that need committed data across connections use `fresh_database`.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so
from alembic import command
from alembic.config import Config

from app import clock, create_app
from app.config import Settings, load_settings
from app.db import make_engine, make_session_factory, recorded_statements
from app.models import User
from app.services import users as user_service
from app.services.context import system_actor

ROOT = Path(__file__).resolve().parent.parent
BACKEND = os.environ.get("TEST_DB", "sqlite")
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_SERVER_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
).replace("postgresql://", "postgresql+psycopg://", 1)
PASSWORD = "correct-horse-battery"


def pytest_report_header() -> str:
    return f"database backend: {BACKEND}"


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["configure_logger"] = False
    return cfg


class DatabaseFactory:
    """Creates migrated throwaway databases and drops them at the end of the run."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self.created: list[str] = []
        self._admin: sa.Engine | None = None
        if BACKEND == "postgresql":
            self._admin = sa.create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
            try:
                with self._admin.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
            except sa.exc.OperationalError as exc:
                message = f"PostgreSQL at {PG_SERVER_URL} is not reachable: {exc}"
                if IN_CI:
                    pytest.fail(message, pytrace=False)
                pytest.skip(message)
        elif BACKEND != "sqlite":
            pytest.fail(f"TEST_DB must be sqlite or postgresql, not {BACKEND!r}", pytrace=False)

    def create(self, migrate: bool = True) -> str:
        name = f"ivig_test_{uuid.uuid4().hex[:12]}"
        if self._admin is not None:
            with self._admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = self._admin.url.set(database=name).render_as_string(hide_password=False)
        else:
            url = f"sqlite:///{self.tmp_dir / name}.sqlite3"
        self.created.append(name)
        if migrate:
            command.upgrade(alembic_config(url), "head")
        return url

    def drop_all(self) -> None:
        if self._admin is None:
            return
        with self._admin.connect() as conn:
            for name in self.created:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def database_url(databases: DatabaseFactory) -> str:
    return databases.create()


#: On PostgreSQL the suite's main engine connects as the app's own role (README: "db
#: grant-app-role"), which may only add to the audit trail and owns nothing.
APP_ROLE = "ivig_app_test"


@pytest.fixture(scope="session")
def app_database_url(database_url: str) -> str:
    """The test database as the app connects to it: the owner on SQLite, the app role on PG."""
    if BACKEND != "postgresql":
        return database_url
    from app.db_roles import grant_app_role

    owner = make_engine(database_url)
    try:
        with owner.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(480179)"))  # parallel runs
            grant_app_role(conn, APP_ROLE)
    finally:
        owner.dispose()
    return sa.make_url(database_url).set(username=APP_ROLE).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def engine(app_database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(app_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def count_queries(connection: sa.Connection) -> Callable[[], ContextManager[list[str]]]:
    """`with count_queries() as statements:` collects the SQL the block sends (Indico-style)."""
    return lambda: recorded_statements(connection)


@pytest.fixture
def session_factory(connection: sa.Connection, settings: Settings) -> so.sessionmaker:
    return make_session_factory(connection, settings, join_transaction_mode="create_savepoint")


@pytest.fixture
def db_session(session_factory: so.sessionmaker) -> Iterator[so.Session]:
    session = session_factory()
    yield session
    session.close()


def make_settings(database_url: str, **sections: dict[str, object]) -> Settings:
    overrides: dict[str, dict[str, object]] = {
        "app": {"database_url": database_url},
        "auth": {"failed_login_delay_seconds": 0},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_settings(ROOT / "config.toml", overrides=overrides, environ={})


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def app(settings: Settings, session_factory: so.sessionmaker):
    app = create_app(settings, session_factory=session_factory)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def set_clock() -> Callable[[dt.datetime], None]:
    """`set_clock(instant)` fixes the app's and the scheduler's clock for the rest of the test."""
    return clock.set_now


@pytest.fixture(autouse=True)
def _system_clock() -> Iterator[None]:
    """Every test starts and ends on the system clock (tests may fix app.clock in between)."""
    clock.set_now(None)
    yield
    clock.set_now(None)


@pytest.fixture
def make_user(db_session: so.Session, settings: Settings) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def _make(role: str = "nurse", email: str | None = None, password: str = PASSWORD) -> User:
        email = email or f"{role}{next(counter)}@test.clinic"
        return user_service.create_user(
            db_session,
            system_actor("test"),
            email=email,
            full_name=f"Test {role.title()}",
            role=role,
            password=password,
            settings=settings.auth,
        )

    return _make


def login(client, email: str, password: str = PASSWORD):
    """Log in through the real form (fetching a CSRF token first)."""
    client.get("/login")
    with client.session_transaction() as sess:
        token = sess["csrf"]
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def csrf_of(client) -> str:
    with client.session_transaction() as sess:
        return sess["csrf"]


@pytest.fixture
def bearer(db_session: so.Session) -> Callable[[User], dict[str, str]]:
    def _headers(user: User) -> dict[str, str]:
        plain, _ = user_service.create_api_token(
            db_session, system_actor("test"), user=user, name="test", days=60
        )
        return {"Authorization": f"Bearer {plain}"}

    return _headers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class SmtpSink:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message it accepts."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.port = free_port()
        #: (envelope recipients, message) in the order they arrived.
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def section(self, **more: object) -> dict[str, object]:
        """The [smtp] settings that send to this sink."""
        return {
            "host": self.host,
            "port": self.port,
            "from_address": "IVIG Test Clinic <ivig@test.clinic>",
            "timeout_seconds": 5,
            **more,
        }


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """`smtp_sink.section()` is an [smtp] override; `smtp_sink.received` what arrived."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def quick(settings: Settings) -> Settings:
    """The settings with the optimiser on one worker and a short time limit (small centers
    solve to optimality well inside it)."""
    return settings.model_copy(
        update={
            "optimiser": settings.optimiser.model_copy(
                update={"time_limit_seconds": 10.0, "workers": 1}
            )
        }
    )
