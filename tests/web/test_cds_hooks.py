"""CDS Hooks 2.0 over real HTTP: discovery, patient-view cards, JWT trust, feedback.

Keys are made here (cryptography), registered through [[cds.clients]] settings, and every
token is signed as an EHR would sign it; nothing is mocked.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app import clock, create_app
from app.cds import auth as cds_auth
from app.config import ConfigError
from app.models import AuditEvent, Infusion, InfusionStatus, StepStatus, Suggestion, TaperStep
from app.policy import EHR_CLIENT, Action, EhrAction, can, ehr_may
from app.services import adverse_events, assessments, suggestions, tapers
from app.services import cds as cds_service
from app.services import regimens as regimen_service
from tests.conftest import make_settings
from tests.db.clinic_fixtures import Clinic, at, give, make_center, make_patient, regimen_input

ISSUER = "https://ehr.hospital.test"
SYSTEM = "urn:oid:2.16.840.1.113883.3.0000"  # config.toml's placeholder system
BASE = "http://localhost"  # the test client's host: [cds].audience is "" in config.toml
SERVICE = "ivig-patient-view"
CALL_AUD = f"{BASE}/cds-services/{SERVICE}"
FEEDBACK_AUD = f"{CALL_AUD}/feedback"
START = dt.date(2026, 3, 2)  # a Monday, months before the run's today


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP384R1())


def public_jwk(private_key, kid: str) -> dict:
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        return jwk | {"kid": kid, "alg": "RS384", "use": "sig"}
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return jwk | {"kid": kid, "use": "sig"}  # no alg: the P-384 curve says ES384


@pytest.fixture
def settings(database_url, rsa_key, ec_key):
    jwks = {"keys": [public_jwk(rsa_key, "rsa-1"), public_jwk(ec_key, "ec-1")]}
    clients = [{"issuer": ISSUER, "name": "Hospital EHR", "jwks": json.dumps(jwks)}]
    return make_settings(database_url, cds={"clients": clients})


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def sign(key, *, kid="rsa-1", alg="RS384", aud=CALL_AUD, iss=ISSUER, lifetime=300, **claims):
    now = int(time.time())
    payload = {"iss": iss, "aud": aud, "iat": now, "exp": now + lifetime, "jti": str(uuid.uuid4())}
    payload.update(claims)
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fhir_patient(mrn: str | None, fhir_id: str = "1288992") -> dict:
    """The EHR's Patient as the prefetch template returns it."""
    resource = {
        "resourceType": "Patient",
        "id": fhir_id,
        "gender": "male",
        "birthDate": "1970-01-01",
        "active": True,
        "identifier": [{"system": "urn:oid:1.2.3.4.5", "value": "EHR-77"}],
    }
    if mrn is not None:
        resource["identifier"].append({"use": "usual", "system": SYSTEM, "value": mrn})
    return resource


def spec_request(mrn: str | None, **changes) -> dict:
    """The spec's example patient-view call, with our prefetch key."""
    body = {
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "http://hooks.smarthealthit.org:9080",
        "hook": "patient-view",
        "fhirAuthorization": {
            "access_token": "some-opaque-fhir-access-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/Patient.read user/Observation.read",
            "subject": "cds-service4",
        },
        "context": {"userId": "Practitioner/example", "patientId": "1288992", "encounterId": "89"},
        "prefetch": {"patient": fhir_patient(mrn)},
    }
    body.update(changes)
    return body


def call(client, key, body, **sign_args):
    return client.post(
        f"/cds-services/{SERVICE}", json=body, headers=bearer(sign(key, **sign_args))
    )


def send_feedback(client, key, entries, **sign_args):
    sign_args.setdefault("aud", FEEDBACK_AUD)
    return client.post(
        f"/cds-services/{SERVICE}/feedback",
        json={"feedback": entries},
        headers=bearer(sign(key, **sign_args)),
    )


