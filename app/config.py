"""Load config.toml, apply environment overrides and validate every value."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import tomllib
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from app.domain.dosing import DosingLimits, Product, RatePlan
from app.domain.integrity import Limits as IntegrityLimits
from app.domain.taper import Band, TaperRules
from app.domain.visit import Bound as VitalBoundsDomain

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.toml"
DEFAULT_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 (refused in production)


class ConfigError(Exception):
    """A configuration value is missing or not allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppSettings(_Section):
    mode: Literal["development", "production"] = "development"
    secret_key: str = Field(DEFAULT_SECRET_KEY, min_length=16)
    database_url: str = "sqlite:///instance/ivig.sqlite3"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    clinic_name: str = Field("IVIG Infusion Clinic", min_length=1, max_length=100)

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite://, postgresql:// or postgresql+psycopg://")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value


class AuthSettings(_Section):
    password_min_length: int = Field(10, ge=8, le=128)
    max_failed_logins: int = Field(5, ge=1, le=100)
    max_failed_logins_per_address: int = Field(20, ge=1, le=10_000)
    lockout_minutes: int = Field(15, ge=1, le=24 * 60)
    failed_login_delay_seconds: float = Field(0.5, ge=0, le=10)
    session_idle_minutes: float = Field(15, gt=0, le=24 * 60 * 30)
    session_absolute_hours: float = Field(72, gt=0, le=24 * 90)
    api_token_days: int = Field(365, ge=0, le=3650)
    password_reset_hours: float = Field(24, gt=0, le=24 * 14)


