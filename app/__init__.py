"""The Flask application factory."""

from __future__ import annotations

import datetime as dt

import sqlalchemy.orm as so
from apiflask import APIFlask

from app import errors, http
from app.config import ConfigError, Settings, load_settings
from app.db import make_engine, make_read_session_factory, make_session_factory


def create_app(
    settings: Settings | None = None, *, session_factory: so.sessionmaker[so.Session] | None = None
) -> APIFlask:
    """Build the app from settings (config.toml by default) and an optional session factory."""
    settings = settings or load_settings()
    _check_rules(settings)
    app = APIFlask(
        __name__,
        title="IVIG Assistant API",
        version="1",
        spec_path="/api/v1/openapi.json",
        docs_path=None,
        json_errors=False,
        template_folder="web/templates",
        static_folder="web/static",
    )
    app.config.update(
        SECRET_KEY=settings.app.secret_key,
        SESSION_COOKIE_NAME="ivig_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.auth.session_absolute_hours),
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
        SECURITY_SCHEMES={"BearerAuth": {"type": "http", "scheme": "bearer"}},
        VALIDATION_ERROR_SCHEMA=errors.ERROR_SCHEMA,
        HTTP_ERROR_SCHEMA=errors.ERROR_SCHEMA,
        INFO={"description": "JSON API of the IVIG infusion scheduling and tapering assistant."},
    )
    app.logger.setLevel(settings.app.log_level)

    engine = None
    read_factory = None
    if session_factory is None:
        engine = make_engine(settings.app.database_url)
        session_factory = make_session_factory(engine, settings)
        if engine.dialect.name == "sqlite":
            read_factory = make_read_session_factory(engine, settings)
    app.extensions["ivig"] = http.AppState(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        read_session_factory=read_factory,
    )

    from app import api, auth, cds, cli, fhir, logs, web
    from app.feeds import views as feed_views

    logs.install("werkzeug", "gunicorn.access")

    http.init_app(app)
    cds.init_app(app)  # CDS Hooks: JWT-signed (app/cds)
    fhir.init_app(app)  # FHIR R4 export and lab import (app/fhir)
    app.before_request(auth.load_user)
    web.init_app(app)
    app.register_blueprint(api.bp)
    app.spec_processor(api.complete_document)
    app.register_blueprint(feed_views.bp)
    errors.register(app)
    cli.init_app(app)

    @app.context_processor
    def _layout_globals() -> dict[str, object]:
        from app import policy

        user = http.current_user()
        role = user.role if user is not None else None
        return {
            "current_user": user,
            "can": lambda action: policy.can(role, policy.Action(action)),
            "has_own_feed": policy.has_own_feed(role),
            "clinic_name": settings.app.clinic_name,
        }

    return app


def _check_rules(settings: Settings) -> None:
    """Refuse to start with a rule file that does not load (the message names the rule)."""
    from app.domain.rules.engine import RuleFileError
    from app.services import suggestions

    try:
        suggestions.load_ruleset(settings)
    except (RuleFileError, OSError) as exc:
        raise ConfigError(f"rules.file: {suggestions.rules_path(settings)}: {exc}") from exc
