"""Staff accounts through the pages and the API: what an admin, and each user, can do to an
account, and what the person on the other side notices."""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from app import clock
from app.models import AuditEvent, User
from tests.conftest import PASSWORD, csrf_of, login
from tests.web.test_care_pages import logged_in, text_of

NEW_PASSWORD = "a-new-password-9"


def post(client, path: str, **fields: str):
    return client.post(path, data={"csrf_token": csrf_of(client), **fields})


def test_an_admin_deactivates_a_nurse_who_is_signed_out_at_once(app, make_user, bearer, db_session):
    admin, nurse = make_user("admin"), make_user("nurse")
    nurse_browser = logged_in(app, nurse)
    headers = bearer(nurse)
    assert nurse_browser.get("/patients").status_code == 200
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 200

    page = logged_in(app, admin)
    listing = text_of(page.get("/admin/users"))
    assert f'data-email="{nurse.email}"' in listing
    assert "Deactivate Test Nurse? Their sessions and API tokens end at once." in listing
    done = post(page, f"/admin/users/{nurse.id}/deactivate")
    assert done.status_code == 302
    assert "is deactivated" in text_of(page.get("/admin/users"))

    assert nurse_browser.get("/patients").headers["Location"].startswith("/login")
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 401
    again = app.test_client()
    assert login(again, nurse.email).status_code == 401

    assert post(page, f"/admin/users/{nurse.id}/activate").status_code == 302
    assert login(app.test_client(), nurse.email).status_code == 302
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 401


def test_an_admin_cannot_lock_themselves_out(app, make_user, db_session):
    admin = make_user("admin")
    page = logged_in(app, admin)
    refused = post(page, f"/admin/users/{admin.id}/deactivate")
    assert refused.status_code == 403
    assert "you cannot deactivate your own account" in text_of(refused)
    demoted = post(page, f"/admin/users/{admin.id}/role", role="nurse")
    assert demoted.status_code == 403
    db_session.expire_all()
    assert db_session.get(User, admin.id).active and db_session.get(User, admin.id).role == "admin"


def test_a_role_change_applies_on_the_next_page(app, make_user, db_session):
    admin, nurse = make_user("admin"), make_user("nurse")
    nurse_browser = logged_in(app, nurse)
    assert nurse_browser.get("/suggestions").status_code == 403
    page = logged_in(app, admin)
    assert post(page, f"/admin/users/{nurse.id}/role", role="physician").status_code == 302
    assert nurse_browser.get("/suggestions").status_code == 200
    bad = post(page, f"/admin/users/{nurse.id}/role", role="surgeon")
    assert bad.status_code == 422 and "role: one of 'nurse', 'physician' or 'admin'" in text_of(bad)


def test_a_locked_out_nurse_is_unlocked_by_the_admin(app, make_user, settings):
    admin, nurse = make_user("admin"), make_user("nurse")
    tablet = app.test_client()
    for _ in range(settings.auth.max_failed_logins):
        assert login(tablet, nurse.email, "wrong password").status_code == 401
    assert "locked" in text_of(login(tablet, nurse.email))
    page = logged_in(app, admin)
    assert "locked out" in text_of(page.get("/admin/users"))
    assert post(page, f"/admin/users/{nurse.id}/unlock").status_code == 302
    assert "locked out" not in text_of(page.get("/admin/users"))
    assert login(tablet, nurse.email).status_code == 302


