"""The stewardship ledger (a patient's, and the clinic's) and the rule outcomes, with CSV."""

from __future__ import annotations

from flask import Blueprint, render_template

from app import clock, http
from app.auth import require
from app.csvout import csv_response
from app.domain import rule_outcomes, stewardship
from app.policy import Action
from app.services import patients as patient_service
from app.services import stewardship as ledger_service
from app.web.report_filters import clinic_filter, clinic_today, form_values, query_date

bp = Blueprint("stewardship", __name__)

#: Rows the clinic page lists (the CSV has every patient).
PAGE_LINES = 500


@bp.get("/patients/<int:patient_id>/stewardship")
@require(Action.VIEW_PATIENTS)
def patient(patient_id: int) -> http.ResponseValue:
    """A patient's ledger: grams given and saved against the starting regimen, by cause."""
    since, until = query_date("since"), query_date("until")
    today = clock.clinic_today(
        patient_service.get_patient(http.db(), patient_id).home_center.timezone
    )
    person, ledger = ledger_service.patient_ledger(
        http.db(), patient_id, http.settings(), today, since, until
    )
    return render_template(
        "reports/patient_ledger.html",
        p=person,
        ledger=ledger,
        since=since,
        until=until,
        **_words(),
    )


def _words() -> dict[str, object]:
    return {
        "causes": stewardship.CAUSES,
        "cause_labels": stewardship.CAUSE_LABELS,
        "currency": http.settings().stewardship.currency,
        "n": ledger_service.number,
    }


@bp.get("/reports/stewardship")
@require(Action.VIEW_REPORTS)
def clinic_ledger() -> http.ResponseValue:
    """The clinic's ledger: every patient's, and the total, under the filters."""
    shown = ledger_service.clinic_ledger(
        http.db(), clinic_filter(), http.settings(), clinic_today()
    )
    return render_template(
        "reports/stewardship.html",
        clinic=shown,
        lines=shown.lines[:PAGE_LINES],
        figures=ledger_service.figures,
        header=ledger_service.CSV_HEADER,
        **form_values(),
        **_words(),
    )


@bp.get("/reports/stewardship.csv", endpoint="clinic_csv")
@require(Action.VIEW_REPORTS)
def clinic_csv() -> http.ResponseValue:
    """The clinic's ledger as CSV, saved as stewardship-<as of>.csv: a header
    (app.services.stewardship.CSV_HEADER), a row per patient with a cycle given in the period,
    then a TOTAL row; grams and hours to 2 decimals, dates ISO 8601, cost empty while no price
    per gram is set. The same filters as the page."""
    shown = ledger_service.clinic_ledger(
        http.db(), clinic_filter(), http.settings(), clinic_today()
    )
    return csv_response(
        ledger_service.csv_rows(shown), f"stewardship-{shown.as_of.isoformat()}.csv"
    )


@bp.get("/reports/rules")
@require(Action.VIEW_REPORTS)
def rules() -> http.ResponseValue:
    """How each rule version's suggestions fared, with the rejection reasons."""
    return render_template(
        "reports/rules.html",
        outcomes=ledger_service.rule_outcomes(http.db()),
        outcome_names=rule_outcomes.OUTCOMES,
        outcome_labels=rule_outcomes.OUTCOME_LABELS,
        n=ledger_service.number,
    )


@bp.get("/reports/rules.csv", endpoint="rules_csv")
@require(Action.VIEW_REPORTS)
def rules_csv() -> http.ResponseValue:
    """The rule outcomes as CSV (app.services.stewardship.RULES_CSV_HEADER): a row per rule
    version, its count per outcome, the total, the share of decided ones approved, and the
    rejection reasons as "reason (count)" joined by " | "."""
    return csv_response(
        ledger_service.rules_csv_rows(ledger_service.rule_outcomes(http.db())),
        "rule-outcomes.csv",
    )
