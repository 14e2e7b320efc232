"""The audit hash chain: written with every audited transaction, and any tampering shows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app import create_app
from app.models import AuditEvent, AuditLink
from app.services import audit
from app.services import users as user_service
from app.services.context import system_actor
from app.services.errors import InvalidInput
from tests.conftest import make_settings


def test_each_commit_links_its_audit_rows_in_order(db_session, make_user):
    for _ in range(3):
        make_user()
    links = db_session.execute(sa.select(AuditLink.seq, AuditLink.event_id)).all()
    events = db_session.scalars(sa.select(AuditEvent.id).order_by(AuditEvent.id)).all()
    assert [seq for seq, _ in links] == list(range(1, len(events) + 1))
    assert [event for _, event in links] == events
    assert audit.verify_chain(db_session) is None


def test_a_rolled_back_transaction_leaves_no_link(db_session, make_user):
    make_user()
    before = db_session.scalar(sa.select(sa.func.count()).select_from(AuditLink))
    with pytest.raises(InvalidInput):  # refused: not an e-mail address
        user_service.create_user(
            db_session,
            system_actor("test"),
            email="bad",
            full_name="x",
            role="nurse",
            password="long-enough-password",
            settings=make_settings("sqlite://").auth,
        )
    assert db_session.scalar(sa.select(sa.func.count()).select_from(AuditLink)) == before
    assert audit.verify_chain(db_session) is None


def _tamper(conn: sa.Connection, sql: str) -> None:
    """What an owner or superuser could do: switch the append-only guard off, then write."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET session_replication_role = replica"))
        conn.execute(sa.text(sql))
        conn.execute(sa.text("SET session_replication_role = origin"))
    else:
        triggers = conn.execute(
            sa.text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'audit%'"
            )
        ).all()
        for name, _sql in triggers:
            conn.execute(sa.text(f"DROP TRIGGER {name}"))
        conn.execute(sa.text(sql))
        for _name, create in triggers:
            conn.execute(sa.text(create))


def test_verify_names_the_first_broken_link(databases):
    url = databases.create()
    app = create_app(make_settings(url))
    state = app.extensions["ivig"]
    session = state.session_factory()
    for n in range(4):
        user_service.create_user(
            session,
            system_actor("test"),
            email=f"user{n}@test.clinic",
            full_name=f"User {n}",
            role="nurse",
            password="long-enough-password",
            settings=state.settings.auth,
        )
    runner = app.test_cli_runner()
    holds = runner.invoke(args=["audit", "verify"])
    assert holds.exit_code == 0 and "audit chain holds: 4 links" in holds.output
    third = session.scalars(sa.select(AuditEvent.id).order_by(AuditEvent.id)).all()[2]
    session.close()

    with state.engine.begin() as conn:  # a changed event
        _tamper(conn, f"UPDATE audit_events SET actor_label = 'someone else' WHERE id = {third}")  # noqa: S608
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert f"link 3, event {third}: the event or the link before it was changed" in broken.output

    with state.engine.begin() as conn:  # a slipped-in event (and the changed one put back)
        _tamper(conn, f"UPDATE audit_events SET actor_label = 'system:test' WHERE id = {third}")  # noqa: S608
        conn.execute(
            sa.text(
                "INSERT INTO audit_events (occurred_at, actor_label, action, entity_type) "
                "VALUES ('2020-01-01 00:00:00', 'ghost', 'user.create', 'user')"
            )
        )
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1 and "an event was added outside the chain" in broken.output

    with state.engine.begin() as conn:  # a removed link and its event
        _tamper(conn, "DELETE FROM audit_events WHERE actor_label = 'ghost'")
        _tamper(conn, "DELETE FROM audit_chain WHERE seq = 2")
        _tamper(conn, "DELETE FROM audit_events WHERE id = (SELECT min(id) + 1 FROM audit_events)")
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1 and "link 2 is missing" in broken.output
    state.engine.dispose()
