"""Administration: the audit trail, staff accounts, the rule simulation and scheduler jobs."""

from __future__ import annotations

import datetime as dt

import sqlalchemy.orm as so
from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import http
from app.auth import require
from app.config import Settings
from app.csvout import csv_response
from app.db import utcnow
from app.domain.rules import engine
from app.models import JobRun
from app.policy import Action
from app.schemas.admin import HomeCenterIn, RoleIn, UserCreateIn
from app.services import accounts as account_service
from app.services import audit, clinic, jobruns, suggestions
from app.services import users as user_service
from app.services.errors import NotFound, ServiceError
from app.web import forms
from scheduler import jobs as scheduler_jobs
from scheduler.__main__ import next_run_times

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
    return render_template(
        "admin/audit.html",
        result=result,
        args=args,
        changes=audit.field_changes,
        timezone=_clinic_timezone(),
    )


def _clinic_timezone() -> str:
    centers = clinic.list_centers(http.db())
    return centers[0].timezone if centers else "UTC"


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


def next_runs(session: so.Session, settings: Settings) -> dict[str, dt.datetime | None]:
    """When each job runs next (scheduler.__main__.next_run_times), read in this session."""
    return next_run_times(settings, session.connection(), utcnow())


def _duration(run: JobRun) -> str:
    """How long a run took, "1 min 5 s" or "0.3 s"; "running" while it runs."""
    if run.finished_at is None:
        return "running" if run.status == "running" else "—"
    seconds = max((run.finished_at - run.started_at).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


@bp.get("/jobs")
@require(Action.VIEW_AUDIT)
def jobs() -> http.ResponseValue:
    """Every scheduler job: its schedule, when it runs next, and its last runs."""
    session, settings = http.db(), http.settings()
    registry = scheduler_jobs.JOBS
    runs = jobruns.recent_runs(session, list(registry), per_job=5)
    upcoming = next_runs(session, settings)
    statuses = [
        jobruns.JobStatus(
            name=job.name,
            title=job.title,
            schedule=job.describe(settings),
            next_run_at=upcoming.get(job.name),
            runs=runs.get(job.name, []),
        )
        for job in registry.values()
    ]
    return render_template(
        "admin/jobs.html", jobs=statuses, timezone=_clinic_timezone(), duration=_duration
    )


@bp.post("/jobs/<name>/run")
@require(Action.VIEW_AUDIT)
def run_job(name: str) -> http.ResponseValue:
    """Run one job once, now, in this request; the run is recorded like the scheduler's."""
    if name not in scheduler_jobs.JOBS:
        raise NotFound(f"no job {name!r}; jobs: {', '.join(sorted(scheduler_jobs.JOBS))}")
    user = http.current_user()
    label = f"admin:{user.email}" if user is not None else "admin"
    run = scheduler_jobs.run_in(http.db(), http.settings(), name, process=label)
    if run.status == "ok":
        counts = ", ".join(f"{key}: {value}" for key, value in run.counts.items())
        flash(f"{name} ran: ok ({counts or 'nothing to do'}).", "success")
    elif run.status == "failed":
        flash(f"{name} failed: {_last_line(run.error)} (the traceback is below).", "error")
    else:
        flash(f"{name} did not run: {run.status} ({run.error or 'no reason given'}).", "warning")
    return redirect(url_for("admin.jobs", _anchor=f"job-{name}"))


def _last_line(error: str | None) -> str:
    lines = [line for line in (error or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no error recorded"