def assert_card_schema(card: dict, *, suggestions: bool = False) -> None:
    """The CDS Hooks 2.0 card attributes this service sends (with `suggestions`, the cards may
    carry them: order-sign's corrected orders)."""
    assert isinstance(card["summary"], str) and 0 < len(card["summary"]) < 140
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"]
    assert card["source"]["topic"]["code"] and card["source"]["topic"]["system"]
    assert isinstance(card["uuid"], str) and card["uuid"]
    assert isinstance(card["detail"], str) and card["detail"]
    assert card["links"]
    for link in card["links"]:
        assert link["label"] and link["type"] == "absolute"
        assert link["url"].startswith(("https://", "http://"))
    for reason in card.get("overrideReasons", []):
        assert reason["code"] and reason["system"] and reason["display"]
    if not suggestions:
        assert "suggestions" not in card  # no actions: the EHR applies nothing
        return
    if "suggestions" in card:
        assert card["selectionBehavior"] in ("at-most-one", "any")
        for suggestion in card["suggestions"]:
            assert suggestion["label"] and isinstance(suggestion["uuid"], str)
            assert isinstance(suggestion.get("isRecommended", False), bool)
            for action in suggestion["actions"]:
                assert action["type"] in ("create", "update", "delete") and action["description"]
                if action["type"] in ("create", "update"):
                    assert action["resource"]["resourceType"]


# --- a clinic with patients the rules have something to say about -------------------------


@pytest.fixture
def clinic(db_session, make_user, settings) -> Clinic:
    """A non-responder: cycles given since March, CDASI activity barely moved at week 9."""
    center = make_center(db_session)
    holder = Clinic(center, make_user("physician"), make_user("nurse"), None)  # type: ignore[arg-type]
    holder.patient = make_patient(db_session, holder.nursing, center, settings, mrn="MRN-CDS-1")
    regimen_service.set_regimen(
        db_session,
        holder.doctor,
        holder.patient.id,
        regimen_input(starts_on=START),
        settings,
        now=at(START - dt.timedelta(days=3)),
    )
    assess(db_session, holder, settings, START - dt.timedelta(days=1), 40)
    for infusion in given_until(db_session, holder, START + dt.timedelta(weeks=9)):
        give(db_session, holder.nursing, infusion, settings)
    assess(db_session, holder, settings, START + dt.timedelta(weeks=9), 38)
    return holder


def assess(db_session, clinic, settings, day, activity):
    assessments.record_assessment(
        db_session,
        clinic.nursing,
        clinic.patient.id,
        assessments.AssessmentInput(assessed_on=day, scores={"cdasi_activity": activity}),
        day,
        after_record=suggestions.evaluation_hook(settings),
    )


def given_until(db_session, clinic, until):
    return db_session.scalars(
        sa.select(Infusion)
        .where(
            Infusion.patient_id == clinic.patient.id,
            Infusion.planned_date <= until,
            Infusion.status == InfusionStatus.SCHEDULED,
        )
        .order_by(Infusion.planned_date)
    ).all()


def pending(db_session, patient_id) -> list[Suggestion]:
    return list(
        db_session.scalars(
            sa.select(Suggestion).where(
                Suggestion.patient_id == patient_id, Suggestion.status == "pending"
            )
        )
    )


def topics(cards) -> list[str]:
    return [card["source"]["topic"]["code"] for card in cards]


# --- discovery -------------------------------------------------------------------------------


