"""Command line: `flask --app wsgi users create ...`, `tokens create ...`, `demo load`, `jobs`,
`fhir export DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from app import http
from app.models import AuditLink, Role
from app.services import centers as center_service
from app.services import demo
from app.services import users as user_service
from app.services.context import Actor, system_actor
from app.services.errors import ServiceError

users_cli = AppGroup("users", help="Staff accounts.")
tokens_cli = AppGroup("tokens", help="API bearer tokens.")
demo_cli = AppGroup("demo", help="Demo data for the quick start.")
centers_cli = AppGroup("centers", help="Infusion centers, their hours and chairs.")
rules_cli = AppGroup("rules", help="The decision-support rules.")
integrity_cli = AppGroup("integrity", help="Therapy integrity: booked schedules vs therapy.")
audit_cli = AppGroup("audit", help="The audit trail and its hash chain.")
db_cli = AppGroup("db", help="Database roles (PostgreSQL).")
jobs_cli = AppGroup("jobs", help="The scheduler's periodic jobs.")
fhir_cli = AppGroup("fhir", help="FHIR R4: the clinic-wide export.")


def _fail(exc: ServiceError) -> None:
    raise click.ClickException(exc.message)


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True)
@click.option("--role", required=True, type=click.Choice(["nurse", "physician", "admin"]))
@click.option("--password", required=True)
def create_user(email: str, full_name: str, role: str, password: str) -> None:
    """Create a staff account."""
    session = http.state().session_factory()
    try:
        user = user_service.create_user(
            session,
            system_actor("cli"),
            email=email,
            full_name=full_name,
            role=role,
            password=password,
            settings=http.settings().auth,
        )
    except ServiceError as exc:
        _fail(exc)
    else:
        click.echo(f"created {user.role} {user.email} (id {user.id})")
    finally:
        session.close()


@tokens_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", default="CLI token", show_default=True)
@click.option("--days", type=int, default=None, help="Days until expiry; 0 = never.")
def create_token(email: str, name: str, days: int | None) -> None:
    """Create an API token; the token alone is printed on the last line."""
    session = http.state().session_factory()
    try:
        user = user_service.get_user_by_email(session, email)
        if days is None:
            days = http.settings().auth.api_token_days
        plain, token = user_service.create_api_token(
            session, system_actor("cli"), user=user, name=name, days=days or None
        )
    except ServiceError as exc:
        _fail(exc)
    else:
        expiry = token.expires_at.date().isoformat() if token.expires_at else "never"
        click.echo(f"token {token.prefix}… for {user.email}, expires {expiry}:")
        click.echo(plain)
    finally:
        session.close()


@tokens_cli.command("revoke")
@click.option("--id", "token_id", type=int, required=True)
def revoke_token(token_id: int) -> None:
    """Revoke an API token by id."""
    session = http.state().session_factory()
    try:
        actor = Actor(label="system:cli", role=Role.ADMIN)
        token = user_service.revoke_api_token(session, actor, token_id)
    except ServiceError as exc:
        _fail(exc)
    else:
        click.echo(f"revoked token {token.id} ({token.prefix}…)")
    finally:
        session.close()


@centers_cli.command("create")
@click.option("--name", required=True)
@click.option("--timezone", required=True, help="IANA time zone, e.g. America/New_York.")
@click.option("--address", default=None)
@click.option(
    "--open",
    "opening",
    multiple=True,
    required=True,
    help="Days and hours, e.g. 'Mon-Fri 08:00-18:00' (repeatable).",
)
@click.option("--nurses", type=int, default=1, show_default=True, help="Nurses on each day.")
@click.option("--chairs", type=int, default=0, show_default=True, help="Chairs named Chair 1...")
@click.option("--kind", default="recliner", show_default=True)
@click.option("--holidays", "country", default=None, help="Public holidays: US or US-NY.")
def create_center(
    name: str,
    timezone: str,
    address: str | None,
    opening: tuple[str, ...],
    nurses: int,
    chairs: int,
    kind: str,
    country: str | None,
) -> None:
    """Create an infusion center with weekly hours and chairs."""
    session = http.state().session_factory()
    try:
        hours = tuple(
            day for text in opening for day in center_service.week_from_text(text, nurses)
        )
        holiday_country, _, subdivision = (country or "").partition("-")
        center = center_service.create_center(
            session,
            system_actor("cli"),
            center_service.CenterInput(
                name=name,
                timezone=timezone,
                address=address,
                holiday_country=holiday_country or None,
                holiday_subdivision=subdivision or None,
                hours=hours,
                chairs=tuple(
                    center_service.ChairInput(f"Chair {n}", kind) for n in range(1, chairs + 1)
                ),
            ),
        )
    except ServiceError as exc:
        _fail(exc)
    else:
        click.echo(f"created center {center.name} (id {center.id}) with {chairs} chairs")
    finally:
        session.close()


@centers_cli.command("list")
def list_centers() -> None:
    """Print the centers with their hours and chairs."""
    from app.services import clinic

    session = http.state().session_factory()
    try:
        for center in clinic.list_centers(session):
            days = ", ".join(
                f"{center_service.WEEKDAYS[h.weekday][:3]} {h.opens_at:%H:%M}-{h.closes_at:%H:%M}"
                f" ({h.nurses} nurses)"
                for h in center.opening_hours
            )
            active = sum(chair.active for chair in center.chairs)
            click.echo(f"{center.id}\t{center.name}\t{center.timezone}\t{active} chairs\t{days}")
    finally:
        session.close()


@demo_cli.command("load")
def load_demo() -> None:
    """Load the demo centers, users and patients (idempotent) and print the logins."""
    session = http.state().session_factory()
    try:
        logins = demo.load_demo_data(session, http.settings())
    except ServiceError as exc:
        _fail(exc)
    else:
        click.echo("Demo logins (development only):")
        for login in logins:
            click.echo(f"  {login.role:<10} {login.email:<24} {login.password}")
    finally:
        session.close()


@rules_cli.command("simulate")
@click.option("--patient", "patient_ids", type=int, multiple=True, help="Patient id (repeatable).")
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A rule file to try instead of the configured one.",
)
def simulate_rules(patient_ids: tuple[int, ...], rules_file: str | None) -> None:
    """Replay rules over history, as of each assessment date, and print what they would say."""
    from pathlib import Path

    from app.domain.rules.engine import RuleFileError
    from app.services import suggestions

    settings = http.settings()
    try:
        ruleset = suggestions.load_ruleset(settings, Path(rules_file) if rules_file else None)
    except RuleFileError as exc:
        raise click.ClickException(str(exc)) from exc
    session = http.state().session_factory()
    try:
        results = suggestions.simulate(session, settings, ruleset, list(patient_ids) or None)
    finally:
        session.close()
    for item in results:
        p = item.proposal
        click.echo(
            f"{item.as_of}  patient {item.patient_id}  {p.indicator:<8} {p.rule_id}: {p.summary}"
        )
    click.echo(f"{len(results)} suggestion(s) would have been made; nothing was saved.")


@integrity_cli.command("check")
def integrity_check() -> None:
    """List every patient whose booked infusions break a therapy rule; exit 1 if any do."""
    from app.services import integrity

    session = http.state().session_factory()
    try:
        found = integrity.check_everyone(session, http.settings())
    finally:
        session.close()
    for patient_id, violations in found.items():
        for violation in violations:
            kind = "hard" if violation.hard else "soft"
            click.echo(f"patient {patient_id} [{kind}] {violation.message}")
    if found:
        raise click.ClickException(f"{len(found)} patient(s) with therapy-rule violations")
    click.echo("every patient's booked infusions match the approved therapy")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Walk the audit hash chain; name the first broken link and exit 1, or say it holds."""
    from app.services import audit

    session = http.state().session_factory()
    try:
        broken = audit.verify_chain(session)
        links = session.scalar(sa.select(sa.func.count()).select_from(AuditLink))
    finally:
        session.close()
    if broken is not None:
        where = f"link {broken.seq}" if broken.seq is not None else "outside the chain"
        event = f", event {broken.event_id}" if broken.event_id is not None else ""
        raise click.ClickException(f"audit chain broken at {where}{event}: {broken.problem}")
    click.echo(f"audit chain holds: {links} links, each event as written")


