"""Administration: the audit trail and staff accounts."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import http
from app.auth import require
from app.domain.rules import engine
from app.policy import Action
from app.schemas.admin import UserCreateIn
from app.services import audit, suggestions
from app.services import users as user_service
from app.services.errors import ServiceError
from app.web import forms

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _date_arg(name: str) -> dt.datetime | None:
    raw = request.args.get(name, "")
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        return None
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@bp.get("/audit")
@require(Action.VIEW_AUDIT)
def audit_trail() -> http.ResponseValue:
    """List the audit trail with filters."""
    until = _date_arg("until")
    filters = audit.AuditFilter(
        actor=request.args.get("actor", "")[:254] or None,
        action=request.args.get("action", "")[:80] or None,
        entity_type=request.args.get("entity_type", "")[:60] or None,
        entity_id=request.args.get("entity_id", "")[:60] or None,
        since=_date_arg("since"),
        until=until + dt.timedelta(days=1) if until else None,
    )
    page = request.args.get("page", "1")
    result = audit.list_events(
        http.db(),
        filters,
        page=int(page) if page.isdigit() else 1,
        page_size=http.settings().audit.page_size,
    )
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("admin/audit.html", result=result, args=args)


@bp.route("/users", methods=["GET", "POST"])
@require(Action.MANAGE_USERS)
def users() -> http.ResponseValue:
    """List staff accounts and create new ones."""
    form = {"email": "", "full_name": "", "role": "nurse"}
    status = 200
    if request.method == "POST":
        form = {key: request.form.get(key, "")[:254] for key in form}
        try:
            body = forms.parse(UserCreateIn)
            user = user_service.create_user(
                http.db(), http.actor(), settings=http.settings().auth, **body.model_dump()
            )
        except ServiceError as exc:
            flash(exc.message, "error")
            status = exc.status
        else:
            flash(f"Created {user.full_name} ({user.role}).", "success")
            return redirect(url_for("admin.users"))
    return (
        render_template("admin/users.html", users=user_service.list_users(http.db()), form=form),
        status,
    )


@bp.route("/rules", methods=["GET", "POST"])
@require(Action.SIMULATE_RULES)
def rules() -> http.ResponseValue:
    """Replay the configured rules (or a pasted rule file) over history; saves nothing."""
    results = None
    source = request.form.get("rules", "")[:100_000]
    status = 200
    if request.method == "POST":
        settings = http.settings()
        try:
            ruleset = (
                engine.load_rules(source) if source.strip() else suggestions.load_ruleset(settings)
            )
        except engine.RuleFileError as exc:
            flash(str(exc), "error")
            status = 422
        else:
            raw = request.form.get("patient_id", "").strip()
            ids = [int(raw)] if raw.isdigit() else None
            results = suggestions.simulate(http.db(), settings, ruleset, ids)
    return render_template("admin/rules.html", results=results, source=source), status