def test_discovery_lists_the_patient_view_service_with_its_prefetch(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    (service,) = [s for s in response.json["services"] if s["hook"] == "patient-view"]
    assert service["id"] == SERVICE and service["hook"] == "patient-view"
    assert service["title"] and service["description"]
    assert service["prefetch"] == {"patient": "Patient/{{context.patientId}}"}


# --- cards -----------------------------------------------------------------------------------


def test_the_specs_example_call_gets_valid_cards(client, clinic, rsa_key):
    response = call(client, rsa_key, spec_request("MRN-CDS-1"))
    assert response.status_code == 200, response.json
    cards = response.json["cards"]
    assert cards
    for card in cards:
        assert_card_schema(card)
    assert len({card["uuid"] for card in cards}) == len(cards)


def test_a_pending_suggestion_is_a_card_that_links_to_its_decision(
    client, clinic, db_session, rsa_key
):
    (suggestion,) = pending(db_session, clinic.patient.id)
    cards = call(client, rsa_key, spec_request("MRN-CDS-1")).json["cards"]
    card = next(c for c in cards if c["uuid"].startswith("suggestion."))
    assert card["uuid"].split(".")[1] == str(suggestion.id)
    assert card["summary"] == suggestion.summary
    assert card["indicator"] == suggestion.indicator == "warning"
    topic = card["source"]["topic"]
    assert topic["code"] == f"{suggestion.rule_id}@{suggestion.rule_version}"
    assert card["links"][0]["url"] == f"{BASE}/patients/{clinic.patient.id}#suggestions"
    assert {r["code"] for r in card["overrideReasons"]} >= {
        "patient-preference",
        "clinical-judgement",
    }
    assert "changes no therapy" in card["detail"]
    # The same suggestion keeps its card id from call to call (feedback names it).
    again = call(client, rsa_key, spec_request("MRN-CDS-1")).json["cards"]
    assert card["uuid"] in {c["uuid"] for c in again}
    # Nothing was decided by reading.
    db_session.refresh(suggestion)
    assert suggestion.status == "pending"


def test_an_overdue_course_review_is_a_warning(client, clinic, rsa_key):
    cards = call(client, rsa_key, spec_request("MRN-CDS-1")).json["cards"]
    (card,) = [c for c in cards if c["source"]["topic"]["code"] == "course-review-overdue"]
    assert card["indicator"] == "warning"
    assert card["links"][0]["url"].endswith(f"/patients/{clinic.patient.id}#course-review")


def test_an_open_serious_adverse_event_comes_first_as_critical(
    client, clinic, db_session, settings, rsa_key
):
    infusion = db_session.scalars(
        sa.select(Infusion).where(
            Infusion.patient_id == clinic.patient.id, Infusion.status == InfusionStatus.GIVEN
        )
    ).first()
    today = clock.clinic_today(clinic.center.timezone)
    adverse_events.record_adverse_event(
        db_session,
        clinic.nursing,
        infusion.id,
        adverse_events.AdverseEventInput(
            event_type="thrombosis",
            grade=3,
            occurred_on=today,
            serious=True,
            description="Left calf DVT *confirmed* by <b>ultrasound</b> [see](https://x.test)",
        ),
        today,
        after_record=suggestions.evaluation_hook(settings),
    )
    cards = call(client, rsa_key, spec_request("MRN-CDS-1")).json["cards"]
    assert [c["indicator"] for c in cards] == ["critical", "critical", "warning", "warning"]
    rules = {f"{s.rule_id}@{s.rule_version}" for s in pending(db_session, clinic.patient.id)}
    assert {r.split("@")[0] for r in rules} == {"safety_hold", "non_response_review"}
    assert set(topics(cards)) == rules | {"serious-adverse-event", "course-review-overdue"}
    event_card = next(c for c in cards if c["uuid"].startswith("adverse-event."))
    assert "thrombosis" in event_card["summary"]
    # What a nurse typed reaches the EHR as text, never as a link, a tag or emphasis.
    assert "\\*confirmed\\*" in event_card["detail"] and "\\<b\\>" in event_card["detail"]
    assert "\\[see\\](https://x.test)" in event_card["detail"]


def test_a_taper_step_due_is_an_info_card(client, db_session, make_user, settings, rsa_key):
    physician = make_user("physician")
    doctor = Clinic(None, physician, physician, None).doctor  # type: ignore[arg-type]
    patient = make_patient(db_session, doctor, make_center(db_session), settings, mrn="MRN-CDS-2")
    starts = dt.date.today() - dt.timedelta(days=60)
    tapers.create_plan(
        db_session,
        doctor,
        patient.id,
        tapers.PlanInput(
            drug="prednisone", start_mg=60.0, template="banded", starts_on=starts, reason="DM"
        ),
        settings,
        starts,
    )
    cards = call(client, rsa_key, spec_request("MRN-CDS-2")).json["cards"]
    (card,) = cards
    assert_card_schema(card)
    assert card["indicator"] == "info" and card["source"]["topic"]["code"] == "taper-step-due"
    step = db_session.get(TaperStep, int(card["uuid"].split(".")[1]))
    assert step.status == StepStatus.PLANNED and f"{step.mg_per_day:g} mg/day" in card["summary"]
    assert card["links"][0]["url"].endswith(f"/patients/{patient.id}#taper")


@pytest.mark.parametrize(
    "prefetch",
    [
        {"patient": fhir_patient("NO-SUCH-MRN")},  # not ours
        {"patient": fhir_patient(None)},  # no identifier in our system
        {"patient": None},  # the EHR has no such Patient
        {"patient": {"resourceType": "OperationOutcome", "issue": []}},
        {
            "patient": fhir_patient("MRN-CDS-1")
            | {
                "identifier": [
                    {"system": SYSTEM, "value": "MRN-CDS-1"},
                    {"system": SYSTEM, "value": "X"},
                ]
            }
        },  # two MRNs: ambiguous
    ],
)
def test_a_patient_we_cannot_match_gets_no_cards(client, clinic, rsa_key, prefetch):
    response = call(client, rsa_key, spec_request(None, prefetch=prefetch))
    assert response.status_code == 200 and response.json == {"cards": []}


def test_context_patient_id_is_never_taken_for_our_mrn(client, clinic, rsa_key):
    body = spec_request(None, context={"userId": "Practitioner/1", "patientId": "MRN-CDS-1"})
    body["prefetch"]["patient"]["id"] = "MRN-CDS-1"
    assert call(client, rsa_key, body).json == {"cards": []}


def test_every_call_is_audited_with_who_looked(client, clinic, db_session, rsa_key):
    body = spec_request("MRN-CDS-1")
    cards = call(client, rsa_key, body).json["cards"]
    row = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "cds.patient_view")
    ).one()
    assert row.actor_label == f"ehr:{ISSUER}" and row.actor_user_id is None
    assert row.entity_id == str(clinic.patient.id)
    assert row.after["user"] == "Practitioner/example"
    assert row.after["hook_instance"] == body["hookInstance"]
    assert row.after["cards"] == [c["uuid"] for c in cards]


