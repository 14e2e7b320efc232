"""Pydantic models that validate API requests and document them in the OpenAPI file."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from app.models.assessment import SCORE_RANGES
from app.models.user import EMAIL_PATTERN, ROLE_VALUES

RoleName = Literal["nurse", "physician", "admin"]
#: A wall-clock time at a center, without an offset ("08:30:00"). JSON Schema's `time` format
#: demands an offset, so the document says what the API really sends and takes.
LocalTime = Annotated[
    dt.time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
            "description": "local wall-clock time at the center, HH:MM[:SS], no offset",
            "example": "08:30:00",
        }
    ),
]
assert set(ROLE_VALUES) == {"nurse", "physician", "admin"}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_values(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse what pydantic would quietly convert: true as 1, 0.5 as a Unix time."""
        if info.field_name is None:
            return value
        annotation = cls.model_fields[info.field_name].annotation
        kinds = {annotation, *get_args(annotation)}
        if isinstance(value, bool) and kinds & {int, float}:
            raise ValueError("give a number, not true or false")
        for kind, example in ((dt.datetime, "2026-12-02T09:00:00Z"), (dt.date, "2026-12-02")):
            if kind not in kinds or value is None or isinstance(value, dt.date):
                continue
            try:
                kind.fromisoformat(value)
            except (TypeError, ValueError):
                raise ValueError(f"give an ISO 8601 {kind.__name__}, e.g. {example}") from None
            break
        return value


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class UserOut(_Out):
    id: int
    email: str
    full_name: str
    role: RoleName
    active: bool


class UserList(BaseModel):
    users: list[UserOut]


class UserCreateIn(_In):
    email: str = Field(min_length=6, max_length=254, pattern=EMAIL_PATTERN)
    full_name: str = Field(min_length=1, max_length=120)
    role: RoleName
    password: str = Field(min_length=1, max_length=1024)


class TokenCreateIn(_In):
    name: str = Field("API token", min_length=1, max_length=100)
    #: Days until it expires; 0 = never; omitted = the clinic default.
    days: int | None = Field(None, ge=0, le=3650)


class TokenOut(_Out):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class TokenList(BaseModel):
    tokens: list[TokenOut]


class TokenCreatedOut(TokenOut):
    #: The bearer token itself; shown only in this answer.
    token: str


class OpeningHoursOut(_Out):
    weekday: int = Field(description="0 = Monday ... 6 = Sunday")
    opens_at: LocalTime
    closes_at: LocalTime


class ChairOut(_Out):
    id: int
    name: str
    active: bool


class CenterOut(_Out):
    id: int
    name: str
    timezone: str
    address: str | None
    opening_hours: list[OpeningHoursOut]
    chairs: list[ChairOut]


class CenterList(BaseModel):
    centers: list[CenterOut]


class PatientOut(_Out):
    id: int
    mrn: str
    family_name: str
    given_name: str
    sex: Literal["female", "male"]
    birth_date: dt.date
    home_center_id: int
    treating_physician_id: int | None


class PatientList(BaseModel):
    patients: list[PatientOut]


class PatientQuery(_In):
    q: str = Field("", max_length=100)


class AuditEventOut(_Out):
    id: int
    occurred_at: dt.datetime
    actor_user_id: int | None
    actor_label: str
    action: str
    entity_type: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None


class AuditQuery(_In):
    actor: str | None = Field(None, max_length=254)
    action: str | None = Field(None, max_length=80)
    entity_type: str | None = Field(None, max_length=60)
    entity_id: str | None = Field(None, max_length=60)
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    page: int = Field(1, ge=1, le=100_000)


class AuditPageOut(BaseModel):
    events: list[AuditEventOut]
    page: int
    pages: int
    total: int


WeightBasisName = Literal["actual", "ideal", "adjusted"]
SexName = Literal["female", "male"]


class DoseIn(_In):
    weight_kg: float = Field(gt=0, le=1000)
    height_cm: float = Field(gt=0, le=400)
    sex: SexName
    dose_g_per_kg: float = Field(gt=0, le=10, description="grams per kg per cycle")
    days_per_cycle: int = Field(ge=1, le=10)
    weight_basis: WeightBasisName = "adjusted"
    product: str = Field(min_length=1, max_length=60)
    interval_weeks: int | None = Field(None, ge=1, le=52)
    thrombosis_risk: bool = False
    renal_risk: bool = False


class ProblemOut(BaseModel):
    field: str
    message: str
    code: str


