"""The admin's scheduler jobs page: every job, when it runs next, its last runs, "Run now"."""

import datetime as dt

import sqlalchemy as sa
from markupsafe import escape

from app.models import JobRun
from scheduler import jobs as scheduler_jobs
from tests.conftest import csrf_of, login
from tests.db.clinic_fixtures import make_center

MONDAY_NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def job_block(page: str, name: str) -> str:
    """The rows of one job (its summary row and its runs), up to the next job's."""
    start = page.index(f'<tr id="job-{name}"')
    following = page.find('<tr id="job-', start + 1)
    return page[start : following if following != -1 else len(page)]


def _explode(session, settings, now):
    raise RuntimeError("the boom job broke <here>")


def _every_five_minutes(settings):
    return "interval", {"minutes": 5}


def test_the_page_lists_every_job_with_its_schedule_and_next_run(
    client, make_user, db_session, settings, set_clock
):
    set_clock(MONDAY_NOON)
    make_center(db_session)  # America/New_York: the page shows the clinic's clock
    login(client, make_user("admin").email)
    response = client.get("/admin/jobs")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert set(scheduler_jobs.JOBS) == {
        "extend_horizons",
        "evaluate_rules",
        "review_due",
        "day_before_reminders",
        "housekeeping",
        "send_reminders",
    }
    for name, job in scheduler_jobs.JOBS.items():
        block = job_block(page, name)
        assert f'data-testid="job-{name}"' in block
        assert str(escape(job.title)) in block
        assert str(escape(job.describe(settings))) in block
        assert 'data-testid="job-next-run"><time datetime="' in block, name
        assert "never ran" in block
        assert f'action="/admin/jobs/{name}/run"' in block
    # Housekeeping runs daily at 03:40 in the scheduler's zone (UTC): next on Tuesday, which
    # is still Monday evening in New York.
    housekeeping = job_block(page, "housekeeping")
    assert "daily at 03:40 (UTC)" in housekeeping
    assert 'datetime="2026-03-03T03:40:00+00:00"' in housekeeping
    assert 'title="2026-03-03 03:40:00 UTC">2026-03-02 22:40</time>' in housekeeping
    assert "Next run (America/New_York)" in page
    assert 'href="/admin/jobs">Jobs</a>' in page  # in the admin's navigation


def test_run_now_records_the_run_and_the_page_shows_it(client, make_user, db_session, set_clock):
    set_clock(MONDAY_NOON)
    admin = make_user("admin")
    login(client, admin.email)
    response = client.post("/admin/jobs/housekeeping/run", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/jobs#job-housekeeping"

    page = client.get("/admin/jobs").get_data(as_text=True)
    assert "housekeeping ran: ok (suggestions_expired: 0, weight_flags: 0" in page  # the flash
    block = job_block(page, "housekeeping")
    assert block.count('data-testid="run"') == 1
    assert '<td data-testid="run-status">ok</td>' in block
    assert '<span class="pill">ok</span>' in block  # the last run, in the job's row
    for count in ("suggestions_expired: 0", "weight_flags: 0", "job_runs_pruned: 0"):
        assert f'<span class="pill" data-testid="run-count">{count}</span>' in block
    assert f"admin:{admin.email}" in block
    assert '<td data-testid="run-duration">0.0 s</td>' in block  # the clock stood still
    assert 'data-testid="run-error"' not in block
    assert "never ran" in job_block(page, "review_due")

    run = db_session.scalars(sa.select(JobRun).where(JobRun.job == "housekeeping")).one()
    assert (run.status, run.process) == ("ok", f"admin:{admin.email}")
    assert run.started_at == MONDAY_NOON and run.finished_at == MONDAY_NOON

    client.post("/admin/jobs/housekeeping/run", data={"csrf_token": csrf_of(client)})
    block = job_block(client.get("/admin/jobs").get_data(as_text=True), "housekeeping")
    assert block.count('data-testid="run"') == 2


def test_the_page_shows_the_last_five_runs_newest_first(client, make_user, db_session, set_clock):
    login(client, make_user("admin").email)
    for hour in range(7):
        set_clock(MONDAY_NOON + dt.timedelta(hours=hour))
        client.post("/admin/jobs/housekeeping/run", data={"csrf_token": csrf_of(client)})
    block = job_block(client.get("/admin/jobs").get_data(as_text=True), "housekeeping")
    assert block.count('data-testid="run"') == 5
    starts = [f'datetime="2026-03-02T{hour}:00:00+00:00"' for hour in (18, 17, 16, 15, 14)]
    positions = [block.index(start) for start in starts]
    assert positions == sorted(positions)
    assert 'datetime="2026-03-02T13:00:00+00:00"' not in block


def test_a_failing_job_is_recorded_and_its_traceback_shown(
    client, make_user, db_session, monkeypatch
):
    boom = scheduler_jobs.Job("boom", "always fails", _explode, _every_five_minutes)
    monkeypatch.setitem(scheduler_jobs.JOBS, "boom", boom)
    login(client, make_user("admin").email)
    response = client.post("/admin/jobs/boom/run", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 302

    response = client.get("/admin/jobs")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "boom failed: RuntimeError: the boom job broke &lt;here&gt;" in page  # the flash
    block = job_block(page, "boom")
    assert "every 5 min" in block
    assert '<td data-testid="run-status">failed</td>' in block
    assert '<details data-testid="run-error">' in block
    details = block[block.index('<details data-testid="run-error">') :]
    details = details[: details.index("</details>")]
    assert "Traceback (most recent call last)" in details
    assert "in _explode" in details
    assert "RuntimeError: the boom job broke &lt;here&gt;" in details
    assert "<here>" not in page  # escaped, never markup
    run = db_session.scalars(sa.select(JobRun).where(JobRun.job == "boom")).one()
    assert run.status == "failed" and run.finished_at is not None
    assert "RuntimeError: the boom job broke <here>" in (run.error or "")


def test_an_unknown_job_is_404(client, make_user):
    login(client, make_user("admin").email)
    response = client.post("/admin/jobs/nosuch/run", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 404
    assert "no job &#39;nosuch&#39;" in response.get_data(as_text=True)


def test_a_nurse_may_neither_see_nor_run_jobs(client, make_user, db_session):
    login(client, make_user("nurse").email)
    assert client.get("/admin/jobs").status_code == 403
    response = client.post("/admin/jobs/housekeeping/run", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 403
    assert db_session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 0
    assert 'href="/admin/jobs"' not in client.get("/").get_data(as_text=True)


def test_run_now_needs_the_csrf_token(client, make_user, db_session):
    login(client, make_user("admin").email)
    assert client.post("/admin/jobs/housekeeping/run").status_code == 400
    assert db_session.scalar(sa.select(sa.func.count()).select_from(JobRun)) == 0
