"""Load config.toml, apply environment overrides and validate every value."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
    lockout_minutes: int = Field(15, ge=1, le=24 * 60)
    failed_login_delay_seconds: float = Field(0.5, ge=0, le=10)
    session_idle_hours: float = Field(12, gt=0, le=24 * 30)
    session_absolute_hours: float = Field(72, gt=0, le=24 * 90)
    api_token_days: int = Field(365, ge=0, le=3650)


class SchedulerSettings(_Section):
    timezone: str = "UTC"
    heartbeat_seconds: int = Field(60, ge=5, le=3600)
    misfire_grace_seconds: int = Field(900, ge=1, le=24 * 3600)

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as Europe/Berlin") from exc
        return value


class AuditSettings(_Section):
    page_size: int = Field(50, ge=5, le=500)


class Settings(_Section):
    app: AppSettings = AppSettings()
    auth: AuthSettings = AuthSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    audit: AuditSettings = AuditSettings()
    #: Where the settings were read from (for messages); not a config.toml key.
    source: str = Field("defaults", exclude=True)

    @property
    def is_production(self) -> bool:
        return self.app.mode == "production"


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

    app_section = raw.setdefault("app", {})
    for env_name, key in (
        ("DATABASE_URL", "database_url"),
        ("SECRET_KEY", "secret_key"),
        ("IVIG_MODE", "mode"),
    ):
        if env.get(env_name):
            app_section[key] = env[env_name]
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
    database_url = _absolute_sqlite(settings.app.database_url, config_path.parent)
    return settings.model_copy(
        update={"app": settings.app.model_copy(update={"database_url": database_url})}
    )
