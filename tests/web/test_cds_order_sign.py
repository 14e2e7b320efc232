"""CDS Hooks order-sign over real HTTP: draft IVIG orders checked with the pages' dosing rules,
corrected orders proposed, feedback recorded on the decision record, CORS for browsers.

The keys, the signing and the clinic come from tests/web/test_cds_hooks.py; nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from app import create_app
from app.models import AuditEvent, Infusion, InfusionStatus, Suggestion
from tests.conftest import login, make_settings
from tests.web import test_cds_hooks as hooks
from tests.web.test_cds_hooks import BASE, ISSUER, assert_card_schema, bearer, fhir_patient, sign

# The keys, the registered EHR and the non-responder clinic of the patient-view tests.
rsa_key = hooks.rsa_key
ec_key = hooks.ec_key
settings = hooks.settings
clinic = hooks.clinic

SERVICE = "ivig-order-sign"
CALL_AUD = f"{BASE}/cds-services/{SERVICE}"
FEEDBACK_AUD = f"{CALL_AUD}/feedback"
MRN = "MRN-CDS-1"  # the clinic fixture's patient: 100 kg, 175 cm, adjusted basis (82.28 kg)


def ivig_order(
    dose: float = 1.0,
    unit: str = "g/kg",
    days: int = 2,
    period: float = 4,
    period_unit: str = "wk",
    start: str | None = None,
    rate: tuple[float, str] | None = None,
    basis: str | None = None,
    ident: str = "ivig-draft-1",
) -> dict:
    """A draft R4 MedicationRequest for IVIG: `dose` per infusion day, `days` a cycle, every
    `period` `period_unit`."""
    dose_and_rate: list[dict] = [
        {
            "doseQuantity": {
                "value": dose,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            }
        }
    ]
    if rate is not None:
        dose_and_rate.append(
            {
                "rateQuantity": {
                    "value": rate[0],
                    "unit": rate[1],
                    "system": "http://unitsofmeasure.org",
                    "code": rate[1],
                }
            }
        )
    repeat: dict = {"frequency": days, "period": period, "periodUnit": period_unit}
    if start is not None:
        repeat["boundsPeriod"] = {"start": start}
    dosage: dict = {
        "text": f"{dose} {unit} daily for {days} days every {period} {period_unit}",
        "timing": {"repeat": repeat},
        "route": {"text": "intravenous"},
        "doseAndRate": dose_and_rate,
    }
    if basis is not None:
        dosage["extension"] = [
            {"url": "urn:ivig-assistant:fhir:dosing-weight-basis", "valueCode": basis}
        ]
    return {
        "resourceType": "MedicationRequest",
        "id": ident,
        "text": {"status": "generated", "div": "<div>Octagam</div>"},
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {"system": "urn:oid:1.2.3.99", "code": "OCT10", "display": "Octagam 10% IV"}
            ],
            "text": "Immune globulin (human) 10% (Octagam) IV solution",
        },
        "subject": {"reference": "Patient/1288992"},
        "dosageInstruction": [dosage],
    }


def spec_example_orders() -> list[dict]:
    """The two draft orders of the spec's R4 order-sign example (a pureed diet and an
    amoxicillin suspension), as docs/hooks/order-sign.md shows them."""
    return [
        {
            "resource": {
                "resourceType": "NutritionOrder",
                "id": "pureeddiet-simple",
                "identifier": [
                    {"system": "http://goodhealthhospital.org/nutrition-requests", "value": "123"}
                ],
                "status": "draft",
                "patient": {"reference": "Patient/1288992"},
                "dateTime": "2014-09-17",
                "orderer": {"reference": "Practitioner/example", "display": "Dr Adam Careful"},
                "oralDiet": {
                    "type": [
                        {
                            "coding": [
                                {
                                    "system": "http://snomed.info/sct",
                                    "code": "226211001",
                                    "display": "Pureed diet",
                                }
                            ],
                            "text": "Pureed diet",
                        }
                    ],
                    "schedule": [
                        {
                            "repeat": {
                                "boundsPeriod": {"start": "2015-02-10"},
                                "frequency": 3,
                                "period": 1,
                                "periodUnit": "d",
                            }
                        }
                    ],
                },
            }
        },
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "smart-MedicationRequest-103",
                "meta": {"lastUpdated": "2018-04-30T13:25:40.845-04:00"},
                "status": "draft",
                "intent": "order",
                "medicationCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                            "code": "617993",
                            "display": "Amoxicillin 120 MG/ML / clavulanate potassium 8.58 MG/ML "
                            "Oral Suspension",
                        }
                    ],
                    "text": "Amoxicillin 120 MG/ML / clavulanate potassium 8.58 MG/ML Oral "
                    "Suspension",
                },
                "subject": {"reference": "Patient/1288992"},
                "dosageInstruction": [
                    {
                        "text": "5 mL bid x 10 days",
                        "timing": {
                            "repeat": {
                                "boundsPeriod": {"start": "2005-01-04"},
                                "frequency": 2,
                                "period": 1,
                                "periodUnit": "d",
                            }
                        },
                        "doseQuantity": {
                            "value": 5,
                            "unit": "mL",
                            "system": "http://unitsofmeasure.org",
                            "code": "mL",
                        },
                    }
                ],
            }
        },
    ]


def order_sign_request(*orders: dict, mrn: str | None = MRN, **changes) -> dict:
    """The spec's order-sign call shape (R4 example): userId, patientId, encounterId and the
    draftOrders Bundle, with our Patient prefetch; the spec's two orders come first."""
    body = {
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "http://hooks.smarthealthit.org:9080",
        "hook": "order-sign",
        "context": {
            "userId": "PractitionerRole/123",
            "patientId": "1288992",
            "encounterId": "89284",
            "draftOrders": {
                "resourceType": "Bundle",
                "entry": [*spec_example_orders(), *({"resource": o} for o in orders)],
            },
        },
        "prefetch": {"patient": fhir_patient(mrn)},
    }
    body.update(changes)
    return body