class RateStepOut(BaseModel):
    starts_at_minute: float
    minutes: float
    rate_ml_per_kg_min: float
    rate_ml_per_hour: float
    volume_ml: float


class VialOut(BaseModel):
    size_g: float
    count: int


class DoseOut(BaseModel):
    weight_basis: WeightBasisName
    ideal_body_weight_kg: float
    adjusted_body_weight_kg: float
    dosing_weight_kg: float
    grams_per_cycle: float
    grams_per_day: float
    rounded_grams_per_day: float
    rounded_grams_per_cycle: float
    vials_per_day: list[VialOut]
    vial_count_per_day: int
    deviation_percent: float
    waste_g_per_day: float
    within_tolerance: bool
    volume_ml_per_day: float
    rate_steps: list[RateStepOut]
    minutes_per_day: int
    max_rate_ml_per_kg_min: float
    soft_stops: list[ProblemOut]


class PatientCreateIn(_In):
    mrn: str = Field(min_length=1, max_length=40)
    family_name: str = Field(min_length=1, max_length=100)
    given_name: str = Field(min_length=1, max_length=100)
    sex: SexName
    birth_date: dt.date
    home_center_id: int
    height_cm: float | None = Field(None, gt=0, le=400)
    weight_kg: float | None = Field(None, gt=0, le=1000)
    dm_subtype: Literal["classic", "amyopathic", "juvenile"] = "classic"
    treating_physician_id: int | None = None
    thrombosis_risk: bool = False
    renal_risk: bool = False


class WeightIn(_In):
    weight_kg: float = Field(gt=0, le=1000)
    measured_on: dt.date | None = None


class WeightOut(_Out):
    id: int
    measured_on: dt.date
    weight_kg: float


class RegimenIn(_In):
    product: str = Field(min_length=1, max_length=60)
    dose_g_per_kg: float = Field(gt=0, le=10)
    days_per_cycle: int = Field(ge=1, le=10)
    interval_weeks: int = Field(ge=1, le=52)
    weight_basis: WeightBasisName | None = None
    starts_on: dt.date
    preferred_weekday: int | None = Field(None, ge=0, le=6)
    preferred_time: LocalTime | None = None
    center_id: int | None = None
    reason: str = Field(min_length=1, max_length=2000)
    override_reason: str | None = Field(None, max_length=2000)
    based_on_version: int | None = Field(
        None, ge=1, description="the current version you saw; omit for the first regimen"
    )


class RegimenOut(_Out):
    id: int
    version: int
    product: str
    dose_g_per_kg: float
    days_per_cycle: int
    interval_weeks: int
    weight_basis: WeightBasisName
    starts_on: dt.date
    preferred_weekday: int | None
    preferred_time: LocalTime
    center_id: int
    weight_kg: float
    height_cm: float
    dosing_weight_kg: float
    grams_per_day: float
    grams_per_cycle: float
    minutes_per_day: int
    override_reason: str | None
    reason: str
    created_by_id: int | None
    created_at: dt.datetime


class ReplanOut(BaseModel):
    created: int
    moved: int
    unchanged: int
    cancelled: int
    unbooked: int


class RegimenSetOut(BaseModel):
    regimen: RegimenOut
    replan: ReplanOut


class InfusionOut(_Out):
    id: int
    patient_id: int
    regimen_id: int
    cycle_number: int
    day_number: int
    planned_date: dt.date
    shift_days: int
    center_id: int
    chair_id: int | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    status: Literal["scheduled", "unbooked", "given", "partial", "missed", "cancelled"]
    planned_grams: float
    planned_vials: list[list[float]]
    planned_minutes: int
    given_grams: float | None
    lot_numbers: str | None
    given_started_at: dt.datetime | None
    given_ended_at: dt.datetime | None
    max_rate_ml_per_kg_min: float | None
    status_reason: str | None
    cycle_planned_on: dt.date
    pinned_by_id: int | None
    waived_rules: list[str]
    version: int


class RegimenList(BaseModel):
    regimens: list[RegimenOut]


class InfusionList(BaseModel):
    infusions: list[InfusionOut]


class PatientDetailOut(BaseModel):
    patient: PatientOut
    height_cm: float | None
    dm_subtype: str
    thrombosis_risk: bool
    renal_risk: bool
    weights: list[WeightOut]
    current_regimen: RegimenOut | None
    weight_change_percent: float | None
    weight_review_needed: bool


