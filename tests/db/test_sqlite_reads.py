"""The SQLite quick start: a page that only reads does not queue behind another request's
write (issue 18). Always on a SQLite file of its own, whatever TEST_DB says: the locking it
checks is SQLite's (PostgreSQL takes no such lock)."""

from __future__ import annotations

import sqlite3

import pytest
from alembic import command

from app import create_app
from app.db import make_engine, make_session_factory
from app.services import users
from app.services.context import system_actor
from tests.conftest import PASSWORD, alembic_config, csrf_of, login, make_settings
from tests.db.clinic_fixtures import make_center


@pytest.fixture
def quick_start(tmp_path):
    """The app on a SQLite file, as `make run` serves it, with a center and a nurse."""
    path = tmp_path / "quick.sqlite3"
    url = f"sqlite:///{path}"
    command.upgrade(alembic_config(url), "head")
    settings = make_settings(url)
    engine = make_engine(url)
    session = make_session_factory(engine, settings)()
    center = make_center(session)
    nurse = users.create_user(
        session,
        system_actor("test"),
        email="nurse@quick.test",
        full_name="Nora Nurse",
        role="nurse",
        password=PASSWORD,
        settings=settings.auth,
    )
    session.commit()
    ids = center.id, nurse.email
    session.close()
    engine.dispose()
    app = create_app(settings)
    yield app, path, ids
    app.extensions["ivig"].engine.dispose()


def test_a_day_board_answers_while_another_request_holds_the_write_lock(quick_start) -> None:
    app, path, (center_id, email) = quick_start
    client = app.test_client()
    login(client, email)
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")  # a long write under way elsewhere
    try:
        board = client.get(f"/centers/{center_id}/day")
        week = client.get(f"/centers/{center_id}/week")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert board.status_code == 200
    assert week.status_code == 200
    # And a page that writes still writes, once the lock is free.
    assert client.post("/logout", data={"csrf_token": csrf_of(client)}).status_code == 302