def order_sign(client, key, body, **sign_args):
    sign_args.setdefault("aud", CALL_AUD)
    return client.post(
        f"/cds-services/{SERVICE}", json=body, headers=bearer(sign(key, **sign_args))
    )


def send_feedback(client, key, entries):
    return client.post(
        f"/cds-services/{SERVICE}/feedback",
        json={"feedback": entries},
        headers=bearer(sign(key, aud=FEEDBACK_AUD)),
    )


def cards_of(client, key, *orders, **changes) -> list[dict]:
    response = order_sign(client, key, order_sign_request(*orders, **changes))
    assert response.status_code == 200, response.json
    for card in response.json["cards"]:
        assert_card_schema(card, suggestions=True)
    return response.json["cards"]


def topic(card: dict) -> str:
    return card["source"]["topic"]["code"]


def rows(db_session) -> dict[str, int]:
    """What a call may write, counted."""
    return {
        "audit": db_session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)),
        "suggestions": db_session.scalar(sa.select(sa.func.count()).select_from(Suggestion)),
    }


# --- discovery ---------------------------------------------------------------------------------


def test_discovery_lists_the_order_sign_service_with_the_patient_prefetch(client):
    services = {s["id"]: s for s in client.get("/cds-services").json["services"]}
    service = services[SERVICE]
    assert service["hook"] == "order-sign" and service["title"] and service["description"]
    assert service["prefetch"] == {"patient": "Patient/{{context.patientId}}"}


# --- the specification's own example ---------------------------------------------------------


def test_the_specs_example_order_sign_call_gets_no_cards_for_orders_that_are_not_ivig(
    client, clinic, db_session, rsa_key
):
    assert cards_of(client, rsa_key) == []
    row = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "cds.order_sign")
    ).one()
    assert row.after["orders"] == 2 and row.after["ivig_orders"] == []
    assert row.after["user"] == "PractitionerRole/123"


def test_the_specs_example_without_a_known_patient_and_no_ivig_gets_no_cards(client, rsa_key):
    assert cards_of(client, rsa_key, mrn="NOBODY") == []


def test_a_sound_ivig_order_beside_the_specs_orders_gets_no_cards(client, clinic, rsa_key):
    # 1 g/kg a day for 2 days every 4 weeks on the adjusted weight: the label dose.
    assert cards_of(client, rsa_key, ivig_order(1.0)) == []


# --- hard stops ---------------------------------------------------------------------------------


