"""The database keeps what the clinic relies on: UTC times, foreign keys, immutable audit rows."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.models import AuditEvent, Center, Patient
from app.services import audit
from app.services.context import system_actor


def test_datetimes_come_back_aware_in_utc(db_session):
    berlin = dt.datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    center = Center(name="Tz", timezone="Europe/Berlin", created_at=berlin)
    db_session.add(center)
    db_session.flush()
    db_session.expire_all()
    loaded = db_session.get(Center, center.id)
    assert loaded.created_at.tzinfo is not None
    assert loaded.created_at.utcoffset() == dt.timedelta(0)
    assert loaded.created_at == berlin


def test_naive_datetimes_are_refused(db_session):
    db_session.add(Center(name="Naive", timezone="UTC", created_at=dt.datetime(2026, 1, 1)))
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        db_session.flush()


def test_foreign_keys_are_enforced(db_session):
    db_session.add(
        Patient(
            mrn="FK-1",
            family_name="X",
            given_name="Y",
            sex="female",
            birth_date=dt.date(1980, 1, 1),
            home_center_id=999_999,
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        db_session.flush()


def test_check_constraints_guard_clinical_invariants(db_session):
    db_session.add(Center(name="C", timezone="UTC"))
    db_session.flush()
    db_session.add(
        Patient(
            mrn="CK-1",
            family_name="X",
            given_name="Y",
            sex="unknown",
            birth_date=dt.date(1980, 1, 1),
            home_center_id=db_session.scalar(sa.select(Center.id).where(Center.name == "C")),
        )
    )
    with pytest.raises(sa.exc.IntegrityError, match=r"(?i)ck_patients_sex_known|CHECK"):
        db_session.flush()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'tampered'",
        "DELETE FROM audit_events",
    ],
)
def test_audit_rows_cannot_be_changed_or_deleted(db_session, statement):
    audit.record(db_session, system_actor("test"), "thing.do", "thing", 1, after={"a": 1})
    db_session.commit()
    # SQLite: the trigger refuses. PostgreSQL: the app's role has no such right, and the
    # owner's trigger would refuse it too.
    refused = "append-only" if db_session.get_bind().dialect.name == "sqlite" else "permission"
    with pytest.raises(sa.exc.DatabaseError, match=refused), db_session.begin_nested():
        db_session.execute(sa.text(statement))
    assert db_session.scalar(sa.select(AuditEvent.action)) == "thing.do"


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE audit_events DISABLE TRIGGER USER",
        "SET session_replication_role = replica",
        "TRUNCATE audit_chain",
        "UPDATE audit_chain SET hash = 'x'",
    ],
)
def test_the_app_cannot_switch_the_audit_guard_off(db_session, statement):
    # Hardening: the app used to connect as the owner, who may disable the trigger, or skip it.
    if db_session.get_bind().dialect.name == "sqlite":
        statement = {  # SQLite has no roles: its triggers are the guard
            "ALTER TABLE audit_events DISABLE TRIGGER USER": "DELETE FROM audit_events",
            "SET session_replication_role = replica": "DELETE FROM audit_chain",
            "TRUNCATE audit_chain": "DELETE FROM audit_chain",
        }.get(statement, statement)
    audit.record(db_session, system_actor("test"), "thing.do", "thing", 1)
    db_session.commit()
    with pytest.raises(sa.exc.DatabaseError), db_session.begin_nested():
        db_session.execute(sa.text(statement))