_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpSettings(_Section):
    """The clinic's mail server; off while `host` is empty."""

    host: str = Field("", max_length=253)
    port: int = Field(25, ge=1, le=65535)
    from_address: str = Field("", max_length=254)
    username: str = Field("", max_length=254)
    password_env: str = Field("SMTP_PASSWORD", pattern=_ENV_NAME)
    starttls: bool = False
    timeout_seconds: float = Field(10, gt=0, le=120)
    #: Read from the environment variable `password_env` names; never from config.toml.
    password: SecretStr = Field(SecretStr(""), exclude=True, repr=False)

    @property
    def configured(self) -> bool:
        return bool(self.host)

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            try:
                ipaddress.ip_address(value)
            except ValueError as exc:
                raise ValueError(
                    "a host name or IP address only, e.g. mail.example.org (port is its own key)"
                ) from exc
        return value

    @field_validator("from_address")
    @classmethod
    def _mailbox(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        _name, address = parseaddr(value)
        local, _, domain = address.rpartition("@")
        if not local or "." not in domain or any(c.isspace() for c in address):
            raise ValueError('an e-mail address, e.g. "IVIG Clinic <ivig@example.org>"')
        return value

    @model_validator(mode="after")
    def _usable(self) -> SmtpSettings:
        if self.host and not self.from_address:
            raise ValueError("from_address: needed when host is set")
        if self.username and not self.starttls and not _is_loopback(self.host):
            raise ValueError(
                "username: a login to a mail server on another machine needs starttls = true "
                "(the password would cross the network in clear text)"
            )
        return self


class SchedulerSettings(_Section):
    timezone: str = "UTC"
    heartbeat_seconds: int = Field(60, ge=5, le=3600)
    misfire_grace_seconds: int = Field(900, ge=1, le=24 * 3600)
    horizon_hour: int = Field(2, ge=0, le=23)
    reminder_sweep_minutes: int = Field(5, ge=1, le=24 * 60)
    daily_hour: int = Field(3, ge=0, le=23)
    batch_size: int = Field(200, ge=1, le=10_000)
    job_history_days: int = Field(30, ge=1, le=3650)

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as Europe/Berlin") from exc
        return value


#: Assessment fields a course review may require.
REVIEW_MEASURES = ("cdasi_activity", "cdasi_damage", "mmt8", "physician_global", "patient_global")


class ReviewSettings(_Section):
    first_before_cycle: int = Field(3, ge=2, le=24)
    every_months: int = Field(6, ge=1, le=24)
    at_least_every_months: int = Field(12, ge=1, le=24)
    required_measures: tuple[str, ...] = ("cdasi_activity", "mmt8", "physician_global")
    task_days_before: int = Field(14, ge=0, le=90)
    renewal_days_before: int = Field(28, ge=0, le=365)

    @field_validator("required_measures")
    @classmethod
    def _known_measures(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(REVIEW_MEASURES))
        if unknown:
            raise ValueError(f"unknown measure(s) {unknown}; known: {list(REVIEW_MEASURES)}")
        return value

    @property
    def interval_months(self) -> int:
        """Months between reviews: every_months, never longer than at_least_every_months."""
        return min(self.every_months, self.at_least_every_months)


class NoticeSettings(_Section):
    change_hours: int = Field(48, ge=1, le=24 * 14)
    day_before_hour: int = Field(10, ge=0, le=23)
    suggestion_expiry_days: int = Field(30, ge=1, le=365)


class AuditSettings(_Section):
    page_size: int = Field(50, ge=5, le=500)


class DosingSettings(_Section):
    weight_basis_default: Literal["actual", "ideal", "adjusted"] = "adjusted"
    adjusted_weight_factor: float = Field(0.4, ge=0, le=1)
    rounding_tolerance_percent: float = Field(5.0, ge=0, le=25)
    max_dose_g_per_kg_per_cycle: float = Field(2.0, gt=0, le=4)
    min_dose_g_per_kg_per_cycle: float = Field(0.2, gt=0, le=4)
    min_weight_kg: float = Field(25.0, gt=0, le=500)
    max_weight_kg: float = Field(250.0, gt=0, le=500)
    min_height_cm: float = Field(120.0, gt=0, le=300)
    max_height_cm: float = Field(230.0, gt=0, le=300)
    min_days_per_cycle: int = Field(1, ge=1, le=5)
    max_days_per_cycle: int = Field(5, ge=1, le=5)
    min_interval_weeks: int = Field(2, ge=1, le=52)
    max_interval_weeks: int = Field(12, ge=1, le=52)
    thrombosis_soft_stop_g_per_day: float = Field(35.0, gt=0, le=1000)
    one_day_cycle_max_g_per_kg: float = Field(1.0, gt=0, le=4)
    weight_change_review_percent: float = Field(10.0, gt=0, le=100)

    @model_validator(mode="after")
    def _ranges_ordered(self) -> DosingSettings:
        for low, high in (
            ("min_dose_g_per_kg_per_cycle", "max_dose_g_per_kg_per_cycle"),
            ("min_weight_kg", "max_weight_kg"),
            ("min_height_cm", "max_height_cm"),
            ("min_days_per_cycle", "max_days_per_cycle"),
            ("min_interval_weeks", "max_interval_weeks"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must not be above {high}")
        return self


class ProductSettings(_Section):
    name: str = Field(min_length=1, max_length=60)
    concentration_g_per_ml: float = Field(gt=0, le=1)
    vial_sizes_g: tuple[float, ...] = Field(min_length=1)
    max_g_per_day: float = Field(gt=0, le=1000)
    rate_start_ml_per_kg_min: float = Field(gt=0, le=0.2)
    rate_step_ml_per_kg_min: float = Field(ge=0, le=0.2)
    rate_step_every_minutes: int = Field(ge=1, le=240)
    rate_max_ml_per_kg_min: float = Field(gt=0, le=0.2)
    rate_max_at_risk_ml_per_kg_min: float = Field(gt=0, le=0.2)

    @field_validator("vial_sizes_g")
    @classmethod
    def _positive_sizes(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(size <= 0 or round(size * 10) != size * 10 for size in value):
            raise ValueError("vial sizes must be positive multiples of 0.1 g")
        return tuple(sorted(set(value), reverse=True))


class SchedulingSettings(_Section):
    horizon_months: int = Field(12, ge=1, le=36)
    shift_window_days: int = Field(3, ge=0, le=14)
    turnover_minutes: int = Field(15, ge=0, le=240)
    slot_granularity_minutes: int = Field(15, ge=5, le=60)
    default_start_time: dt.time = dt.time(8, 30)
    public_holidays_country: str = Field("", max_length=2)
    interval_tolerance_days: int = Field(3, ge=0, le=14)
    dose_window_percent: float = Field(50.0, gt=0, le=100)


class FeedSettings(_Section):
    refresh_minutes: int = Field(60, ge=5, le=24 * 60)
    cancelled_retention_days: int = Field(14, ge=0, le=365)
    past_days: int = Field(60, ge=0, le=3650)
    staff_future_weeks: int = Field(12, ge=1, le=156)
    max_feed_kilobytes: int = Field(900, ge=20, le=100_000)
    staff_detail: Literal["initials", "full_names"] = "initials"
    rate_limit_per_minute: int = Field(30, ge=1, le=10_000)
    public_base_url: str = Field("", max_length=200)

    @field_validator("public_base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or be empty)")
        return value.rstrip("/")


class PremedicationChoice(_Section):
    name: str = Field(min_length=1, max_length=80)
    dose: float = Field(gt=0, le=10_000)
    unit: str = Field(min_length=1, max_length=10)
    route: str = Field(min_length=1, max_length=10)


class VitalBound(_Section):
    low: float
    high: float
    unit: str = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _ordered(self) -> VitalBound:
        if self.low >= self.high:
            raise ValueError(f"low {self.low} must be below high {self.high}")
        return self


#: The vital signs a nurse records, each with its bound (config.toml [visit.vitals]).
VITAL_NAMES = (
    "systolic_mmhg",
    "diastolic_mmhg",
    "pulse_bpm",
    "temperature_c",
    "respiratory_rate",
    "spo2_percent",
)


def _default_vitals() -> dict[str, VitalBound]:
    return {
        "systolic_mmhg": VitalBound(low=50, high=260, unit="mmHg"),
        "diastolic_mmhg": VitalBound(low=20, high=160, unit="mmHg"),
        "pulse_bpm": VitalBound(low=20, high=250, unit="/min"),
        "temperature_c": VitalBound(low=30, high=43, unit="°C"),
        "respiratory_rate": VitalBound(low=4, high=60, unit="/min"),
        "spo2_percent": VitalBound(low=50, high=100, unit="%"),
    }


class VisitSettings(_Section):
    dose_change_percent: float = Field(5, gt=0, le=50)
    renal_lab_max_age_days: int = Field(30, ge=1, le=365)
    premedications: list[PremedicationChoice] = Field(default_factory=list, max_length=50)
    vitals: dict[str, VitalBound] = Field(default_factory=_default_vitals)

    @model_validator(mode="after")
    def _every_vital(self) -> VisitSettings:
        missing = set(VITAL_NAMES) - set(self.vitals)
        unknown = set(self.vitals) - set(VITAL_NAMES)
        if missing or unknown:
            raise ValueError(
                f"vitals: give exactly {', '.join(VITAL_NAMES)}"
                f" (missing {sorted(missing)}, unknown {sorted(unknown)})"
            )
        return self


class RulesSettings(_Section):
    file: str = Field("", max_length=500)


DRUGS = ("prednisone", "prednisolone", "methylprednisolone", "dexamethasone", "hydrocortisone")


class BandSettings(_Section):
    above_mg: float = Field(ge=0, le=1000)
    decrement_mg: float = Field(gt=0, le=100)
    step_days: int = Field(ge=1, le=365)


class SteroidSettings(_Section):
    physiological_floor_mg: float = Field(7.5, ge=0, le=40)
    below_floor_min_step_days: int = Field(28, ge=1, le=365)
    below_floor_max_decrement_mg: float = Field(1.0, gt=0, le=20)
    cortisol_stop_nmol_l: float = Field(300.0, gt=0, le=2000)
    cortisol_recheck_nmol_l: float = Field(150.0, gt=0, le=2000)
    max_start_mg: float = Field(100.0, gt=0, le=2000)
    start_days: int = Field(28, ge=1, le=365)
    equivalence: dict[str, float] = Field(default_factory=dict)
    tablets: dict[str, tuple[float, ...]] = Field(default_factory=dict)
    bands: tuple[BandSettings, ...] = ()

    @model_validator(mode="after")
    def _every_drug_known(self) -> SteroidSettings:
        for table in ("equivalence", "tablets"):
            values = getattr(self, table)
            unknown = set(values) - set(DRUGS)
            if unknown:
                raise ValueError(f"{table}: unknown drug(s) {sorted(unknown)}; known: {DRUGS}")
        if self.cortisol_recheck_nmol_l > self.cortisol_stop_nmol_l:
            raise ValueError("cortisol_recheck_nmol_l must not be above cortisol_stop_nmol_l")
        if any(v <= 0 for v in self.equivalence.values()):
            raise ValueError("equivalence: every factor must be positive")
        if any(s <= 0 for sizes in self.tablets.values() for s in sizes):
            raise ValueError("tablets: every strength must be positive")
        return self


_LAB_KEY = r"^[a-z][a-z0-9_]{0,29}$"


class LabTestSettings(_Section):
    """One test the clinic's lab list knows: its unit, default range and typo guard."""

    label: str = Field(min_length=1, max_length=40)
    unit: str = Field(min_length=1, max_length=20)
    #: The default reference range (either side may be open), used when a result comes
    #: without the lab's own.
    ref_low: float | None = Field(None, ge=0)
    ref_high: float | None = Field(None, ge=0)
    #: A value outside this range is refused as a typo (or a value in another unit).
    plausible_min: float = Field(ge=0)
    plausible_max: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> LabTestSettings:
        if self.plausible_min >= self.plausible_max:
            raise ValueError("plausible_min must be below plausible_max")
        if self.ref_low is not None and self.ref_high is not None and self.ref_low > self.ref_high:
            raise ValueError("ref_low must not be above ref_high")
        for name in ("ref_low", "ref_high"):
            bound = getattr(self, name)
            if bound is not None and bound > self.plausible_max:
                raise ValueError(f"{name} must not be above plausible_max")
        return self


class LabsSettings(_Section):
    #: Results per test the patient page shows (the newest); the API lists them all.
    trend_results: int = Field(24, ge=2, le=500)
    tests: dict[str, LabTestSettings] = Field(default_factory=dict)

    @field_validator("tests")
    @classmethod
    def _known_keys(cls, value: dict[str, LabTestSettings]) -> dict[str, LabTestSettings]:
        bad = [key for key in value if not re.fullmatch(_LAB_KEY, key)]
        if bad:
            raise ValueError(
                f"test keys are lower-case letters, digits and _, at most 30 (got {bad})"
            )
        return value


class CdsClientSettings(_Section):
    """An EHR registered to call the CDS Hooks service (its JWTs are signed with these keys)."""

    #: The `iss` its JWTs carry.
    issuer: str = Field(min_length=1, max_length=255)
    #: Who it is, for people (audit rows name the issuer).
    name: str = Field(min_length=1, max_length=100)
    #: Its public keys: a JWK Set as JSON text, or the path of a JWK Set file (relative to
    #: the config file). Checked when the app starts (app.cds.auth).
    jwks: str = Field(min_length=1, max_length=100_000)


class CdsSettings(_Section):
    """The HL7 CDS Hooks service under /cds-services (DOMAIN.md: Standards to speak)."""

    #: The FHIR identifier system whose value, on the EHR's Patient, is our MRN.
    patient_identifier_system: str = Field(
        "urn:oid:2.16.840.1.113883.3.0000", min_length=1, max_length=255
    )
    #: This service's base URL as the EHR calls it (the JWT's `aud` starts with it); "" =
    #: feeds.public_base_url, else the request's own.
    audience: str = Field("", max_length=200)
    max_token_lifetime_seconds: int = Field(300, ge=10, le=3600)
    clock_skew_seconds: int = Field(30, ge=0, le=300)
    #: order-sign: a draft MedicationRequest is IVIG when one of its codings has one of these
    #: codes ("system|code", or a bare code in any system)...
    ivig_codes: tuple[str, ...] = ()
    #: ... or its text or a coding's display holds one of these (case-insensitive).
    ivig_text: tuple[str, ...] = ("ivig", "igiv", "immune globulin intravenous")
    #: Texts that name each configured product ([[products]] name -> texts), case-insensitive.
    product_text: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    #: Origins a browser-based CDS client may call from (CORS); "*" = any.
    cors_origins: tuple[str, ...] = ("*",)
    clients: tuple[CdsClientSettings, ...] = ()

    @field_validator("ivig_codes", "ivig_text")
    @classmethod
    def _non_empty_entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not entry.strip() for entry in value):
            raise ValueError("entries must not be empty")
        return tuple(entry.strip() for entry in value)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(
                    f'each origin is "*" or scheme://host[:port] with no path (got {origin!r})'
                )
        return value

    @field_validator("audience")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or be empty)")
        return value.rstrip("/")

    @field_validator("clients")
    @classmethod
    def _unique_issuers(cls, value: tuple[CdsClientSettings, ...]) -> tuple[CdsClientSettings, ...]:
        issuers = [client.issuer for client in value]
        if len(set(issuers)) != len(issuers):
            raise ValueError("each client's issuer must be unique")
        return value


class FhirSettings(_Section):
    """FHIR R4 export ($everything, the NDJSON export) and the lab import (POST /fhir)."""

    #: Most entries a lab-import Bundle may carry (more: refused whole, 413).
    max_bundle_entries: int = Field(100, ge=1, le=10_000)
    #: Most bytes a lab-import Bundle may have; the app takes no request over 1 MiB at all.
    max_bundle_bytes: int = Field(262_144, ge=1024, le=1024 * 1024)


class OptimiserWeights(_Section):
    """Weights of the optimiser's soft goals (app.domain.optimise.Weights), each per unit."""

    same_chair: int = Field(60, ge=0, le=100_000)
    preferred_time: int = Field(1, ge=0, le=100_000)
    target_date: int = Field(120, ge=0, le=100_000)
    past_closing: int = Field(10, ge=0, le=100_000)
    level_setups: int = Field(30, ge=0, le=100_000)
    stay_put: int = Field(20, ge=0, le=100_000)


class OptimiserSettings(_Section):
    """The chair and nurse optimiser (DOMAIN.md: Infusion nursing)."""

    horizon_weeks: int = Field(4, ge=1, le=8)
    settled_days: int = Field(2, ge=0, le=14)
    nurse_ratio: int = Field(4, ge=1, le=12)
    setup_minutes: int = Field(15, ge=0, le=120)
    time_limit_seconds: float = Field(20.0, gt=0, le=300)
    workers: int = Field(2, ge=1, le=64)
    weights: OptimiserWeights = OptimiserWeights()


class StewardshipSettings(_Section):
    """The stewardship ledger's cost (DOMAIN.md: "Reviews, authorisations, stewardship")."""

    #: What the clinic pays per gram of IVIG; 0 = not set (the pages then show no cost).
    price_per_gram: float = Field(0.0, ge=0, le=100_000)
    #: The currency the price is in, as pages show it (ISO 4217, e.g. "USD").
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")


class ReportSettings(_Section):
    """The clinic reports' response definitions and reference figures (DOMAIN.md: "The clinical
    story", "Response measures")."""

    #: Weeks from the first infusion given after which no response means a non-responder.
    response_window_weeks: int = Field(16, ge=1, le=520)
    #: The seed's mean cycles to response, its share improved (percent), its cohort and how
    #: many of it stopped for adverse events.
    reference_cycles_to_response: float = Field(1.82, gt=0, le=100)
    reference_improved_percent: float = Field(80.0, ge=0, le=100)
    reference_patients: int = Field(42, ge=1, le=1_000_000)
    reference_stopped_for_adverse_events: int = Field(6, ge=0, le=1_000_000)
    #: ProDERM's week of measure, its TIS threshold, and its share at it then (percent).
    reference_week: int = Field(16, ge=1, le=520)
    reference_week_tis: float = Field(20.0, gt=0, le=100)
    reference_week_percent: float = Field(78.7, ge=0, le=100)

    @model_validator(mode="after")
    def _stopped_within_cohort(self) -> ReportSettings:
        if self.reference_stopped_for_adverse_events > self.reference_patients:
            raise ValueError(
                "reference_stopped_for_adverse_events must not be above reference_patients"
            )
        return self

    @property
    def reference_stopped_percent(self) -> float:
        return self.reference_stopped_for_adverse_events / self.reference_patients * 100


class Settings(_Section):
    app: AppSettings = AppSettings()
    auth: AuthSettings = AuthSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    audit: AuditSettings = AuditSettings()
    dosing: DosingSettings = DosingSettings()
    products: tuple[ProductSettings, ...] = ()
    scheduling: SchedulingSettings = SchedulingSettings()
    steroids: SteroidSettings = SteroidSettings()
    feeds: FeedSettings = FeedSettings()
    rules: RulesSettings = RulesSettings()
    smtp: SmtpSettings = SmtpSettings()
    labs: LabsSettings = LabsSettings()
    visit: VisitSettings = VisitSettings()
    reviews: ReviewSettings = ReviewSettings()
    notices: NoticeSettings = NoticeSettings()
    cds: CdsSettings = CdsSettings()
    fhir: FhirSettings = FhirSettings()
    optimiser: OptimiserSettings = OptimiserSettings()
    stewardship: StewardshipSettings = StewardshipSettings()
    reports: ReportSettings = ReportSettings()
    #: Where the settings were read from (for messages); not a config.toml key.
    source: str = Field("defaults", exclude=True)

    @property
    def is_production(self) -> bool:
        return self.app.mode == "production"

    @field_validator("products")
    @classmethod
    def _unique_products(cls, value: tuple[ProductSettings, ...]) -> tuple[ProductSettings, ...]:
        names = [product.name for product in value]
        if len(set(names)) != len(names):
            raise ValueError("product names must be unique")
        return value

    @model_validator(mode="after")
    def _cds_products_known(self) -> Settings:
        names = {product.name for product in self.products}
        unknown = sorted(set(self.cds.product_text) - names)
        if unknown and self.products:
            raise ValueError(
                f"cds.product_text: {', '.join(unknown)} is not a [[products]] name "
                f"(known: {', '.join(sorted(names))})"
            )
        return self

    def product_catalog(self) -> dict[str, Product]:
        """Return the configured IVIG products as domain values, by name."""
        return {
            p.name: Product(
                name=p.name,
                concentration_g_per_ml=p.concentration_g_per_ml,
                vial_sizes_g=p.vial_sizes_g,
                max_g_per_day=p.max_g_per_day,
                rate_plan=RatePlan(
                    start_ml_per_kg_min=p.rate_start_ml_per_kg_min,
                    step_ml_per_kg_min=p.rate_step_ml_per_kg_min,
                    step_every_minutes=p.rate_step_every_minutes,
                    max_ml_per_kg_min=p.rate_max_ml_per_kg_min,
                    max_at_risk_ml_per_kg_min=p.rate_max_at_risk_ml_per_kg_min,
                ),
            )
            for p in self.products
        }

    def taper_rules(self) -> TaperRules:
        """Return the steroid taper rules (bands, floor, equivalents, tablets) as domain values."""
        s = self.steroids
        return TaperRules(
            bands=tuple(Band(b.above_mg, b.decrement_mg, b.step_days) for b in s.bands),
            floor_mg=s.physiological_floor_mg,
            below_floor_min_step_days=s.below_floor_min_step_days,
            below_floor_max_decrement_mg=s.below_floor_max_decrement_mg,
            equivalence=dict(s.equivalence),
            tablet_strengths_mg={drug: tuple(sizes) for drug, sizes in s.tablets.items()},
            max_start_mg=s.max_start_mg,
        )

    def vital_bounds(self) -> dict[str, VitalBoundsDomain]:
        """Return the vital signs' possible ranges as domain values."""
        return {
            name: VitalBoundsDomain(bound.low, bound.high, bound.unit)
            for name, bound in self.visit.vitals.items()
        }

    def integrity_limits(self) -> IntegrityLimits:
        """Return the settings the therapy-integrity rules read, as a domain value."""
        s = self.scheduling
        return IntegrityLimits(
            shift_window_days=s.shift_window_days,
            interval_tolerance_days=s.interval_tolerance_days,
            dose_window_percent=s.dose_window_percent,
            grams_tolerance_percent=self.dosing.rounding_tolerance_percent,
        )

    def dosing_limits(self) -> DosingLimits:
        """Return the dosing hard and soft stops as a domain value."""
        d = self.dosing
        return DosingLimits(
            max_dose_g_per_kg_per_cycle=d.max_dose_g_per_kg_per_cycle,
            min_dose_g_per_kg_per_cycle=d.min_dose_g_per_kg_per_cycle,
            min_weight_kg=d.min_weight_kg,
            max_weight_kg=d.max_weight_kg,
            min_height_cm=d.min_height_cm,
            max_height_cm=d.max_height_cm,
            min_days_per_cycle=d.min_days_per_cycle,
            max_days_per_cycle=d.max_days_per_cycle,
            min_interval_weeks=d.min_interval_weeks,
            max_interval_weeks=d.max_interval_weeks,
            rounding_tolerance_percent=d.rounding_tolerance_percent,
            thrombosis_soft_stop_g_per_day=d.thrombosis_soft_stop_g_per_day,
            adjusted_weight_factor=d.adjusted_weight_factor,
            one_day_cycle_max_g_per_kg=d.one_day_cycle_max_g_per_kg,
        )


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
    if "input" in error and error["type"] != "extra_forbidden":
        return f"{key}: {message} (got {error['input']!r})"
    return f"{key}: {message}"


def _absolute_sqlite(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite://" or ":memory:" in url:
        return url
    path = url.removeprefix(prefix)
    if path.startswith("/"):
        return url
    return prefix + str((base / path).resolve())


#: Environment variables that replace a key: (variable, section, key).
_ENVIRONMENT = (
    ("DATABASE_URL", "app", "database_url"),
    ("SECRET_KEY", "app", "secret_key"),
    ("IVIG_MODE", "app", "mode"),
    ("SMTP_HOST", "smtp", "host"),
    ("SMTP_PORT", "smtp", "port"),
    ("SMTP_FROM", "smtp", "from_address"),
)


def _environment(raw: dict[str, Any], env: dict[str, str] | os._Environ[str]) -> None:
    """Apply the environment overrides (the config file's header lists them)."""
    for env_name, section, key in _ENVIRONMENT:
        value = env.get(env_name)
        if value:
            target = raw.setdefault(section, {})
            if isinstance(target, dict):
                target[key] = value


def load_settings(
    path: str | os.PathLike[str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    environ: dict[str, str] | os._Environ[str] | None = None,
) -> Settings:
    """Read the config file, apply environment overrides, validate, and return settings."""
    env = os.environ if environ is None else environ
    config_path = Path(path or env.get("IVIG_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        raw: dict[str, Any] = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {config_path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc

    smtp_section = raw.get("smtp")
    if isinstance(smtp_section, dict) and "password" in smtp_section:
        raise ConfigError(
            f"{config_path}: smtp.password: never in this file; put the password in the "
            "environment variable that smtp.password_env names (default SMTP_PASSWORD)"
        )
    _environment(raw, env)
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)

    try:
        settings = Settings.model_validate({**raw, "source": str(config_path)})
    except ValidationError as exc:
        problems = "; ".join(_describe(dict(err)) for err in exc.errors())
        raise ConfigError(f"{config_path}: {problems}") from exc

    if settings.is_production and (
        settings.app.secret_key == DEFAULT_SECRET_KEY or len(settings.app.secret_key) < 32
    ):
        raise ConfigError(
            f"{config_path}: app.secret_key: production mode refuses the default or a short "
            "secret key; set SECRET_KEY to a random value of at least 32 characters"
        )
    if settings.is_production and not settings.feeds.public_base_url:
        # Otherwise feed links would be built from the request's Host header, which a
        # client chooses.
        raise ConfigError(
            f"{config_path}: feeds.public_base_url: production mode needs the https address "
            "calendar clients use, e.g. https://ivig.example.org"
        )
    database_url = _absolute_sqlite(settings.app.database_url, config_path.parent)
    return settings.model_copy(
        update={
            "app": settings.app.model_copy(update={"database_url": database_url}),
            "smtp": _smtp_password(settings.smtp, env, config_path),
        }
    )


def _smtp_password(
    smtp: SmtpSettings, env: dict[str, str] | os._Environ[str], config_path: Path
) -> SmtpSettings:
    """Fill in the SMTP password from the environment when a login is configured."""
    if not (smtp.configured and smtp.username):
        return smtp
    password = env.get(smtp.password_env, "")
    if not password:
        raise ConfigError(
            f"{config_path}: smtp.password_env: smtp.username is set, so the environment "
            f"variable {smtp.password_env} must hold the mail server password"
        )
    return smtp.model_copy(update={"password": SecretStr(password)})
