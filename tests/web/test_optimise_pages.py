"""The "Optimise the next four weeks" pages through real HTTP: run, compare, accept, refuse."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app import clock, create_app
from app.models import Infusion, ScheduleProposal
from tests.conftest import csrf_of, login
from tests.db.test_optimiser import MONDAY, NOW, crowded

pytestmark = pytest.mark.usefixtures("frozen")


@pytest.fixture
def frozen():
    with clock.frozen_at(NOW):
        yield


@pytest.fixture
def client(quick, session_factory):
    app = create_app(quick, session_factory=session_factory)
    app.config["TESTING"] = True
    return app.test_client()


def test_a_nurse_optimises_compares_and_accepts(client, db_session, make_user, quick) -> None:
    clinic = crowded(db_session, make_user, quick)
    login(client, clinic.nurse.email)
    center = clinic.center.id
    page = client.get(f"/centers/{center}/optimise")
    assert page.status_code == 200
    assert "Optimise the next 4 weeks" in page.text
    ran = client.post(f"/centers/{center}/optimise", data={"csrf_token": csrf_of(client)})
    assert ran.status_code == 302
    shown = client.get(ran.headers["Location"])
    assert shown.status_code == 200
    row = re.search(r'data-key="peak_setups">.*?</tr>', shown.text, re.S)
    assert row is not None
    assert '<td data-testid="current">3</td>' in row.group(0)
    assert '<td data-testid="proposed">1 <span class="pill">better</span>' in row.group(0)
    proposal = db_session.scalars(sa.select(ScheduleProposal)).one()
    assert shown.text.count('data-testid="move"') == len(proposal.moves) > 0
    accepted = client.post(
        f"/centers/{center}/optimise/{proposal.id}/accept",
        data={"csrf_token": csrf_of(client)},
        follow_redirects=True,
    )
    assert accepted.status_code == 200
    assert f"Accepted: {len(proposal.moves)} infusion days moved" in accepted.text
    db_session.expire_all()
    monday = db_session.scalars(sa.select(Infusion).where(Infusion.planned_date == MONDAY)).all()
    assert len({i.starts_at for i in monday}) == 3
    again = client.post(
        f"/centers/{center}/optimise/{proposal.id}/accept", data={"csrf_token": csrf_of(client)}
    )
    assert again.status_code == 409
    assert "is accepted; optimise again" in again.text


def test_a_stale_proposal_is_refused_on_the_page(client, db_session, make_user, quick) -> None:
    clinic = crowded(db_session, make_user, quick)
    login(client, clinic.nurse.email)
    center = clinic.center.id
    client.post(f"/centers/{center}/optimise", data={"csrf_token": csrf_of(client)})
    proposal = db_session.scalars(sa.select(ScheduleProposal)).one()
    row = db_session.scalars(sa.select(Infusion).where(Infusion.planned_date == MONDAY)).first()
    assert row is not None
    row.version += 1  # another change lands before the nurse accepts
    db_session.commit()
    before = {i.id: i.starts_at for i in db_session.scalars(sa.select(Infusion))}
    refused = client.post(
        f"/centers/{center}/optimise/{proposal.id}/accept", data={"csrf_token": csrf_of(client)}
    )
    assert refused.status_code == 409
    assert "changed since it was made; optimise again" in refused.text
    assert "Out of date" in refused.text
    db_session.expire_all()
    assert {i.id: i.starts_at for i in db_session.scalars(sa.select(Infusion))} == before


def test_an_admin_may_look_but_not_run_it(client, db_session, make_user, quick) -> None:
    clinic = crowded(db_session, make_user, quick)
    admin = make_user("admin")
    login(client, admin.email)
    assert client.get(f"/centers/{clinic.center.id}/optimise").status_code == 200
    refused = client.post(
        f"/centers/{clinic.center.id}/optimise", data={"csrf_token": csrf_of(client)}
    )
    assert refused.status_code == 403
    assert db_session.scalars(sa.select(ScheduleProposal)).all() == []


def test_discarding_moves_nothing(client, db_session, make_user, quick) -> None:
    clinic = crowded(db_session, make_user, quick)
    login(client, clinic.nurse.email)
    center = clinic.center.id
    before = {i.id: i.version for i in db_session.scalars(sa.select(Infusion))}
    client.post(f"/centers/{center}/optimise", data={"csrf_token": csrf_of(client)})
    proposal = db_session.scalars(sa.select(ScheduleProposal)).one()
    done = client.post(
        f"/centers/{center}/optimise/{proposal.id}/discard",
        data={"csrf_token": csrf_of(client)},
        follow_redirects=True,
    )
    assert "Proposal set aside; nothing moved." in done.text
    db_session.expire_all()
    assert {i.id: i.version for i in db_session.scalars(sa.select(Infusion))} == before
    assert db_session.get(ScheduleProposal, proposal.id).state == "discarded"  # type: ignore[union-attr]


def test_an_unknown_proposal_is_404(client, db_session, make_user, quick) -> None:
    clinic = crowded(db_session, make_user, quick)
    login(client, clinic.nurse.email)
    assert client.get(f"/centers/{clinic.center.id}/optimise/999").status_code == 404