def test_a_2_4_g_per_kg_cycle_is_critical_with_the_corrected_order(client, clinic, rsa_key):
    cards = cards_of(client, rsa_key, ivig_order(1.2))
    (card,) = cards
    assert card["indicator"] == "critical"
    assert topic(card) == "order-sign.dose@1"
    assert "2.4 g/kg per cycle" in card["summary"] and "above the maximum of 2.0" in card["detail"]
    assert card["links"][0]["url"] == f"{BASE}/patients/{clinic.patient.id}#current-regimen"
    assert {r["code"] for r in card["overrideReasons"]} >= {"clinical-judgement"}
    (suggestion,) = card["suggestions"]
    (action,) = suggestion["actions"]
    assert action["type"] == "update"
    fixed = action["resource"]
    assert fixed["id"] == "ivig-draft-1" and fixed["resourceType"] == "MedicationRequest"
    quantity = fixed["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    assert quantity == {
        "value": 1.0,
        "unit": "g/kg",
        "system": "http://unitsofmeasure.org",
        "code": "g/kg",
    }
    # Everything else as drafted; the texts that said the old dose are left out.
    original = ivig_order(1.2)
    assert fixed["dosageInstruction"][0]["timing"] == original["dosageInstruction"][0]["timing"]
    assert fixed["medicationCodeableConcept"] == original["medicationCodeableConcept"]
    assert "text" not in fixed and "text" not in fixed["dosageInstruction"][0]


def test_a_gram_dose_is_read_on_the_dosing_weight_and_corrected_to_whole_vials(
    client, clinic, rsa_key
):
    # 100 g a day x 2 on 82.28 kg (adjusted) = 2.43 g/kg per cycle.
    (card,) = cards_of(client, rsa_key, ivig_order(100, "g"))
    assert card["indicator"] == "critical" and topic(card) == "order-sign.dose@1"
    fixed = card["suggestions"][0]["actions"][0]["resource"]
    grams = fixed["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"]
    assert grams == 82  # 2 g/kg x 82.28 kg / 2 days = 82.28 g: 82 g in Octagam's vials


def test_too_many_days_and_too_short_an_interval_are_critical_without_a_correction(
    client, clinic, rsa_key
):
    cards = cards_of(client, rsa_key, ivig_order(0.25, days=7, period=7, period_unit="d"))
    assert {topic(c) for c in cards} == {"order-sign.days-per-cycle@1", "order-sign.interval@1"}
    assert all(c["indicator"] == "critical" and "suggestions" not in c for c in cards)
    days = next(c for c in cards if topic(c).startswith("order-sign.days"))
    assert "above the maximum of 5" in days["detail"]


def test_a_rate_above_the_product_maximum_is_critical_and_capped(client, clinic, rsa_key):
    # 0.08 mL/kg/min is twice Octagam's 0.04; in mL/h on the 82.28 kg dosing weight it is 197.5.
    (card,) = cards_of(client, rsa_key, ivig_order(1.0, rate=(0.08, "mL/kg/min")))
    assert topic(card) == "order-sign.rate@1" and card["indicator"] == "critical"
    fixed = card["suggestions"][0]["actions"][0]["resource"]
    assert fixed["dosageInstruction"][0]["doseAndRate"][1]["rateQuantity"]["value"] == 0.04
    (card,) = cards_of(client, rsa_key, ivig_order(1.0, rate=(300, "mL/h")))
    fixed = card["suggestions"][0]["actions"][0]["resource"]
    assert fixed["dosageInstruction"][0]["doseAndRate"][1]["rateQuantity"]["value"] == 197.4
    assert cards_of(client, rsa_key, ivig_order(1.0, rate=(190, "mL/h"))) == []


def test_a_patient_at_thrombosis_risk_has_the_lower_rate_cap(client, clinic, db_session, rsa_key):
    clinic.patient.thrombosis_risk = True
    db_session.commit()
    cards = cards_of(client, rsa_key, ivig_order(1.0, rate=(0.04, "mL/kg/min")))
    rate = next(c for c in cards if topic(c) == "order-sign.rate@1")
    fixed = rate["suggestions"][0]["actions"][0]["resource"]
    assert fixed["dosageInstruction"][0]["doseAndRate"][1]["rateQuantity"]["value"] == 0.03
    # 82.28 g a day at thrombosis risk: the 35 g/day soft stop, as on the pages.
    assert "order-sign.thrombosis-daily-dose@1" in {topic(c) for c in cards}


# --- soft stops ---------------------------------------------------------------------------------