class GivenIn(_In):
    given_grams: float = Field(gt=0, le=1000)
    started_at: dt.datetime
    ended_at: dt.datetime
    lot_numbers: str = Field(min_length=1, max_length=200)
    max_rate_ml_per_kg_min: float = Field(gt=0, le=1)
    partial: bool = False
    reason: str | None = Field(None, max_length=2000)
    version: int | None = Field(None, ge=1, description="the infusion version you saw")


class ReasonIn(_In):
    reason: str = Field(min_length=1, max_length=500)
    version: int | None = Field(None, ge=1)


class RescheduleIn(_In):
    chair_id: int
    starts_at: dt.datetime
    version: int | None = Field(None, ge=1)
    override_reason: str | None = Field(
        None,
        max_length=2000,
        description="physicians only: go ahead past a soft therapy rule (interval, shift window)",
    )


class AdverseEventIn(_In):
    event_type: str = Field(min_length=1, max_length=30)
    grade: int = Field(ge=1, le=5)
    occurred_on: dt.date | None = None
    serious: bool | None = None
    description: str = Field("", max_length=2000)


class AdverseEventOut(_Out):
    id: int
    infusion_id: int | None
    patient_id: int
    occurred_on: dt.date
    event_type: str
    grade: int
    serious: bool
    description: str
    resolved_on: dt.date | None
    resolved_by_id: int | None
    resolution_note: str | None


class BoardInfusionOut(InfusionOut):
    patient_name: str


class BoardChairOut(BaseModel):
    chair_id: int
    name: str
    infusions: list[BoardInfusionOut]


class DayBoardOut(BaseModel):
    center_id: int
    date: dt.date
    opens_at: LocalTime | None
    closes_at: LocalTime | None
    chairs: list[BoardChairOut]
    unbooked: list[BoardInfusionOut]


class ClosureIn(_In):
    closed_on: dt.date
    reason: str = Field(min_length=1, max_length=200)


class ClosureOut(BaseModel):
    id: int
    center_id: int
    closed_on: dt.date
    reason: str
    replan: dict[str, int]


DrugName = Literal[
    "prednisone", "prednisolone", "methylprednisolone", "dexamethasone", "hydrocortisone"
]


class CustomStepIn(_In):
    mg_per_day: float = Field(ge=0, le=2000)
    min_days: int = Field(ge=1, le=365)
    alternate_day_mg: float | None = Field(None, ge=0, le=2000)


class TaperIn(_In):
    drug: DrugName
    start_mg: float = Field(gt=0, le=2000, description="mg/day of the drug")
    template: Literal["banded", "fixed", "percent", "custom"] = "banded"
    starts_on: dt.date
    start_days: int | None = Field(None, ge=1, le=365)
    decrement_mg: float | None = Field(None, gt=0, le=100, description="fixed template")
    percent: float | None = Field(None, gt=0, lt=100, description="percent template")
    step_days: int | None = Field(None, ge=1, le=365, description="fixed and percent templates")
    steps: list[CustomStepIn] | None = Field(None, description="custom template")


class TaperPlanIn(TaperIn):
    reason: str = Field(min_length=1, max_length=2000)
    based_on_version: int | None = Field(None, ge=1)


class TabletOut(BaseModel):
    strength_mg: float
    count: int


class PreviewStepOut(BaseModel):
    index: int
    starts_on: dt.date
    ends_on: dt.date
    mg_per_day: float
    alternate_day_mg: float | None
    min_days: int
    requires_cortisol: bool
    tablets: list[TabletOut] | None
    alternate_tablets: list[TabletOut] | None
    cumulative_prednisone_mg: float


class TaperPreviewOut(BaseModel):
    drug: DrugName
    steps: list[PreviewStepOut]
    total_prednisone_mg: float


class TaperStepOut(_Out):
    id: int
    plan_id: int
    patient_id: int
    position: int
    mg_per_day: float
    alternate_day_mg: float | None
    min_days: int
    requires_cortisol: bool
    status: Literal["planned", "active", "completed", "held", "skipped", "cancelled"]
    earliest_on: dt.date
    started_on: dt.date | None
    ended_on: dt.date | None
    approved_by_id: int | None
    approved_at: dt.datetime | None
    status_reason: str | None
    cortisol_nmol_l: float | None
    version: int


class TaperPlanOut(_Out):
    id: int
    patient_id: int
    version: int
    drug: DrugName
    start_mg: float
    template: str
    starts_on: dt.date
    reason: str
    steps: list[TaperStepOut]


