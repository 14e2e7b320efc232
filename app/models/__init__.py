"""SQLAlchemy models: tables only, one module per aggregate."""

from app.models import revisions  # noqa: F401  (registers the feed-revision hook)
from app.models.assessment import Assessment, Suggestion
from app.models.audit import AuditEvent, AuditLink
from app.models.cds import CdsTokenId
from app.models.center import Center, Chair, Closure, OpeningHours
from app.models.infusion import AdverseEvent, Infusion, InfusionAmendment, InfusionStatus
from app.models.notice import Notice, Reminder
from app.models.optimisation import ScheduleProposal
from app.models.patient import Patient, WeightMeasurement
from app.models.regimen import Regimen
from app.models.review import Authorisation, CourseReview
from app.models.subscription import Subscription
from app.models.system import (
    ContentRevision,
    IdempotentRequest,
    JobRun,
    RateWindow,
    SchedulerHeartbeat,
)
from app.models.taper import StepStatus, TaperPlan, TaperStep
from app.models.user import ApiToken, LoginSession, LoginThrottle, PasswordReset, Role, User
from app.models.visit import InfusionVial, LabResult, Premedication, RateStep, VitalSigns

__all__ = [
    "AdverseEvent",
    "ApiToken",
    "Assessment",
    "AuditEvent",
    "AuditLink",
    "Authorisation",
    "CdsTokenId",
    "Center",
    "Chair",
    "Closure",
    "ContentRevision",
    "CourseReview",
    "IdempotentRequest",
    "Infusion",
    "InfusionAmendment",
    "InfusionStatus",
    "InfusionVial",
    "JobRun",
    "LabResult",
    "LoginSession",
    "LoginThrottle",
    "Notice",
    "OpeningHours",
    "PasswordReset",
    "Patient",
    "Premedication",
    "RateStep",
    "RateWindow",
    "Regimen",
    "Reminder",
    "Role",
    "ScheduleProposal",
    "SchedulerHeartbeat",
    "StepStatus",
    "Subscription",
    "Suggestion",
    "TaperPlan",
    "TaperStep",
    "User",
    "VitalSigns",
    "WeightMeasurement",
]
