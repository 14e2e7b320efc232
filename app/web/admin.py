"""Administration: the audit trail, staff accounts and the rule simulation."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import http
from app.auth import require
from app.csvout import csv_response
from app.domain.rules import engine
from app.policy import Action
from app.schemas.admin import HomeCenterIn, RoleIn, UserCreateIn
from app.services import accounts as account_service
from app.services import audit, clinic, suggestions
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


def _audit_filter() -> audit.AuditFilter:
    until = _date_arg("until")
    return audit.AuditFilter(
        actor=request.args.get("actor", "")[:254] or None,
        action=request.args.get("action", "")[:80] or None,
        entity_type=request.args.get("entity_type", "")[:60] or None,
        entity_id=request.args.get("entity_id", "")[:60] or None,
        since=_date_arg("since"),
        until=until + dt.timedelta(days=1) if until else None,
        patient_id=_patient_arg(),
    )


def _patient_arg() -> int | None:
    """The patient picked by MRN (exact) or id; an unknown one matches nothing (id 0)."""
    raw = request.args.get("patient", "").strip()[:40]
    if not raw:
        return None
    match = clinic.patient_by_mrn(http.db(), raw)
    if match is not None:
        return match.id
    return int(raw) if raw.isdigit() and int(raw) < 2**31 else 0


@bp.get("/audit")
@require(Action.VIEW_AUDIT)
def audit_trail() -> http.ResponseValue:
    """List the audit trail with filters, field by field, on the clinic's clock."""
    page = request.args.get("page", "1")
    result = audit.list_events(
        http.db(),
        _audit_filter(),
        page=int(page) if page.isdigit() else 1,
        page_size=http.settings().audit.page_size,
    )
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    centers = clinic.list_centers(http.db())
    return render_template(
        "admin/audit.html",
        result=result,
        args=args,
        changes=audit.field_changes,
        timezone=centers[0].timezone if centers else "UTC",
    )


@bp.get("/audit.csv")
@require(Action.VIEW_AUDIT)
def audit_csv() -> http.ResponseValue:
    """The filtered audit trail as CSV, a row per changed field."""
    return csv_response(audit.export_rows(http.db(), _audit_filter()), "audit-trail.csv")


@bp.route("/users", methods=["GET", "POST"])
@require(Action.MANAGE_USERS)
def users() -> http.ResponseValue:
    """List staff accounts and create new ones."""
    form = {"email": "", "full_name": "", "role": "nurse", "home_center_id": ""}
    status = 200
    if request.method == "POST":
        form = {key: request.form.get(key, "")[:254] for key in form}
        try:
            body = forms.parse(UserCreateIn)
            user = user_service.create_user(
                http.db(), http.actor(), settings=http.settings().auth, **body.model_dump()
            )
        except ServiceError as exc:
            forms.refuse(exc, "user")
            status = exc.status
        else:
            flash(f"Created {user.full_name} ({user.role}).", "success")
            return redirect(url_for("admin.users"))
    return _users_page(form, status)


def _users_page(
    form: dict[str, str] | None = None, status: int = 200, reset: tuple[str, str] | None = None
) -> http.ResponseValue:
    users = user_service.list_users(http.db())
    return (
        render_template(
            "admin/users.html",
            users=users,
            locked=account_service.locked_ids(http.db(), users),
            form=form or {"email": "", "full_name": "", "role": "nurse", "home_center_id": ""},
            centers=clinic.list_centers(http.db()),
            reset=reset,
            can_email=http.settings().smtp.configured,
        ),
        status,
    )


@bp.post("/users/<int:user_id>/deactivate", defaults={"change": "deactivate"})
@bp.post("/users/<int:user_id>/activate", defaults={"change": "activate"})
@bp.post("/users/<int:user_id>/role", defaults={"change": "role"})
@bp.post("/users/<int:user_id>/unlock", defaults={"change": "unlock"})
@bp.post("/users/<int:user_id>/home-center", defaults={"change": "home_center"})
@require(Action.MANAGE_USERS)
def change_user(user_id: int, change: str) -> http.ResponseValue:
    """Deactivate, reactivate, change the role or home center of, or unlock an account."""
    try:
        if change == "home_center":
            # The select's "Every center" sends an empty value: no home center.
            picked = request.form.get("home_center_id", "").strip()
            user = account_service.set_home_center(
                http.db(),
                http.actor(),
                user_id,
                forms.parse(HomeCenterIn).home_center_id if picked else None,
            )
            message = (
                f"{user.full_name}'s home page opens on their home center."
                if user.home_center_id is not None
                else f"{user.full_name} has no home center: their home page shows every center."
            )
        elif change == "role":
            user = account_service.change_role(
                http.db(), http.actor(), user_id, forms.parse(RoleIn).role
            )
            message = f"{user.full_name} is now {user.role}."
        elif change == "unlock":
            user = account_service.unlock(http.db(), http.actor(), user_id)
            message = f"{user.full_name} can sign in again from every device."
        else:
            user = account_service.set_active(
                http.db(), http.actor(), user_id, active=change == "activate"
            )
            message = (
                f"{user.full_name} is active again; they sign in anew."
                if user.active
                else f"{user.full_name} is deactivated: their sessions and API tokens ended."
            )
    except ServiceError as exc:
        flash(exc.message, "error")
        return _users_page(status=exc.status)
    flash(message, "success")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/reset-link")
@require(Action.MANAGE_USERS)
def reset_link(user_id: int) -> http.ResponseValue:
    """Make a one-time password reset link and show it once, to hand to the user."""
    try:
        plain, reset = account_service.create_reset_link(
            http.db(), http.actor(), user_id, http.settings().auth
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return _users_page(status=exc.status)
    link = url_for("auth.reset", token=plain, _external=True)
    expires = reset.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    return _users_page(reset=(f"{reset.user.full_name}: {link}", expires))


def _public_reset_url(token: str) -> str:
    return http.public_url("auth.reset", token=token)


@bp.post("/users/<int:user_id>/reset-link/email")
@require(Action.MANAGE_USERS)
def email_reset_link(user_id: int) -> http.ResponseValue:
    """E-mail a one-time password reset link to the user's own address (SMTP configured)."""
    try:
        reset = account_service.email_reset_link(
            http.db(), http.actor(), user_id, http.settings(), _public_reset_url
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return _users_page(status=exc.status)
    expires = reset.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    flash(
        f"A reset link was e-mailed to {reset.user.email}; it works once, until {expires}.",
        "success",
    )
    return redirect(url_for("admin.users"))


@bp.route("/rules", methods=["GET", "POST"])
@require(Action.SIMULATE_RULES)
def rules() -> http.ResponseValue:
    """Replay the configured rules (or a pasted rule file) over history; saves nothing."""
    results = None
    source = request.form.get("rules", "")[:100_000]
    query, matched = "", None
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
            query = request.form.get("patients", "").strip()[:100]
            matched = clinic.list_patients(http.db(), query) if query else None
            if matched == []:
                flash(f"patients: no patient's name or MRN matches {query!r}", "error")
                status = 422
            else:
                ids = [p.id for p in matched] if matched is not None else None
                results = suggestions.simulate(http.db(), settings, ruleset, ids)
    return (
        render_template(
            "admin/rules.html", results=results, source=source, query=query, matched=matched
        ),
        status,
    )
