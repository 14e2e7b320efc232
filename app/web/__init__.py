"""Server-rendered pages."""

from __future__ import annotations

from flask import Flask, jsonify

from app import http
from app.services import health
from app.web import (
    account,
    admin,
    auth,
    care,
    clinic_report,
    csrf,
    feeds,
    forms,
    main,
    recalls,
    review_pack,
    stewardship,
    suggestions,
    tapers,
    worklist,
)
from app.web.centers import bp as centers_bp


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    forms.init_app(app)
    for blueprint in (
        auth.bp,
        main.bp,
        admin.bp,
        centers_bp,
        account.bp,
        care.bp,
        tapers.bp,
        feeds.bp,
        suggestions.bp,
        worklist.bp,
        recalls.bp,
        review_pack.bp,
        stewardship.bp,
        clinic_report.bp,
    ):
        app.register_blueprint(blueprint)

    @app.get("/healthz")
    def healthz() -> http.ResponseValue:
        """200 with the database and scheduler status, 503 when the database fails."""
        try:
            details = health.check(http.db())
        except Exception as exc:
            app.logger.warning("health check failed: %s", exc.__class__.__name__)
            return jsonify(status="unavailable", database="unreachable"), 503
        return jsonify(status="ok", **details)
