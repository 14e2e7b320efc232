"""The clinic reports: grams per month and product, response, adverse events and steroid
exposure, under the ledger's filters, as a page and as CSV."""

from __future__ import annotations

from flask import Blueprint, render_template

from app import http
from app.auth import require
from app.csvout import csv_response
from app.domain import clinic_report as report_rules
from app.policy import Action
from app.services import clinic_report as report_service
from app.services.stewardship import number
from app.web.report_filters import clinic_filter, clinic_today, form_values

bp = Blueprint("clinic_report", __name__)


@bp.get("/reports/clinic")
@require(Action.VIEW_REPORTS)
def page() -> http.ResponseValue:
    """The clinic reports under the filters, each figure beside its published reference."""
    report = report_service.clinic_report(
        http.db(), clinic_filter(), http.settings(), clinic_today()
    )
    return render_template(
        "reports/clinic.html",
        report=report,
        figure=report_service.figure_map(report),
        statuses=report_rules.STATUSES,
        status_labels=report_rules.STATUS_LABELS,
        grades=report_rules.GRADES,
        n=number,
        **form_values(),
    )


@bp.get("/reports/clinic.csv", endpoint="csv")
@require(Action.VIEW_REPORTS)
def csv() -> http.ResponseValue:
    """The clinic reports as CSV, saved as clinic-report-<as of>.csv: a header
    (app.services.clinic_report.CSV_HEADER), then one row per figure (section, group, item,
    value, and the published reference it stands beside); grams to 2 decimals, percentages to
    1. The same filters as the page."""
    report = report_service.clinic_report(
        http.db(), clinic_filter(), http.settings(), clinic_today()
    )
    return csv_response(
        report_service.csv_rows(report), f"clinic-report-{report.as_of.isoformat()}.csv"
    )