@db_cli.command("grant-app-role")
@click.option("--role", default="ivig_app", show_default=True)
def grant_app_role(role: str) -> None:
    """As the owner: let the app's role use every table, the audit tables append-only."""
    from app.db import make_engine
    from app.db_roles import grant_app_role as grant

    engine = make_engine(http.settings().app.database_url)
    try:
        with engine.begin() as conn:
            grant(conn, role)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    click.echo(f"{role}: may read and write care data; audit_events and audit_chain append-only")


@jobs_cli.command("list")
def list_jobs() -> None:
    """Print each job: name, schedule, next run (UTC) and how its last run ended."""
    from app.services import jobruns
    from app.web.admin import next_runs
    from scheduler import jobs

    settings = http.settings()
    session = http.state().session_factory()
    try:
        upcoming = next_runs(session, settings)
        runs = jobruns.recent_runs(session, list(jobs.JOBS), per_job=1)
    finally:
        session.close()
    for job in jobs.JOBS.values():
        at = upcoming.get(job.name)
        last = runs.get(job.name) or []
        click.echo(
            f"{job.name}\t{job.describe(settings)}"
            f"\tnext {at.isoformat(timespec='seconds') if at else '-'}"
            f"\tlast {last[0].status if last else 'never ran'}"
        )


@jobs_cli.command("run")
@click.argument("name")
def run_job(name: str) -> None:
    """Run one job now and print how it ended; exit 1 if it failed, 2 if there is no such job."""
    from scheduler import jobs

    if name not in jobs.JOBS:
        raise click.BadParameter(
            f"no job {name!r}; jobs: {', '.join(sorted(jobs.JOBS))}", param_hint="NAME"
        )
    session = http.state().session_factory()
    try:
        run = jobs.run_in(session, http.settings(), name, process="cli")
        status, counts, error = run.status, dict(run.counts or {}), run.error
    finally:
        session.close()
    shown = ", ".join(f"{key}: {value}" for key, value in counts.items())
    click.echo(f"{name}: {status}" + (f" ({shown})" if shown else ""))
    if status == "failed":
        lines = [line for line in (error or "").splitlines() if line.strip()]
        raise click.ClickException(lines[-1].strip() if lines else "no error recorded")
    if status != "ok" and error:
        click.echo(error)