def test_an_ec_p384_key_signs_es384_calls(client, clinic, ec_key):
    response = call(client, ec_key, spec_request("MRN-CDS-1"), kid="ec-1", alg="ES384")
    assert response.status_code == 200 and response.json["cards"]


# --- bad calls -------------------------------------------------------------------------------


def test_a_malformed_call_is_a_400_naming_what_is_wrong(client, rsa_key):
    raw = client.post(
        f"/cds-services/{SERVICE}",
        data="{not json",
        content_type="application/json",
        headers=bearer(sign(rsa_key)),
    )
    assert raw.status_code == 400 and raw.json["error"]["code"] == "bad_request"
    for body, field in [
        ({k: v for k, v in spec_request("M").items() if k != "hook"}, "hook"),
        ({k: v for k, v in spec_request("M").items() if k != "context"}, "context"),
        ({k: v for k, v in spec_request("M").items() if k != "hookInstance"}, "hookInstance"),
        (spec_request("M", hook="order-sign"), "hook"),
        (spec_request("M", context={"userId": "Practitioner/1"}), "context.patientId"),
        (spec_request("M", prefetch=[]), "prefetch"),
    ]:
        response = call(client, rsa_key, body)
        assert response.status_code == 400, field
        assert response.json["error"]["field"] == field
    mismatch = spec_request("M")
    mismatch["prefetch"]["patient"]["id"] = "another-patient"
    assert call(client, rsa_key, mismatch).json["error"]["field"] == "prefetch.patient.id"


