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


def test_a_physician_feed_is_the_physicians_own_and_an_admin_may_make_any():
    from app.policy import has_own_feed, may_subscribe

    assert may_subscribe(Role.PHYSICIAN, 7, "physician", 7)
    assert not may_subscribe(Role.PHYSICIAN, 7, "physician", 8)
    assert not may_subscribe(Role.NURSE, 7, "physician", 7)
    assert may_subscribe(Role.ADMIN, 1, "physician", 8)
    assert may_subscribe(Role.NURSE, 7, "center", 3)
    assert not may_subscribe(None, None, "center", 3)
    assert [has_own_feed(r) for r in (Role.PHYSICIAN, Role.NURSE, Role.ADMIN, None)] == [
        True,
        False,
        False,
        False,
    ]


def test_feeds_and_tokens_are_managed_by_their_owner_the_care_team_or_an_admin():
    from app.policy import may_manage_subscription, may_manage_token

    assert may_manage_subscription(Role.NURSE, 5, owner_id=5, scope="center")
    assert not may_manage_subscription(Role.NURSE, 5, owner_id=6, scope="center")
    assert may_manage_subscription(Role.PHYSICIAN, 5, owner_id=6, scope="patient")
    assert not may_manage_subscription(None, None, owner_id=None, scope="center")
    assert may_manage_subscription(Role.ADMIN, 1, owner_id=6, scope="chair")
    assert may_manage_token(Role.NURSE, 5, 5) and not may_manage_token(Role.NURSE, 5, 6)
    assert may_manage_token(Role.ADMIN, 1, 6)
