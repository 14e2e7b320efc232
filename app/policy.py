"""The one place that answers "may this role do this?"."""

from __future__ import annotations

import enum

from app.models.user import Role


class Action(enum.StrEnum):
    VIEW_SCHEDULE = "schedule.view"
    VIEW_PATIENTS = "patients.view"
    MANAGE_OWN_TOKENS = "tokens.manage_own"
    MANAGE_USERS = "users.manage"
    VIEW_AUDIT = "audit.view"


_ALL_STAFF = frozenset(Role)

RULES: dict[Action, frozenset[Role]] = {
    Action.VIEW_SCHEDULE: _ALL_STAFF,
    Action.VIEW_PATIENTS: _ALL_STAFF,
    Action.MANAGE_OWN_TOKENS: _ALL_STAFF,
    Action.MANAGE_USERS: frozenset({Role.ADMIN}),
    Action.VIEW_AUDIT: frozenset({Role.ADMIN}),
}


def can(role: str | None, action: Action) -> bool:
    """Return whether a user with this role may perform the action."""
    if role is None:
        return False
    try:
        return Role(role) in RULES[action]
    except ValueError:
        return False