def test_without_the_patient_prefetch_the_service_says_412(client, rsa_key):
    response = call(client, rsa_key, spec_request("M", prefetch={}))
    assert response.status_code == 412 and response.json["error"]["field"] == "prefetch.patient"


def test_an_unknown_service_is_a_404(client, rsa_key):
    response = client.post(
        "/cds-services/order-sign-later",
        json=spec_request("M"),
        headers=bearer(sign(rsa_key, aud=f"{BASE}/cds-services/order-sign-later")),
    )
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


# --- trusting CDS clients ---------------------------------------------------------------------


def unsigned(**claims) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": CALL_AUD, "iat": now, "exp": now + 300, "jti": "x"} | claims
    return f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'rsa-1'})}.{b64(payload)}."


def refused_tokens(rsa_key):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    return {
        "no token": None,
        "not a JWT": "not-a-jwt",
        "unknown issuer": sign(rsa_key, iss="https://other-ehr.test"),
        "unknown kid": sign(rsa_key, kid="rsa-2"),
        "bad signature": sign(stranger),
        "alg none": unsigned(),
        "HS384 with a shared secret": jwt.encode(
            {"iss": ISSUER, "aud": CALL_AUD, "iat": now, "exp": now + 60, "jti": "h"},
            "a-shared-secret-" + "x" * 48,
            algorithm="HS384",
            headers={"kid": "rsa-1"},
        ),
        "RS256, not a spec algorithm": sign(rsa_key, alg="RS256"),
        "expired": sign(rsa_key, iat=now - 600, exp=now - 300),
        "lives past the maximum": sign(rsa_key, lifetime=3600),
        "issued in the future": sign(rsa_key, iat=now + 600, exp=now + 800),
        "wrong aud": sign(rsa_key, aud=f"{BASE}/cds-services/another-service"),
        "aud of another server": sign(
            rsa_key, aud=f"https://elsewhere.test/cds-services/{SERVICE}"
        ),
        "no jti": sign(rsa_key, jti=None),
    }


def test_every_untrusted_call_is_a_401_and_discloses_nothing(client, clinic, db_session, rsa_key):
    for name, token in refused_tokens(rsa_key).items():
        headers = bearer(token) if token else {}
        response = client.post(
            f"/cds-services/{SERVICE}", json=spec_request("MRN-CDS-1"), headers=headers
        )
        assert response.status_code == 401, name
        assert response.json["error"]["code"] == "unauthenticated", name
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
        assert "cards" not in response.json
    assert not db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action.like("cds.%"))
    ).all()


def test_a_replayed_token_is_a_401(client, clinic, rsa_key):
    token = sign(rsa_key)
    first = client.post(
        f"/cds-services/{SERVICE}", json=spec_request("MRN-CDS-1"), headers=bearer(token)
    )
    assert first.status_code == 200
    again = client.post(
        f"/cds-services/{SERVICE}", json=spec_request("MRN-CDS-1"), headers=bearer(token)
    )
    assert again.status_code == 401 and "already used" in again.json["error"]["message"]


def test_aud_may_be_a_list_and_a_jti_is_per_issuer(client, clinic, rsa_key):
    response = call(client, rsa_key, spec_request("MRN-CDS-1"), aud=[CALL_AUD], jti="same")
    assert response.status_code == 200
    assert call(client, rsa_key, spec_request("MRN-CDS-1"), jti="same").status_code == 401