def test_grams_not_in_whole_vials_are_a_warning_with_the_rounded_order(client, clinic, rsa_key):
    (card,) = cards_of(client, rsa_key, ivig_order(81.5, "g"))
    assert card["indicator"] == "warning" and topic(card) == "order-sign.vial-rounding@1"
    fixed = card["suggestions"][0]["actions"][0]["resource"]
    assert fixed["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 82


def test_another_dosing_weight_basis_is_a_warning_proposing_the_clinics(client, clinic, rsa_key):
    (card,) = cards_of(client, rsa_key, ivig_order(1.0, basis="actual"))
    assert card["indicator"] == "warning" and topic(card) == "order-sign.weight-basis@1"
    fixed = card["suggestions"][0]["actions"][0]["resource"]
    assert fixed["dosageInstruction"][0]["extension"] == [
        {"url": "urn:ivig-assistant:fhir:dosing-weight-basis", "valueCode": "adjusted"}
    ]
    assert cards_of(client, rsa_key, ivig_order(1.0, basis="adjusted")) == []


def test_a_cycle_too_soon_after_the_last_one_given_is_a_warning(
    client, clinic, db_session, rsa_key
):
    last = db_session.scalars(
        sa.select(Infusion)
        .where(Infusion.patient_id == clinic.patient.id, Infusion.status == InfusionStatus.GIVEN)
        .order_by(Infusion.planned_date.desc())
    ).first()
    first_day = db_session.scalar(
        sa.select(sa.func.min(Infusion.planned_date)).where(
            Infusion.patient_id == clinic.patient.id, Infusion.cycle_number == last.cycle_number
        )
    )
    soon = (first_day + dt.timedelta(days=20)).isoformat()
    (card,) = cards_of(client, rsa_key, ivig_order(1.0, start=soon))
    assert card["indicator"] == "warning" and topic(card) == "order-sign.interval-too-soon@1"
    assert "at least 25 days" in card["detail"]  # 4 weeks less the 3 days' tolerance
    fixed = card["suggestions"][0]["actions"][0]["resource"]
    planned = (first_day + dt.timedelta(weeks=4)).isoformat()
    assert fixed["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] == {"start": planned}
    on_time = (first_day + dt.timedelta(days=25)).isoformat()
    assert cards_of(client, rsa_key, ivig_order(1.0, start=on_time)) == []


def test_hard_stops_come_before_warnings(client, clinic, rsa_key):
    cards = cards_of(client, rsa_key, ivig_order(1.2, basis="actual"))
    assert [c["indicator"] for c in cards] == ["critical", "warning"]


def test_a_patient_without_a_height_gets_a_card_saying_the_order_cannot_be_checked(
    client, clinic, db_session, rsa_key
):
    clinic.patient.height_cm = None
    db_session.commit()
    (card,) = cards_of(client, rsa_key, ivig_order(1.0))
    assert card["indicator"] == "warning" and "no height" in card["detail"]
    assert "suggestions" not in card


# --- the round trip -----------------------------------------------------------------------------


def test_round_trip_a_critical_cards_suggestion_accepted_is_recorded(
    client, clinic, db_session, rsa_key
):
    (card,) = cards_of(client, rsa_key, ivig_order(1.2))
    (suggestion,) = card["suggestions"]
    before = rows(db_session)
    response = send_feedback(
        client,
        rsa_key,
        [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": suggestion["uuid"]}],
                "outcomeTimestamp": "2026-12-04T10:05:31Z",
            }
        ],
    )
    assert response.status_code == 200 and response.data == b""
    (record,) = db_session.scalars(
        sa.select(Suggestion).where(Suggestion.kind == "order_check")
    ).all()
    assert record.patient_id == clinic.patient.id
    assert record.rule_id == "order-sign.dose" and record.rule_version == 1
    assert record.status == "approved" and record.indicator == "critical"
    assert record.decided_by_id is None and record.decided_at is not None
    assert record.decision_reason.startswith("EHR accepted: the order was changed to 1 g/kg")
    assert record.summary == card["summary"]
    assert record.proposal["order"] == "MedicationRequest/ivig-draft-1"
    approve = db_session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.action == "suggestion.approve", AuditEvent.entity_id == str(record.id)
        )
    ).one()
    assert approve.actor_label == f"ehr:{ISSUER}" and approve.after["rule"] == "order-sign.dose"
    (row,) = db_session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "cds.feedback"))
    (entry,) = row.after["entries"]
    assert entry["result"] == "approved" and entry["suggestion_id"] == record.id
    assert rows(db_session) == {
        "audit": before["audit"] + 2,
        "suggestions": before["suggestions"] + 1,
    }
    # The EHR may send the same feedback again: it is recorded once.
    again = send_feedback(
        client,
        rsa_key,
        [{"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-12-04T10:06Z"}],
    )
    assert again.status_code == 200
    assert rows(db_session)["suggestions"] == before["suggestions"] + 1
    # The patient page shows it among the suggestions, decided, with its rule.
    login(client, clinic.physician.email)
    page = client.get(f"/patients/{clinic.patient.id}").get_data(as_text=True)
    assert "rule order-sign.dose v1 · approved" in page
    assert "EHR accepted: the order was changed to 1 g/kg" in page


