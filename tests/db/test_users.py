"""Accounts, lockout and tokens, against the real database."""

import datetime as dt

import pytest
import sqlalchemy as sa

from app.db import utcnow
from app.models import ApiToken, AuditEvent, User
from app.services import users as user_service
from app.services.context import Actor, system_actor
from app.services.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from tests.conftest import PASSWORD


def audit_actions(session) -> list[str]:
    return list(session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def test_create_user_hashes_the_password_and_audits(db_session, make_user):
    user = make_user("physician", email="  Dr.Who@Test.Clinic ")
    assert user.email == "dr.who@test.clinic"
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    event = db_session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.create"))
    assert event.entity_id == str(user.id)
    assert event.after["role"] == "physician"
    assert "password" not in str(event.after)


@pytest.mark.parametrize(
    ("field", "kwargs", "text"),
    [
        ("email", {"email": "not-an-email"}, "email"),
        ("role", {"role": "surgeon"}, "nurse, physician, admin"),
        ("password", {"password": "short"}, "at least 10"),
        ("full_name", {"full_name": "  "}, "name"),
    ],
)
def test_bad_user_input_names_the_field_and_writes_nothing(
    db_session, settings, field, kwargs, text
):
    values = {
        "email": "ok@test.clinic",
        "full_name": "Okay",
        "role": "nurse",
        "password": PASSWORD,
    } | kwargs
    with pytest.raises(InvalidInput) as excinfo:
        user_service.create_user(db_session, system_actor("t"), settings=settings.auth, **values)
    assert excinfo.value.field == field
    assert text in excinfo.value.message
    assert db_session.scalar(sa.select(sa.func.count(User.id))) == 0
    assert audit_actions(db_session) == []


def test_duplicate_email_is_a_conflict_and_leaves_one_row(db_session, make_user):
    make_user(email="same@test.clinic")
    with pytest.raises(Conflict) as excinfo:
        make_user(email="SAME@test.clinic")
    assert excinfo.value.field == "email"
    assert db_session.scalar(sa.select(sa.func.count(User.id))) == 1
    assert audit_actions(db_session) == ["user.create"]


def test_login_locks_after_repeated_failures_and_unlocks_later(db_session, make_user, settings):
    user = make_user()
    auth = settings.auth
    start = utcnow()
    for _ in range(auth.max_failed_logins):
        with pytest.raises(AuthenticationFailed, match="Wrong email or password"):
            user_service.log_in(
                db_session, email=user.email, password="wrong", settings=auth, now=start
            )
    with pytest.raises(AuthenticationFailed, match="locked"):
        user_service.log_in(
            db_session, email=user.email, password=PASSWORD, settings=auth, now=start
        )
    later = start + dt.timedelta(minutes=auth.lockout_minutes, seconds=1)
    result = user_service.log_in(
        db_session, email=user.email, password=PASSWORD, settings=auth, now=later
    )
    assert result.user.id == user.id
    assert result.user.failed_logins == 0
    actions = audit_actions(db_session)
    assert actions.count("user.login_failed") == auth.max_failed_logins - 1
    assert "user.locked" in actions and "user.login_refused_locked" in actions
    assert actions[-1] == "user.login"


def test_unknown_email_fails_like_a_wrong_password(db_session, settings):
    with pytest.raises(AuthenticationFailed, match="Wrong email or password"):
        user_service.log_in(
            db_session, email="ghost@test.clinic", password="x", settings=settings.auth
        )


def test_an_unknown_email_is_paused_like_a_real_one_so_accounts_cannot_be_enumerated(
    db_session, make_user, settings
):
    real = make_user()
    auth = settings.auth
    answers = {}
    for email in (real.email, "ghost@test.clinic"):
        messages = []
        for _ in range(auth.max_failed_logins + 1):
            with pytest.raises(AuthenticationFailed) as excinfo:
                user_service.log_in(
                    db_session, email=email, password="wrong", settings=auth, address="10.0.0.9"
                )
            messages.append(excinfo.value.message)
        answers[email] = messages
    assert answers[real.email] == answers["ghost@test.clinic"]
    assert "locked" in answers[real.email][-1]


def test_failures_from_one_place_do_not_lock_the_nurse_out_elsewhere(
    db_session, make_user, settings
):
    nurse = make_user()
    auth = settings.auth
    for _ in range(auth.max_failed_logins):
        with pytest.raises(AuthenticationFailed):
            user_service.log_in(
                db_session,
                email=nurse.email,
                password="guess",
                settings=auth,
                address="203.0.113.7",
            )
    with pytest.raises(AuthenticationFailed, match="locked"):  # the guesser is locked out
        user_service.log_in(
            db_session, email=nurse.email, password=PASSWORD, settings=auth, address="203.0.113.7"
        )
    result = user_service.log_in(  # the nurse, at her own terminal, logs in
        db_session, email=nurse.email, password=PASSWORD, settings=auth, address="10.1.2.3"
    )
    assert result.user.id == nurse.id


def test_one_address_guessing_many_accounts_is_paused(db_session, make_user, settings):
    auth = settings.auth.model_copy(update={"max_failed_logins_per_address": 6})
    victims = [make_user().email for _ in range(3)]
    for email in victims:
        for _ in range(2):
            with pytest.raises(AuthenticationFailed, match="Wrong"):
                user_service.log_in(
                    db_session, email=email, password="x", settings=auth, address="198.51.100.1"
                )
    with pytest.raises(AuthenticationFailed, match="locked"):
        user_service.log_in(
            db_session,
            email=make_user().email,
            password=PASSWORD,
            settings=auth,
            address="198.51.100.1",
        )


def test_login_session_ends_at_logout_and_after_idle_time(db_session, make_user, settings):
    user = make_user()
    result = user_service.log_in(
        db_session, email=user.email, password=PASSWORD, settings=settings.auth
    )
    secret = result.session_secret
    assert user_service.resolve_login_session(db_session, secret, settings.auth).id == user.id
    idle = utcnow() + dt.timedelta(minutes=settings.auth.session_idle_minutes + 1)
    assert user_service.resolve_login_session(db_session, secret, settings.auth, now=idle) is None
    user_service.log_out(db_session, secret)
    assert user_service.resolve_login_session(db_session, secret, settings.auth) is None


def test_tokens_are_stored_as_hashes_and_can_be_revoked(db_session, make_user):
    user = make_user()
    plain, token = user_service.create_api_token(
        db_session, system_actor("t"), user=user, name="ehr", days=30
    )
    stored = db_session.scalars(sa.select(ApiToken.token_hash)).all()
    assert plain not in stored and len(stored[0]) == 64
    assert user_service.resolve_api_token(db_session, plain).id == user.id
    assert user_service.resolve_api_token(db_session, plain + "x") is None
    actor = Actor(label=user.email, user_id=user.id, role=user.role)
    user_service.revoke_api_token(db_session, actor, token.id)
    assert user_service.resolve_api_token(db_session, plain) is None


def test_expired_tokens_do_not_authenticate(db_session, make_user):
    user = make_user()
    plain, _token = user_service.create_api_token(
        db_session, system_actor("t"), user=user, name="short", days=1
    )
    tomorrow = utcnow() + dt.timedelta(days=1, seconds=1)
    assert user_service.resolve_api_token(db_session, plain, now=tomorrow) is None


def test_a_nurse_cannot_revoke_someone_elses_token(db_session, make_user):
    owner, other = make_user(), make_user()
    _, token = user_service.create_api_token(
        db_session, system_actor("t"), user=owner, name="mine", days=1
    )
    with pytest.raises(NotFound):
        user_service.revoke_api_token(
            db_session, Actor(label=other.email, user_id=other.id, role=other.role), token.id
        )
    assert db_session.get(ApiToken, token.id).revoked_at is None