def test_a_used_jti_is_purged_once_its_token_expired(client, db_session, rsa_key, set_clock):
    from app.models import CdsTokenId

    assert call(client, rsa_key, spec_request("M"), jti="old").status_code == 200
    assert db_session.get(CdsTokenId, (ISSUER, "old")) is not None
    set_clock(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10))
    token = sign(rsa_key, iat=int(time.time()) + 600, exp=int(time.time()) + 800)
    client.post(f"/cds-services/{SERVICE}", json=spec_request("M"), headers=bearer(token))
    db_session.expire_all()
    assert db_session.get(CdsTokenId, (ISSUER, "old")) is None


def test_staff_credentials_do_not_open_the_cds_service(client, clinic, make_user, bearer, rsa_key):
    physician = make_user("physician")
    response = client.post(
        f"/cds-services/{SERVICE}", json=spec_request("MRN-CDS-1"), headers=bearer(physician)
    )
    assert response.status_code == 401


def test_the_configured_audience_is_the_one_a_token_must_name(
    database_url, session_factory, rsa_key, clinic
):
    jwks = json.dumps({"keys": [public_jwk(rsa_key, "rsa-1")]})
    settings = make_settings(
        database_url,
        cds={
            "audience": "https://ivig.example.org/",
            "clients": [{"issuer": ISSUER, "name": "EHR", "jwks": jwks}],
        },
    )
    client = create_app(settings, session_factory=session_factory).test_client()
    here = call(client, rsa_key, spec_request("MRN-CDS-1"))
    assert here.status_code == 401  # aud http://localhost/..., not the configured address
    there = f"https://ivig.example.org/cds-services/{SERVICE}"
    assert call(client, rsa_key, spec_request("MRN-CDS-1"), aud=there).status_code == 200


def test_with_no_client_registered_every_call_is_a_401(database_url, session_factory, rsa_key):
    client = create_app(make_settings(database_url), session_factory=session_factory).test_client()
    assert client.get("/cds-services").status_code == 200
    assert call(client, rsa_key, spec_request("M")).status_code == 401


# --- feedback -------------------------------------------------------------------------------


def suggestion_card(client, key, **sign_args) -> dict:
    cards = call(client, key, spec_request("MRN-CDS-1"), **sign_args).json["cards"]
    return next(c for c in cards if c["uuid"].startswith("suggestion."))


def test_an_override_rejects_the_suggestion_with_the_ehrs_reason(
    client, clinic, db_session, rsa_key
):
    card = suggestion_card(client, rsa_key)
    reason = next(r for r in card["overrideReasons"] if r["code"] == "clinical-judgement")
    response = send_feedback(
        client,
        rsa_key,
        [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": reason, "userComment": "Responding on skin exam."},
                "outcomeTimestamp": "2026-12-03T10:05:31Z",
            }
        ],
    )
    assert response.status_code == 200 and response.data == b""
    suggestion = db_session.get(Suggestion, int(card["uuid"].split(".")[1]))
    db_session.refresh(suggestion)
    assert suggestion.status == "rejected" and suggestion.decided_by_id is None
    assert suggestion.decision_reason == (
        "EHR override: Clinical judgement — Responding on skin exam."
    )
    reject = db_session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.action == "suggestion.reject", AuditEvent.entity_id == str(suggestion.id)
        )
    ).one()
    assert reject.actor_label == f"ehr:{ISSUER}"
    (row,) = db_session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "cds.feedback"))
    (entry,) = row.after["entries"]
    assert entry["result"] == "rejected" and entry["outcome_at"].startswith("2026-12-03T10:05:31")
    # The card is gone from the next call; the same feedback again changes nothing.
    assert card["uuid"] not in {
        c["uuid"] for c in call(client, rsa_key, spec_request("MRN-CDS-1")).json["cards"]
    }
    again = send_feedback(
        client,
        rsa_key,
        [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "outcomeTimestamp": "2026-12-03T10:06:00Z",
            }
        ],
    )
    assert again.status_code == 200
    db_session.refresh(suggestion)
    assert suggestion.decision_reason.startswith("EHR override: Clinical judgement")