def test_a_reset_link_is_shown_once_and_sets_a_new_password(app, make_user, db_session):
    admin, nurse = make_user("admin"), make_user("nurse")
    page = logged_in(app, admin)
    shown = text_of(post(page, f"/admin/users/{nurse.id}/reset-link"))
    link = re.search(r'id="reset-url" readonly value="([^"]+)"', shown).group(1)
    path = link.removeprefix("http://localhost")
    assert path.startswith("/reset/")
    assert link not in text_of(page.get("/admin/users"))

    visitor = app.test_client()
    form = visitor.get(path)
    assert form.status_code == 200 and nurse.email in text_of(form)
    differ = post(visitor, path, password=NEW_PASSWORD, confirm="something-else-1")
    assert differ.status_code == 422 and "the two passwords differ" in text_of(differ)
    short = post(visitor, path, password="short", confirm="short")
    assert short.status_code == 422 and "at least 10 characters" in text_of(short)
    done = post(visitor, path, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    assert login(app.test_client(), nurse.email, PASSWORD).status_code == 401
    assert login(app.test_client(), nurse.email, NEW_PASSWORD).status_code == 302
    used = app.test_client().get(path)
    assert used.status_code == 410 and "used, replaced or has expired" in text_of(used)


def test_everyone_changes_their_own_password(app, make_user):
    physician = make_user("physician")
    here, elsewhere = logged_in(app, physician), logged_in(app, physician)
    page = here.get("/account/password")
    assert page.status_code == 200
    wrong = post(
        here,
        "/account/password",
        current_password="not mine",
        password=NEW_PASSWORD,
        confirm=NEW_PASSWORD,
    )
    assert wrong.status_code == 422 and "not your current password" in text_of(wrong)
    changed = post(
        here,
        "/account/password",
        current_password=PASSWORD,
        password=NEW_PASSWORD,
        confirm=NEW_PASSWORD,
    )
    assert changed.status_code == 302
    assert here.get("/patients").status_code == 200  # this tablet stays signed in
    assert elsewhere.get("/patients").status_code == 302  # the other one does not
    assert login(app.test_client(), physician.email, NEW_PASSWORD).status_code == 302


def test_an_idle_tablet_signs_out_and_offers_the_last_email_back(
    app, make_user, set_clock, settings
):
    nurse = make_user("nurse")
    tablet = logged_in(app, nurse)
    assert tablet.get("/patients").status_code == 200
    idle = dt.timedelta(minutes=settings.auth.session_idle_minutes + 1)
    set_clock(clock.now() + idle)
    gone = tablet.get("/patients")
    assert gone.status_code == 302 and gone.headers["Location"] == "/login?next=/patients"
    again = text_of(tablet.get(gone.headers["Location"]))
    assert "signed out after 15 minutes without use" in again
    assert f'name="email" value="{nurse.email}"' in again
    back = tablet.post(
        "/login?next=/patients",
        data={"email": nurse.email, "password": PASSWORD, "csrf_token": csrf_of(tablet)},
    )
    assert back.headers["Location"] == "/patients"


def test_the_api_manages_accounts_too(app, make_user, bearer, db_session):
    admin, nurse = make_user("admin"), make_user("nurse")
    headers = bearer(admin)
    api = app.test_client()
    role = api.put(f"/api/v1/users/{nurse.id}/role", json={"role": "physician"}, headers=headers)
    assert role.status_code == 200 and role.json["role"] == "physician"
    link = api.post(f"/api/v1/users/{nurse.id}/reset-link", headers=headers)
    assert link.status_code == 201 and "/reset/" in link.json["url"]
    off = api.post(f"/api/v1/users/{nurse.id}/deactivate", headers=headers)
    assert off.status_code == 200 and off.json["active"] is False
    assert app.test_client().get(link.json["url"]).status_code == 410  # ended with the account
    own = api.post(f"/api/v1/users/{admin.id}/deactivate", headers=headers)
    assert own.status_code == 403 and own.json["error"]["field"] == "user_id"
    mine = api.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "password": NEW_PASSWORD},
        headers=headers,
    )
    assert mine.status_code == 204
    assert api.get("/api/v1/me", headers=headers).status_code == 200  # the token stays
    logged = db_session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert {"user.role", "user.reset_link", "user.deactivate", "user.password_change"} <= set(
        logged
    )


def test_the_audit_trail_reads_field_by_field_and_exports_as_csv(app, make_user, db_session):
    import csv
    import io

    from tests.db.clinic_fixtures import make_center

    make_center(db_session)  # New York: the audit page's clock
    admin, nurse = make_user("admin"), make_user("nurse")
    page = logged_in(app, admin)
    post(page, f"/admin/users/{nurse.id}/role", role="physician")
    html = text_of(page.get("/admin/audit", query_string={"action": "user.role"}))
    assert "When (America/New_York)" in html
    assert re.search(r"<th scope=\"row\">role</th><td>nurse</td><td>→</td><td>physician</td>", html)
    exported = page.get("/admin/audit.csv", query_string={"action": "user."})
    assert exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0] == [
        "occurred_at_utc",
        "actor",
        "action",
        "entity",
        "entity_id",
        "field",
        "before",
        "after",
    ]
    role_rows = [r for r in rows[1:] if r[2] == "user.role"]
    assert role_rows == [
        [
            role_rows[0][0],
            admin.email,
            "user.role",
            "user",
            str(nurse.id),
            "role",
            "nurse",
            "physician",
        ]
    ]
    assert all(r[2].startswith("user.") for r in rows[1:])


def test_the_audit_trail_filters_by_patient(app, make_user, db_session, settings):
    from app.services import regimens as regimen_service
    from app.services.context import Actor
    from tests.db.clinic_fixtures import at, make_center, make_patient, regimen_input
    from tests.web.test_care_pages import next_monday

    center = make_center(db_session)
    doctor = make_user("physician")
    actor = Actor(label=doctor.email, user_id=doctor.id, role="physician")
    mine = make_patient(db_session, actor, center, settings, mrn="AU-1")
    other = make_patient(db_session, actor, center, settings, mrn="AU-2")
    for patient in (mine, other):
        regimen_service.set_regimen(
            db_session,
            actor,
            patient.id,
            regimen_input(starts_on=next_monday()),
            settings,
            now=at(next_monday() - dt.timedelta(days=3)),
        )
    page = logged_in(app, make_user("admin"))
    html = text_of(page.get("/admin/audit", query_string={"patient": "AU-1"}))
    rows = re.findall(
        r'data-testid="audit-row">\s*<td>[^<]*</td>\s*<td>[^<]*</td>\s*<td>([^<]+)</td>'
        r"\s*<td>([^<]+)</td>",
        html,
    )
    actions = {action for action, _entity in rows}
    assert {"patient.create", "regimen.set"} <= actions
    assert f"patient #{mine.id}" in html and f"patient #{other.id}" not in html
    regimen_rows = [entity for action, entity in rows if action == "regimen.set"]
    assert len(regimen_rows) == 1
    everyone = text_of(page.get("/admin/audit", query_string={"action": "regimen.set"}))
    assert everyone.count("regimen.set</td>") == 2
    nobody = text_of(page.get("/admin/audit", query_string={"patient": "NO-SUCH"}))
    assert "No events match." in nobody