def test_an_override_of_an_order_card_records_a_rejection_with_the_reason(
    client, clinic, db_session, rsa_key
):
    (card,) = cards_of(client, rsa_key, ivig_order(1.0, basis="actual"))
    response = send_feedback(
        client,
        rsa_key,
        [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {
                    "reason": card["overrideReasons"][1],
                    "userComment": "Obese patient: actual weight on purpose.",
                },
                "outcomeTimestamp": "2026-12-04T10:05:31Z",
            }
        ],
    )
    assert response.status_code == 200
    record = db_session.scalars(sa.select(Suggestion).where(Suggestion.kind == "order_check")).one()
    assert record.status == "rejected" and record.rule_id == "order-sign.weight-basis"
    assert record.decision_reason == (
        "EHR override: Clinical judgement — Obese patient: actual weight on purpose."
    )
    assert db_session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.action == "suggestion.reject", AuditEvent.entity_id == str(record.id)
        )
    ).one()


def test_a_forged_order_card_is_ignored(client, clinic, db_session, rsa_key):
    (card,) = cards_of(client, rsa_key, ivig_order(1.2))
    kind, ident, _mac = card["uuid"].split(".")
    forged = f"{kind}.{ident}.{'0' * 24}"
    entry = {"card": forged, "outcome": "accepted", "outcomeTimestamp": "2026-12-04T10:05Z"}
    assert send_feedback(client, rsa_key, [entry]).status_code == 200
    assert not db_session.scalars(
        sa.select(Suggestion).where(Suggestion.kind == "order_check")
    ).all()


# --- bad input ----------------------------------------------------------------------------------


def bad_calls() -> list[tuple[str, dict, int, str]]:
    """Calls malformed as CDS Hooks calls; an IVIG draft we cannot read is not one of them
    (unreadable_drafts: it gets a card, since a client ignores a service that errs)."""
    not_a_bundle = order_sign_request()
    not_a_bundle["context"]["draftOrders"] = {"resourceType": "Patient", "id": "1288992"}
    wrong_resource = order_sign_request({"resourceType": "Observation", "id": "o1"})
    entries_not_a_list = order_sign_request()
    entries_not_a_list["context"]["draftOrders"]["entry"] = {"resource": ivig_order(1.2)}
    no_drafts = order_sign_request()
    del no_drafts["context"]["draftOrders"]
    no_user = order_sign_request(ivig_order(1.2))
    del no_user["context"]["userId"]
    entry = "context.draftOrders.entry.2.resource"
    return [
        ("draftOrders missing", no_drafts, 400, "context.draftOrders"),
        ("draftOrders not a Bundle", not_a_bundle, 400, "context.draftOrders.resourceType"),
        ("entries not a list", entries_not_a_list, 400, "context.draftOrders.entry"),
        ("an Observation as an order", wrong_resource, 400, f"{entry}.resourceType"),
        ("no userId", no_user, 400, "context.userId"),
        (
            "an unknown patient",
            order_sign_request(ivig_order(1.2), mrn="NO-SUCH-MRN"),
            404,
            "prefetch.patient.identifier",
        ),
    ]