def test_an_override_without_a_reason_says_so(client, clinic, db_session, rsa_key):
    card = suggestion_card(client, rsa_key)
    send_feedback(
        client,
        rsa_key,
        [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-03T10:05Z"}],
        aud=CALL_AUD,  # the service's own URL is taken for its feedback too
    )
    suggestion = db_session.get(Suggestion, int(card["uuid"].split(".")[1]))
    db_session.refresh(suggestion)
    assert suggestion.decision_reason == "EHR override: no reason given"


def test_accepting_a_card_changes_no_therapy_and_is_audited(client, clinic, db_session, rsa_key):
    card = suggestion_card(client, rsa_key)
    response = send_feedback(
        client,
        rsa_key,
        [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": "whatever"}],
                "outcomeTimestamp": "2026-12-03T10:05:31.52Z",
            }
        ],
    )
    assert response.status_code == 200
    assert [s.id for s in pending(db_session, clinic.patient.id)] == [
        int(card["uuid"].split(".")[1])
    ]
    (row,) = db_session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "cds.feedback"))
    assert row.after["entries"][0]["result"].startswith("noted")


def test_unknown_or_forged_cards_are_ignored_and_the_rest_applied(
    client, clinic, db_session, rsa_key
):
    card = suggestion_card(client, rsa_key)
    kind, ident, _mac = card["uuid"].split(".")
    entries = [
        {"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "overridden"},
        {"card": f"{kind}.{ident}.{'0' * 24}", "outcome": "overridden"},  # forged MAC
        {"card": f"{kind}.999999.{'0' * 24}", "outcome": "overridden"},
        {"card": card["uuid"], "outcome": "overridden"},
    ]
    for entry in entries:
        entry["outcomeTimestamp"] = "2026-12-03T10:05:31Z"
    assert send_feedback(client, rsa_key, entries).status_code == 200
    (row,) = db_session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "cds.feedback"))
    results = [e["result"] for e in row.after["entries"]]
    assert [r.split(":")[0] for r in results] == ["ignored", "ignored", "ignored", "rejected"]
    assert pending(db_session, clinic.patient.id) == []


def test_a_card_given_to_one_ehr_cannot_be_overridden_by_another(
    database_url, session_factory, rsa_key, ec_key, clinic, db_session
):
    clients = [
        {"issuer": ISSUER, "name": "A", "jwks": json.dumps({"keys": [public_jwk(rsa_key, "a")]})},
        {
            "issuer": "https://b.test",
            "name": "B",
            "jwks": json.dumps({"keys": [public_jwk(ec_key, "b")]}),
        },
    ]
    settings = make_settings(database_url, cds={"clients": clients})
    client = create_app(settings, session_factory=session_factory).test_client()
    card = suggestion_card(client, rsa_key, kid="a")
    entry = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-03T10:00Z"}
    response = send_feedback(client, ec_key, [entry], kid="b", alg="ES384", iss="https://b.test")
    assert response.status_code == 200
    assert len(pending(db_session, clinic.patient.id)) == 1


def test_bad_feedback_is_a_400_and_untrusted_feedback_a_401(client, clinic, db_session, rsa_key):
    card = suggestion_card(client, rsa_key)
    good = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-03T10:05Z"}
    for body, field in [
        ({}, "feedback"),
        ({"feedback": {}}, "feedback"),
        ({"feedback": [good | {"outcome": "ignored"}]}, "feedback.0.outcome"),
        ({"feedback": [{k: v for k, v in good.items() if k != "card"}]}, "feedback.0.card"),
        ({"feedback": [good | {"outcomeTimestamp": "yesterday"}]}, "feedback.0.outcomeTimestamp"),
        ({"feedback": [good | {"overrideReason": "no"}]}, "feedback.0.overrideReason"),
    ]:
        response = client.post(
            f"/cds-services/{SERVICE}/feedback",
            json=body,
            headers=bearer(sign(rsa_key, aud=FEEDBACK_AUD)),
        )
        assert response.status_code == 400, field
        assert response.json["error"]["field"] == field
    response = client.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": [good]})
    assert response.status_code == 401
    wrong_aud = send_feedback(client, rsa_key, [good], aud=f"{BASE}/cds-services")
    assert wrong_aud.status_code == 401
    assert len(pending(db_session, clinic.patient.id)) == 1


