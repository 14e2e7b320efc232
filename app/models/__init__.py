"""SQLAlchemy models: tables only, one module per aggregate."""

from app.models.audit import AuditEvent
from app.models.center import Center, Chair, OpeningHours
from app.models.patient import Patient
from app.models.system import SchedulerHeartbeat
from app.models.user import ApiToken, LoginSession, Role, User

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Center",
    "Chair",
    "LoginSession",
    "OpeningHours",
    "Patient",
    "Role",
    "SchedulerHeartbeat",
    "User",
]