@pytest.mark.parametrize(
    ("name", "body", "status", "field"), bad_calls(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(
    client, clinic, db_session, rsa_key, name, body, status, field
):
    before = rows(db_session)
    response = order_sign(client, rsa_key, body)
    assert response.status_code == status, (name, response.json)
    assert response.json["error"]["field"] == field, name
    assert response.json["error"]["message"]
    assert "cards" not in response.json
    db_session.expire_all()
    assert rows(db_session) == before, name


def unreadable_drafts() -> list[tuple[str, dict, str, str]]:
    no_dose = ivig_order(1.0)
    no_dose["dosageInstruction"][0]["doseAndRate"] = []
    stu3_dose = ivig_order(1.0)  # the spec's example puts doseQuantity on the Dosage (pre-R4)
    dosage = stu3_dose["dosageInstruction"][0]
    dosage["doseQuantity"] = dosage.pop("doseAndRate")[0]["doseQuantity"]
    no_dosage = ivig_order(1.0)
    del no_dosage["dosageInstruction"]
    daily_no_end = ivig_order(0.4, days=1, period=1, period_unit="d")
    twice_daily = ivig_order(0.4, days=2, period=1, period_unit="d")
    twice_daily["dosageInstruction"][0]["timing"]["repeat"]["count"] = 5
    disagreeing = ivig_order(0.4, days=1, period=1, period_unit="d")
    disagreeing["dosageInstruction"][0]["timing"]["repeat"].update(
        count=4, boundsDuration={"value": 5, "unit": "d"}
    )
    two_products = ivig_order(1.0)
    two_products["medicationCodeableConcept"] = {"text": "Octagam 10% or Gamunex-C"}
    entry = "context.draftOrders.entry.2.resource"
    dose_at = f"{entry}.dosageInstruction.0.doseAndRate"
    repeat = f"{entry}.dosageInstruction.0.timing.repeat"
    return [
        ("no dose", no_dose, dose_at, "give the dose per infusion day"),
        ("a pre-R4 dose", stu3_dose, dose_at, "give a JSON array"),
        ("no dosage", no_dosage, f"{entry}.dosageInstruction", "give a JSON array"),
        ("a dose in mL", ivig_order(50, "mL"), f"{dose_at}.0.doseQuantity.code", "UCUM"),
        ("a negative dose", ivig_order(-1.0), f"{dose_at}.0.doseQuantity.value", "above 0"),
        ("days per cycle not whole", ivig_order(1.0, days=1.5), f"{repeat}.frequency", "whole"),
        (
            "an interval in months",
            ivig_order(1.0, period=1, period_unit="mo"),
            f"{repeat}.periodUnit",
            '"wk" or "d"',
        ),
        (
            "an interval not whole weeks",
            ivig_order(1.0, period=30, period_unit="d"),
            f"{repeat}.period",
            "whole weeks between cycles (got 30 d)",
        ),
        ("daily with no end", daily_no_end, repeat, "daily with no end"),
        ("twice daily", twice_daily, f"{repeat}.frequency", "2 infusions a day"),
        ("count and duration disagree", disagreeing, repeat, "disagree"),
        (
            "an unknown basis",
            ivig_order(1.0, basis="lean"),
            f"{entry}.dosageInstruction.0.extension.0.valueCode",
            "give one of",
        ),
        (
            "two products",
            two_products,
            f"{entry}.medicationCodeableConcept",
            "more than one IVIG product",
        ),
    ]


@pytest.mark.parametrize(
    ("name", "order", "field", "why"),
    unreadable_drafts(),
    ids=[case[0] for case in unreadable_drafts()],
)
def test_an_ivig_draft_that_cannot_be_read_gets_a_card_saying_so_and_the_others_are_checked(
    client, clinic, db_session, rsa_key, name, order, field, why
):
    """A CDS client ignores a service that errs: a 400 would let the IVIG order through
    unchecked. So the unreadable draft gets its card, and the call's other drafts theirs."""
    too_much = ivig_order(1.2, ident="ivig-draft-2")
    cards = cards_of(client, rsa_key, order, too_much)
    assert [(topic(c), c["indicator"]) for c in cards] == [
        ("order-sign.dose@1", "critical"),
        ("order-sign.order@1", "warning"),
    ], name
    unread = cards[1]
    assert unread["summary"].startswith("IVIG order cannot be checked: ")
    assert f"order cannot be checked: {field}: " in unread["detail"], name
    assert why in unread["detail"], name
    assert "suggestions" not in unread
    row = db_session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "cds.order_sign")
    ).one()
    assert row.after["ivig_orders"] == [f"MedicationRequest/ivig-draft-{n}" for n in (1, 2)]
    assert row.after["findings"] == ["order-sign.order@1", "order-sign.dose@1"]


def daily_for(days: int, dose: float = 0.4, by: str = "boundsDuration") -> dict:
    """The common IVIG order shape: once a day, every 1 d, for `days` days."""
    order = ivig_order(dose, days=1, period=1, period_unit="d")
    repeat = order["dosageInstruction"][0]["timing"]["repeat"]
    if by == "boundsDuration":
        repeat["boundsDuration"] = {
            "value": days,
            "unit": "day",
            "system": "http://unitsofmeasure.org",
            "code": "d",
        }
    else:
        repeat["count"] = days
    return order