# --- units of the service ---------------------------------------------------------------------


def test_summaries_are_cut_under_140_at_a_word():
    text = "Serious adverse event " + "word " * 60
    cut = cds_service.short_summary(text)
    assert len(cut) < 140 and cut.endswith("…") and not cut.endswith(" …")
    assert cds_service.short_summary("  two\nlines ") == "two lines"
    assert len(cds_service.short_summary("x" * 500)) == 139


def test_markdown_of_plain_text_is_escaped_where_it_would_take_effect():
    text = "1. CK 3.5 x ULN (rising)\n- see *notes* #2\n# not a heading"
    assert cds_service.markdown_text(text) == (
        "1\\. CK 3.5 x ULN (rising)\n\\- see \\*notes\\* #2\n\\# not a heading"
    )


def test_the_ehr_is_its_own_kind_of_actor():
    assert ehr_may(EHR_CLIENT, EhrAction.RECORD_OVERRIDE)
    assert ehr_may(EHR_CLIENT, EhrAction.VIEW_CARDS)
    for role in ("physician", "nurse", "admin", None):
        assert not ehr_may(role, EhrAction.RECORD_OVERRIDE)
    assert not any(can(EHR_CLIENT, action) for action in Action)


@pytest.mark.parametrize(
    ("jwks", "message"),
    [
        ('{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}', "public key only"),
        ("not json", "cannot read the JWK Set file"),
        ('{"keys": []}', "no key"),
        ('{"nokeys": 1}', '"keys" list'),
    ],
)
def test_a_bad_key_set_stops_the_app_naming_the_client(database_url, jwks, message):
    settings = make_settings(
        database_url, cds={"clients": [{"issuer": ISSUER, "name": "EHR", "jwks": jwks}]}
    )
    with pytest.raises(ConfigError, match=rf"cds\.clients\.0\.jwks: .*{message}"):
        create_app(settings)


def test_keys_are_refused_unless_rs384_or_es384_with_a_kid(rsa_key, ec_key):
    p256 = ec.generate_private_key(ec.SECP256R1())
    for jwk in (
        public_jwk(p256, "p256"),
        public_jwk(rsa_key, "rs256") | {"alg": "RS256"},
        {k: v for k, v in public_jwk(ec_key, "x").items() if k != "kid"},
        jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key, as_dict=True) | {"kid": "private"},
    ):
        with pytest.raises(ValueError):
            cds_auth._public_key(jwk)


def test_a_key_set_file_is_read_relative_to_the_config_file(tmp_path, rsa_key):
    from app.config import load_settings

    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "ehr.jwks.json").write_text(
        json.dumps({"keys": [public_jwk(rsa_key, "rsa-1")]})
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[cds.clients]]\nissuer = "{ISSUER}"\nname = "EHR"\njwks = "keys/ehr.jwks.json"\n'
    )
    clients = cds_auth.load_clients(load_settings(config, environ={}))
    assert set(clients[ISSUER].keys) == {"rsa-1"}


def test_discovery_answers_head_and_options_as_flask_does(client):
    assert client.head("/cds-services").status_code == 200
    options = client.options(f"/cds-services/{SERVICE}")
    assert options.status_code == 200 and "POST" in options.headers["Allow"]