@fhir_cli.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def fhir_export_command(directory: Path) -> None:
    """Write every patient's record as FHIR R4 NDJSON (Bulk Data: one file per resource type,
    Patient.ndjson ..., one resource per line) into DIRECTORY."""
    from app.services import fhir_export

    session = http.state().session_factory()
    try:
        counts = fhir_export.export_ndjson(session, system_actor("cli"), directory, http.settings())
    except OSError as exc:
        raise click.ClickException(f"{directory}: {exc.strerror or exc}") from exc
    finally:
        session.close()
    for kind, count in counts.items():
        click.echo(f"{kind}.ndjson: {count}")


@click.command("import")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check everything, write nothing.")
def import_command(file: Path, dry_run: bool) -> None:
    """Import a clinic file (CSV: patients, weights, regimens, tapers, assessments, labs and
    past infusions; see app/domain/clinic_file.py). Nothing is written unless the whole file
    is clean; every bad row is listed by line and column, and the exit status is 1."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from app import clock
    from app.services import clinic, clinic_file

    raw = file.read_bytes()
    session = http.state().session_factory()
    try:
        centers = clinic.list_centers(session)
        today = clock.clinic_today(centers[0].timezone if centers else "UTC")
        with Progress(
            TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn()
        ) as bar:
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done)

            report = clinic_file.import_file(
                session,
                system_actor("cli:import"),
                raw,
                http.settings(),
                today,
                dry_run=dry_run,
                progress=progress,
            )
    finally:
        session.close()
    for problem in report.problems:
        click.echo(f"{file.name}: {problem}", err=True)
    if not report.ok:
        raise click.ClickException(f"{len(report.problems)} problem(s); nothing was imported")
    shown = ", ".join(f"{kind} {count}" for kind, count in report.counts.items())
    verb = "would import" if dry_run else "imported"
    click.echo(f"{file.name}: {verb} {shown} (sha256 {report.sha256[:12]})")


@click.command("export")
@with_appcontext
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def export_command(file: Path) -> None:
    """Write every patient and their recorded history as a clinic file (what import reads)."""
    from app.services import clinic_file

    session = http.state().session_factory()
    try:
        text, rows = clinic_file.export_file(session, system_actor("cli:export"))
    finally:
        session.close()
    try:
        file.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise click.ClickException(f"{file}: {exc.strerror or exc}") from exc
    click.echo(f"{file}: {rows} rows")


def init_app(app: Flask) -> None:
    app.cli.add_command(import_command)
    app.cli.add_command(export_command)
    for group in (
        users_cli,
        tokens_cli,
        centers_cli,
        demo_cli,
        rules_cli,
        integrity_cli,
        audit_cli,
        db_cli,
        jobs_cli,
        fhir_cli,
    ):
        app.cli.add_command(group)
