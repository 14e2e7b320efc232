"""Staff accounts over their life, on the real database: deactivation ends access at once,
roles change, lockouts clear, reset links work once, and the clinic keeps an admin."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from app.db import utcnow
from app.models import AuditEvent, Patient, User
from app.services import accounts as account_service
from app.services import patients as patient_service
from app.services import users as user_service
from app.services.context import Actor, system_actor
from app.services.errors import AuthenticationFailed, Conflict, Forbidden, InvalidInput
from tests.conftest import PASSWORD
from tests.db.clinic_fixtures import make_center, make_patient

NEW_PASSWORD = "a-new-password-9"


def actor_of(user: User) -> Actor:
    return Actor(label=user.email, user_id=user.id, role=user.role)


def log_in(db_session, settings, user: User, password: str = PASSWORD, address: str = "10.0.0.1"):
    return user_service.log_in(
        db_session, email=user.email, password=password, settings=settings.auth, address=address
    )


def actions(db_session) -> list[str]:
    return list(db_session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def test_deactivating_ends_sessions_and_tokens_at_once_and_reactivating_revives_neither(
    db_session, make_user, settings
):
    admin, nurse = make_user("admin"), make_user("nurse")
    browser = log_in(db_session, settings, nurse).session_secret
    token, _ = user_service.create_api_token(
        db_session, actor_of(nurse), user=nurse, name="t", days=30
    )
    assert user_service.resolve_login_session(db_session, browser, settings.auth) is not None

    account_service.set_active(db_session, actor_of(admin), nurse.id, active=False)
    assert user_service.resolve_login_session(db_session, browser, settings.auth) is None
    assert user_service.resolve_api_token(db_session, token) is None
    with pytest.raises(AuthenticationFailed):
        log_in(db_session, settings, nurse)

    account_service.set_active(db_session, actor_of(admin), nurse.id, active=True)
    assert user_service.resolve_login_session(db_session, browser, settings.auth) is None
    assert user_service.resolve_api_token(db_session, token) is None
    assert log_in(db_session, settings, nurse).user.id == nurse.id
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "user.deactivate")
    ).one()
    assert (
        event.after
        == {
            "active": False,
            "sessions_ended": 1,
            "tokens_revoked": 1,
        }
        and event.actor_user_id == admin.id
    )
    assert "user.activate" in actions(db_session)


def test_the_clinic_always_keeps_an_admin(db_session, make_user):
    admin = make_user("admin")
    with pytest.raises(Forbidden, match="your own account"):
        account_service.set_active(db_session, actor_of(admin), admin.id, active=False)
    with pytest.raises(Forbidden, match="admin role from yourself"):
        account_service.change_role(db_session, actor_of(admin), admin.id, "nurse")
    cli = system_actor("cli")
    with pytest.raises(Conflict, match="at least one active admin"):
        account_service.set_active(db_session, cli, admin.id, active=False)
    with pytest.raises(Conflict, match="at least one active admin"):
        account_service.change_role(db_session, cli, admin.id, "physician")
    second = make_user("admin")
    account_service.change_role(db_session, actor_of(second), admin.id, "physician")
    db_session.expire_all()
    assert db_session.get(User, admin.id).role == "physician"
    event = db_session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "user.role")).one()
    assert (event.before, event.after) == ({"role": "admin"}, {"role": "physician"})


def test_an_unknown_role_is_refused_by_name(db_session, make_user):
    admin, nurse = make_user("admin"), make_user("nurse")
    with pytest.raises(InvalidInput) as refused:
        account_service.change_role(db_session, actor_of(admin), nurse.id, "surgeon")
    assert refused.value.field == "role" and "surgeon" in refused.value.message


def test_unlocking_clears_the_lockout_from_every_address(db_session, make_user, settings):
    admin, nurse = make_user("admin"), make_user("nurse")
    for address in ("10.0.0.1", "10.0.0.2"):
        for _ in range(settings.auth.max_failed_logins):
            with pytest.raises(AuthenticationFailed):
                log_in(db_session, settings, nurse, "wrong password", address)
        with pytest.raises(AuthenticationFailed, match="locked"):
            log_in(db_session, settings, nurse, address=address)
    assert account_service.locked_ids(db_session, [admin, nurse]) == {nurse.id}
    account_service.unlock(db_session, actor_of(admin), nurse.id)
    assert account_service.locked_ids(db_session, [admin, nurse]) == set()
    for address in ("10.0.0.1", "10.0.0.2"):
        assert log_in(db_session, settings, nurse, address=address).user.id == nurse.id
    event = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "user.unlock")
    ).one()
    assert event.after == {"counters": 2}


def test_a_reset_link_works_once_and_ends_every_session(db_session, make_user, settings):
    admin, nurse = make_user("admin"), make_user("nurse")
    browser = log_in(db_session, settings, nurse).session_secret
    older, _ = account_service.create_reset_link(
        db_session, actor_of(admin), nurse.id, settings.auth
    )
    plain, reset = account_service.create_reset_link(
        db_session, actor_of(admin), nurse.id, settings.auth
    )
    assert reset.expires_at - utcnow() <= dt.timedelta(hours=settings.auth.password_reset_hours)
    assert plain not in reset.token_hash
    with pytest.raises(AuthenticationFailed, match="used, replaced or has expired"):
        account_service.reset_link_user(db_session, older)  # the newer one replaced it
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        account_service.use_reset_link(db_session, plain, "short", settings.auth)
    assert account_service.reset_link_user(db_session, plain).id == nurse.id  # still usable

    account_service.use_reset_link(db_session, plain, NEW_PASSWORD, settings.auth)
    assert user_service.resolve_login_session(db_session, browser, settings.auth) is None
    with pytest.raises(AuthenticationFailed):
        log_in(db_session, settings, nurse)
    assert log_in(db_session, settings, nurse, NEW_PASSWORD).user.id == nurse.id
    with pytest.raises(AuthenticationFailed):
        account_service.use_reset_link(db_session, plain, "another-password-1", settings.auth)
    assert actions(db_session).count("user.password_reset") == 1


def test_an_expired_or_deactivated_reset_link_is_refused(db_session, make_user, settings):
    admin, nurse = make_user("admin"), make_user("nurse")
    plain, reset = account_service.create_reset_link(
        db_session, actor_of(admin), nurse.id, settings.auth
    )
    with pytest.raises(AuthenticationFailed):
        account_service.reset_link_user(db_session, plain, now=reset.expires_at)
    account_service.set_active(db_session, actor_of(admin), nurse.id, active=False)
    with pytest.raises(AuthenticationFailed):
        account_service.reset_link_user(db_session, plain)
    with pytest.raises(Conflict, match="reactivate"):
        account_service.create_reset_link(db_session, actor_of(admin), nurse.id, settings.auth)


def test_changing_ones_password_needs_the_current_one_and_ends_other_sessions(
    db_session, make_user, settings
):
    nurse = make_user("nurse")
    here = log_in(db_session, settings, nurse).session_secret
    elsewhere = log_in(db_session, settings, nurse, address="10.0.0.9").session_secret
    with pytest.raises(InvalidInput) as refused:
        account_service.change_own_password(
            db_session, actor_of(nurse), "not it", NEW_PASSWORD, settings.auth, here
        )
    assert refused.value.field == "current_password"
    with pytest.raises(InvalidInput, match="other than the current"):
        account_service.change_own_password(
            db_session, actor_of(nurse), PASSWORD, PASSWORD, settings.auth, here
        )
    account_service.change_own_password(
        db_session, actor_of(nurse), PASSWORD, NEW_PASSWORD, settings.auth, here
    )
    assert user_service.resolve_login_session(db_session, here, settings.auth) is not None
    assert user_service.resolve_login_session(db_session, elsewhere, settings.auth) is None
    assert log_in(db_session, settings, nurse, NEW_PASSWORD).user.id == nurse.id


def test_the_responsible_physician_changes_audited_and_only_to_a_physician(
    db_session, make_user, settings
):
    nurse, first, second = make_user("nurse"), make_user("physician"), make_user("physician")
    patient = make_patient(db_session, actor_of(nurse), make_center(db_session), settings)
    patient_service.update_patient(
        db_session,
        actor_of(nurse),
        patient.id,
        patient_service.PatientChanges(treating_physician_id=first.id),
        settings,
    )
    patient_service.update_patient(
        db_session,
        actor_of(nurse),
        patient.id,
        patient_service.PatientChanges(treating_physician_id=second.id),
        settings,
    )
    db_session.expire_all()
    assert db_session.get(Patient, patient.id).treating_physician_id == second.id
    last = db_session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.action == "patient.update")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).one()
    assert last.before["treating_physician_id"] == first.id
    assert last.after["treating_physician_id"] == second.id
    for wrong in (nurse.id, 999_999):
        with pytest.raises(InvalidInput) as refused:
            patient_service.update_patient(
                db_session,
                actor_of(nurse),
                patient.id,
                patient_service.PatientChanges(treating_physician_id=wrong),
                settings,
            )
        assert refused.value.field == "treating_physician_id"