@pytest.mark.parametrize("by", ["boundsDuration", "count"])
def test_daily_for_five_days_is_a_five_day_cycle_checked_with_the_interval_unknown(
    client, clinic, rsa_key, by
):
    # 0.4 g/kg a day for 5 days = 2 g/kg per cycle: the label dose, the interval not said.
    (card,) = cards_of(client, rsa_key, daily_for(5, by=by))
    assert topic(card) == "order-sign.interval-unknown@1" and card["indicator"] == "warning"
    assert "daily for 5 day(s)" in card["summary"]
    assert "not checked" in card["detail"] and "over 5 day(s)" in card["detail"]
    assert "suggestions" not in card
    # The dose is still judged on the five days: 0.5 g/kg a day is 2.5 g/kg per cycle.
    cards = cards_of(client, rsa_key, daily_for(5, dose=0.5, by=by))
    assert [(topic(c), c["indicator"]) for c in cards] == [
        ("order-sign.dose@1", "critical"),
        ("order-sign.interval-unknown@1", "warning"),
    ]
    assert "2.5 g/kg per cycle" in cards[0]["summary"]
    # Daily for 7 days is past the clinic's 5 days per cycle.
    cards = cards_of(client, rsa_key, daily_for(7, dose=0.25, by=by))
    assert "order-sign.days-per-cycle@1" in {topic(c) for c in cards}


def test_malformed_json_is_a_400(client, rsa_key):
    response = client.post(
        f"/cds-services/{SERVICE}",
        data='{"context": {"draftOrders": ',
        content_type="application/json",
        headers=bearer(sign(rsa_key, aud=CALL_AUD)),
    )
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_request"


def test_an_order_sign_call_without_the_patient_prefetch_is_a_412(client, clinic, rsa_key):
    response = order_sign(client, rsa_key, order_sign_request(ivig_order(1.2), prefetch={}))
    assert response.status_code == 412 and response.json["error"]["field"] == "prefetch.patient"


def test_a_patient_view_call_to_the_order_sign_service_is_a_400(client, rsa_key):
    body = order_sign_request(hook="patient-view")
    assert order_sign(client, rsa_key, body).json["error"]["field"] == "hook"


def test_an_order_sign_token_is_refused_at_the_patient_view_service(client, clinic, rsa_key):
    response = client.post(
        "/cds-services/ivig-order-sign",
        json=order_sign_request(ivig_order(1.2)),
        headers=bearer(sign(rsa_key, aud=f"{BASE}/cds-services/ivig-patient-view")),
    )
    assert response.status_code == 401


# --- CORS -------------------------------------------------------------------------------------