class PatientTaperOut(BaseModel):
    plan: TaperPlanOut | None
    active_step_id: int | None
    current_mg_per_day: float | None
    current_tablets: list[TabletOut] | None
    next_step_id: int | None
    next_due_on: dt.date | None
    cumulative_to_date_prednisone_mg: float
    cumulative_projected_prednisone_mg: float


class ApproveIn(_In):
    version: int | None = Field(None, ge=1)
    cortisol_nmol_l: float | None = Field(None, ge=0, le=5000)
    override_reason: str | None = Field(None, max_length=2000)


class StepDoseIn(_In):
    mg_per_day: float = Field(ge=0, le=2000)
    alternate_day_mg: float | None = Field(None, ge=0, le=2000)
    reason: str = Field(min_length=1, max_length=500)
    version: int | None = Field(None, ge=1)


class DueStepOut(TaperStepOut):
    patient_name: str
    drug: DrugName


class DueList(BaseModel):
    steps: list[DueStepOut]


class SubscriptionIn(_In):
    scope: Literal["patient", "center", "chair", "physician"]
    scope_id: int
    privacy: Literal["minimal", "detailed"] = "minimal"
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class SubscriptionOut(_Out):
    id: int
    scope: str
    scope_id: int
    label: str
    privacy: str
    token_prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_fetched_at: dt.datetime | None


class SubscriptionCreatedOut(SubscriptionOut):
    #: The feed URLs; shown only in this answer (the token is stored as a hash).
    url: str
    webcal_url: str


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionOut]


_SCORE_RANGES = {name: (low, high) for name, low, high in SCORE_RANGES}


def _score(name: str, unit: str = "") -> Any:
    """An optional score, documented with the range the service (its 422 names the range)
    and the database's CHECK hold it to."""
    low, high = _SCORE_RANGES[name]
    return Field(
        None,
        description=f"{low:g}-{high:g} {unit}".strip(),
        json_schema_extra={"minimum": low, "maximum": high},
    )


class AssessmentIn(_In):
    assessed_on: dt.date
    cdasi_activity: float | None = _score("cdasi_activity")
    cdasi_damage: float | None = _score("cdasi_damage")
    mmt8: float | None = _score("mmt8")
    ck: float | None = _score("ck", "U/L")
    ck_uln: float | None = _score("ck_uln", "U/L, the lab's upper limit of normal")
    physician_global: float | None = _score("physician_global")
    patient_global: float | None = _score("patient_global")
    pruritus: float | None = _score("pruritus")
    haq: float | None = _score("haq")
    extramuscular_global: float | None = _score("extramuscular_global")
    notes: str = Field("", max_length=4000)


class AssessmentOut(_Out):
    id: int
    patient_id: int
    assessed_on: dt.date
    cdasi_activity: float | None
    cdasi_damage: float | None
    mmt8: float | None
    ck: float | None
    ck_uln: float | None
    physician_global: float | None
    patient_global: float | None
    pruritus: float | None
    haq: float | None
    extramuscular_global: float | None
    notes: str


class AssessmentList(BaseModel):
    assessments: list[AssessmentOut]


class SuggestionOut(_Out):
    id: int
    patient_id: int
    kind: str
    rule_id: str
    rule_version: int
    indicator: Literal["info", "warning", "critical"]
    summary: str
    detail: str
    proposal: dict[str, Any]
    facts: dict[str, Any]
    evidence: list[int]
    status: Literal["pending", "approved", "rejected", "superseded", "expired"]
    decided_by_id: int | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    applied_regimen_id: int | None
    applied_step_id: int | None
    step_id: int | None
    version: int
    created_at: dt.datetime


class SuggestionList(BaseModel):
    suggestions: list[SuggestionOut]


class SuggestionApproveIn(_In):
    version: int | None = Field(None, ge=1)
    value: float | None = Field(
        None, gt=0, le=100, description="a different dose (g/kg) or interval (weeks)"
    )
    reason: str | None = Field(None, max_length=2000)


class SuggestionRejectIn(_In):
    reason: str = Field(min_length=1, max_length=2000)
    version: int | None = Field(None, ge=1)


class PatientChangesIn(_In):
    height_cm: float | None = Field(None, gt=0, le=400)
    dm_subtype: Literal["classic", "amyopathic", "juvenile"] | None = None
    thrombosis_risk: bool | None = None
    renal_risk: bool | None = None
