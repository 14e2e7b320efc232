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
    USE_CALCULATOR = "dosing.calculate"
    MANAGE_PATIENTS = "patients.manage"
    SET_REGIMEN = "regimen.set"
    RECORD_INFUSION = "infusion.record"
    MANAGE_CENTERS = "centers.manage"
    APPROVE_TAPER = "taper.approve"
    MANAGE_FEEDS = "feeds.manage"
    RECORD_ASSESSMENT = "assessment.record"
    DECIDE_SUGGESTION = "suggestion.decide"
    SIMULATE_RULES = "rules.simulate"
    OVERRIDE_RULE = "integrity.override"
    RESOLVE_ADVERSE_EVENT = "adverse_event.resolve"
    AMEND_INFUSION = "infusion.amend"
    REVIEW_COURSE = "course.review"
    CHANGE_OWN_PASSWORD = "password.change_own"  # noqa: S105 (an action name)
    #: Read a patient's whole record as FHIR (GET /fhir/Patient/<id>/$everything).
    EXPORT_RECORD = "record.export"
    #: The clinic's reports: the stewardship ledger of every patient, and the rule outcomes.
    VIEW_REPORTS = "reports.view"


_ALL_STAFF = frozenset(Role)

RULES: dict[Action, frozenset[Role]] = {
    Action.VIEW_SCHEDULE: _ALL_STAFF,
    Action.VIEW_PATIENTS: _ALL_STAFF,
    Action.MANAGE_OWN_TOKENS: _ALL_STAFF,
    Action.CHANGE_OWN_PASSWORD: _ALL_STAFF,
    Action.MANAGE_USERS: frozenset({Role.ADMIN}),
    Action.VIEW_AUDIT: frozenset({Role.ADMIN}),
    Action.USE_CALCULATOR: _ALL_STAFF,
    Action.MANAGE_PATIENTS: frozenset({Role.NURSE, Role.PHYSICIAN}),
    Action.SET_REGIMEN: frozenset({Role.PHYSICIAN}),
    Action.RECORD_INFUSION: frozenset({Role.NURSE, Role.PHYSICIAN}),
    Action.MANAGE_CENTERS: frozenset({Role.ADMIN}),
    Action.APPROVE_TAPER: frozenset({Role.PHYSICIAN}),
    Action.MANAGE_FEEDS: _ALL_STAFF,
    Action.RECORD_ASSESSMENT: frozenset({Role.NURSE, Role.PHYSICIAN}),
    Action.DECIDE_SUGGESTION: frozenset({Role.PHYSICIAN}),
    Action.SIMULATE_RULES: frozenset({Role.ADMIN, Role.PHYSICIAN}),
    # Soft therapy-integrity rules (interval, shift window, consecutive days) yield only to a
    # physician's recorded reason; hard rules yield to no one.
    Action.OVERRIDE_RULE: frozenset({Role.PHYSICIAN}),
    Action.RESOLVE_ADVERSE_EVENT: frozenset({Role.PHYSICIAN}),
    Action.AMEND_INFUSION: frozenset({Role.NURSE, Role.PHYSICIAN}),
    # Course reviews and authorisations (DOMAIN.md: a physician's decision to go on).
    Action.REVIEW_COURSE: frozenset({Role.PHYSICIAN}),
    # The whole record as FHIR R4, for anyone on staff (each read leaves an audit row).
    Action.EXPORT_RECORD: _ALL_STAFF,
    # Clinic-wide figures (grams, cost, how each rule's suggestions fared) are for those who
    # run the service and tune its rules; a patient's own ledger is on the patient's pages.
    Action.VIEW_REPORTS: frozenset({Role.ADMIN, Role.PHYSICIAN}),
}


def can(role: str | None, action: Action) -> bool:
    """Return whether a user with this role may perform the action."""
    if role is None:
        return False
    try:
        return Role(role) in RULES[action]
    except ValueError:
        return False


# --- decisions about particular records ------------------------------------------------------


def may_subscribe(role: str | None, user_id: int | None, scope: str, scope_id: int) -> bool:
    """A physician's feed (their patients and approvals) is theirs; an admin may make any."""
    if not can(role, Action.MANAGE_FEEDS):
        return False
    return (
        scope != "physician"
        or role == Role.ADMIN
        or (role == Role.PHYSICIAN and user_id == scope_id)
    )


def has_own_feed(role: str | None) -> bool:
    """Whether the user has a feed of their own patients and approvals (physicians)."""
    return role == Role.PHYSICIAN


def may_manage_subscription(
    role: str | None, user_id: int | None, *, owner_id: int | None, scope: str
) -> bool:
    """Rotate or revoke a feed: one's own; a patient's feed for the care team; any, for an
    admin. Anything else is answered as if the feed did not exist."""
    return (
        role == Role.ADMIN
        or (user_id is not None and owner_id == user_id)
        or (scope == "patient" and role in (Role.NURSE, Role.PHYSICIAN))
    )


def may_manage_token(role: str | None, user_id: int | None, owner_id: int) -> bool:
    """Revoke an API token: one's own, or anyone's for an admin."""
    return role == Role.ADMIN or owner_id == user_id


def may_lock_out(user_id: int | None, target_id: int) -> bool:
    """Deactivate an account or take its admin role: never one's own (an admin who did so
    could not undo it)."""
    return user_id is None or user_id != target_id


# --- registered EHRs (the CDS Hooks service) ---------------------------------------------------

#: The role an EHR calling /cds-services acts with (`Actor(label="ehr:<issuer>", role=...)`).
#: It is no staff role, so `can` refuses it every staff action: it never approves anything.
EHR_CLIENT = "ehr_client"


class EhrAction(enum.StrEnum):
    #: Read the cards for a patient it matched by MRN.
    VIEW_CARDS = "cds.cards.view"
    #: Its clinician overrode a suggestion's card: recorded as the suggestion's rejection, with
    #: the reason given (rejecting changes no therapy; approving stays a physician's, here).
    RECORD_OVERRIDE = "cds.override.record"
    #: Its clinician accepted or overrode an order-sign card: recorded as a decided order-check
    #: suggestion (about the EHR's order; no regimen here changes).
    RECORD_ORDER_CHECK = "cds.order_check.record"
    #: Read a patient's whole record as FHIR R4 ($everything), by our id.
    READ_RECORD = "fhir.record.read"
    #: Send lab results as a FHIR transaction Bundle (POST /fhir): recorded like a lab typed in.
    IMPORT_LABS = "fhir.labs.import"


EHR_RULES: frozenset[EhrAction] = frozenset(EhrAction)


def ehr_may(role: str | None, action: EhrAction) -> bool:
    """Return whether an actor may do this as a registered EHR (staff may not: it is the EHR's
    path, and only the CDS Hooks service acts with this role)."""
    return role == EHR_CLIENT and action in EHR_RULES
