from app.models import Role
from app.policy import RULES, Action, can


def test_every_action_has_a_rule():
    assert set(RULES) == set(Action)


def test_only_admins_see_the_audit_trail_and_manage_users():
    for action in (Action.VIEW_AUDIT, Action.MANAGE_USERS):
        assert can(Role.ADMIN, action)
        assert not can(Role.NURSE, action)
        assert not can(Role.PHYSICIAN, action)


def test_unknown_or_missing_role_may_do_nothing():
    for action in Action:
        assert not can(None, action)
        assert not can("janitor", action)