def test_a_preflight_from_a_browser_is_answered(client):
    response = client.options(
        f"/cds-services/{SERVICE}",
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"authorization", "content-type"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0


def test_answers_and_errors_carry_cors_headers(client, clinic, rsa_key):
    origin = {"Origin": "https://sandbox.cds-hooks.org"}
    discovery = client.get("/cds-services", headers=origin)
    assert discovery.headers["Access-Control-Allow-Origin"] == "*"
    answer = client.post(
        f"/cds-services/{SERVICE}",
        json=order_sign_request(ivig_order(1.2)),
        headers=bearer(sign(rsa_key, aud=CALL_AUD)) | origin,
    )
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == "*"
    refused = client.post(f"/cds-services/{SERVICE}", json={}, headers=origin)
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == "*"
    assert "WWW-Authenticate" in refused.headers["Access-Control-Expose-Headers"]


def test_the_pages_get_no_cors_headers(client):
    response = client.get("/login", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_configured_origins_are_the_only_ones_allowed(database_url, session_factory):
    settings = make_settings(database_url, cds={"cors_origins": ["https://ehr.example.org"]})
    client = create_app(settings, session_factory=session_factory).test_client()
    allowed = client.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    assert "Origin" in allowed.headers["Vary"]
    other = client.options(
        f"/cds-services/{SERVICE}",
        headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Methods" not in other.headers


def test_a_cors_origin_with_a_path_stops_the_app(database_url):
    from app.config import ConfigError

    with pytest.raises((ConfigError, ValueError), match="cors_origins"):
        make_settings(database_url, cds={"cors_origins": ["https://ehr.example.org/app"]})


# --- which drafts are IVIG --------------------------------------------------------------------


def test_other_immune_globulins_are_not_judged_as_ivig(client, clinic, rsa_key):
    hep_b = ivig_order(1.2)
    hep_b["medicationCodeableConcept"] = {"text": "Hepatitis B immune globulin (human) IM"}
    assert cards_of(client, rsa_key, hep_b) == []


def test_a_configured_code_marks_a_draft_as_ivig_and_a_draft_naming_no_product_is_the_regimens(
    database_url, session_factory, settings, clinic, rsa_key
):
    cds = settings.cds.model_dump()
    cds.update(ivig_codes=["urn:oid:1.2.3.99|IG-IV"], ivig_text=[], product_text={})
    client = create_app(
        settings.model_copy(update={"cds": type(settings.cds)(**cds)}),
        session_factory=session_factory,
    ).test_client()
    order = ivig_order(1.2)
    order["medicationCodeableConcept"] = {
        "coding": [{"system": "urn:oid:1.2.3.99", "code": "IG-IV", "display": "Local IG"}]
    }
    (card,) = cards_of(client, rsa_key, order)
    assert topic(card) == "order-sign.dose@1"  # checked as the regimen's Octagam 10%
    order["medicationCodeableConcept"]["coding"][0]["system"] = "urn:oid:other"
    assert cards_of(client, rsa_key, order) == []


def test_a_draft_naming_an_ivig_brand_the_clinic_does_not_stock_is_critical(
    client, clinic, rsa_key
):
    """Not checked as the patient's Octagam: the clinic's vial sizes and rate plan are not
    Privigen's. The product-free limits (g/kg per cycle, days, interval) are still judged."""
    order = ivig_order(1.0)
    order["medicationCodeableConcept"] = {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "999",
                "display": "Privigen 10% immune globulin intravenous (human)",
            }
        ],
        "text": "Privigen (immune globulin intravenous, human) 10% liquid",
    }
    (card,) = cards_of(client, rsa_key, order)
    assert topic(card) == "order-sign.product@1" and card["indicator"] == "critical"
    assert "Privigen" in card["summary"]
    assert "does not stock" in card["detail"] and "Octagam 10%" in card["detail"]
    assert "vial sizes and rate plan" in card["detail"]
    assert "suggestions" not in card
    # A brand alone, with no generic words, is IVIG too; too much of it is judged per kg.
    brand_only = ivig_order(1.2)
    brand_only["medicationCodeableConcept"] = {"text": "PANZYGA 10% IV"}
    cards = cards_of(client, rsa_key, brand_only)
    assert {topic(c) for c in cards} == {"order-sign.product@1", "order-sign.dose@1"}
    assert all(c["indicator"] == "critical" for c in cards)
    # A generic draft names no product: it is checked as the regimen's Octagam 10%.
    generic = ivig_order(1.0)
    generic["medicationCodeableConcept"] = {"text": "Immune globulin intravenous (human) 10%"}
    assert cards_of(client, rsa_key, generic) == []


def exported_shape(per_day_g_per_kg: float) -> dict:
    """A regimen as the FHIR export writes it (README: timing.repeat says days per cycle every
    interval): the "ordered" g/kg a day and the "calculated" grams, typed."""
    order = ivig_order(per_day_g_per_kg)
    order["medicationCodeableConcept"] = {"text": "Octagam 10%"}
    kind = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
    ordered, *_ = order["dosageInstruction"][0]["doseAndRate"]
    calculated = {
        "type": {"coding": [{"system": kind, "code": "calculated"}]},
        "doseQuantity": {
            "value": 82,
            "unit": "g",
            "system": "http://unitsofmeasure.org",
            "code": "g",
        },
    }
    ordered["type"] = {"coding": [{"system": kind, "code": "ordered"}]}
    order["dosageInstruction"][0]["doseAndRate"] = [calculated, ordered]
    return order


def test_an_order_in_the_exports_shape_is_read_by_its_ordered_dose(client, clinic, rsa_key):
    assert cards_of(client, rsa_key, exported_shape(1.0)) == []
    (card,) = cards_of(client, rsa_key, exported_shape(1.2))
    assert topic(card) == "order-sign.dose@1"
    fixed = card["suggestions"][0]["actions"][0]["resource"]
    (entry,) = fixed["dosageInstruction"][0]["doseAndRate"]  # the stale grams are left out
    assert entry["type"]["coding"][0]["code"] == "ordered"
    assert entry["doseQuantity"]["value"] == 1.0


def test_product_text_must_name_configured_products(database_url):
    from app.config import ConfigError

    with pytest.raises((ConfigError, ValueError), match=r"cds\.product_text: Nope"):
        make_settings(database_url, cds={"product_text": {"Nope": ["nope"]}})
