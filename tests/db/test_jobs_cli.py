"""`flask --app wsgi jobs list` and `jobs run NAME`: the scheduler's jobs from the shell."""

import datetime as dt

import sqlalchemy as sa

from app.models import JobRun
from scheduler import jobs as scheduler_jobs

MONDAY_NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def _explode(session, settings, now):
    raise RuntimeError("the boom job broke")


def _lines_by_job(output: str) -> dict[str, str]:
    return {line.split("\t", 1)[0]: line for line in output.splitlines() if line.strip()}


def test_list_shows_every_job_with_its_schedule_and_next_run(app, settings, set_clock):
    set_clock(MONDAY_NOON)
    result = app.test_cli_runner().invoke(args=["jobs", "list"])
    assert result.exit_code == 0, result.output
    lines = _lines_by_job(result.output)
    assert set(lines) == set(scheduler_jobs.JOBS)
    for name, job in scheduler_jobs.JOBS.items():
        fields = lines[name].split("\t")
        assert fields[1] == job.describe(settings)
        assert fields[2].startswith("next ")
        next_run = dt.datetime.fromisoformat(fields[2].removeprefix("next "))
        assert next_run.utcoffset() == dt.timedelta(0)
        assert next_run >= MONDAY_NOON
        assert fields[3] == "last never ran"
    assert lines["housekeeping"].split("\t")[:3] == [
        "housekeeping",
        "daily at 03:40 (UTC)",
        "next 2026-03-03T03:40:00+00:00",
    ]


def test_run_housekeeping_prints_ok_and_its_counts(app, db_session, set_clock):
    set_clock(MONDAY_NOON)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", "housekeeping"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "housekeeping: ok (suggestions_expired: 0, weight_flags: 0, job_runs_pruned: 0, "
        "cds_token_ids_purged: 0)"
    )
    run = db_session.scalars(sa.select(JobRun).where(JobRun.job == "housekeeping")).one()
    assert (run.status, run.process) == ("ok", "cli")
    listed = _lines_by_job(runner.invoke(args=["jobs", "list"]).output)
    assert listed["housekeeping"].endswith("\tlast ok")
    assert listed["review_due"].endswith("\tlast never ran")


def test_run_an_unknown_job_exits_2_naming_the_jobs(app, db_session):
    result = app.test_cli_runner().invoke(args=["jobs", "run", "nosuch"])
    assert result.exit_code == 2
    assert "no job 'nosuch'" in result.output
    for name in scheduler_jobs.JOBS:
        assert name in result.output
    assert db_session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 0


def test_run_a_failing_job_exits_1_with_the_error(app, db_session, monkeypatch):
    boom = scheduler_jobs.Job(
        "boom", "always fails", _explode, lambda settings: ("interval", {"minutes": 5})
    )
    monkeypatch.setitem(scheduler_jobs.JOBS, "boom", boom)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", "boom"])
    assert result.exit_code == 1
    assert "boom: failed" in result.stdout
    assert "Error: RuntimeError: the boom job broke" in result.stderr
    run = db_session.scalars(sa.select(JobRun).where(JobRun.job == "boom")).one()
    assert run.status == "failed" and "Traceback" in (run.error or "")
    listed = _lines_by_job(runner.invoke(args=["jobs", "list"]).output)
    assert listed["boom"].startswith("boom\tevery 5 min\tnext 20")
    assert listed["boom"].endswith("\tlast failed")
