"""The review pack of a patient's IVIG course: one printed page, and the same lines as CSV."""

from __future__ import annotations

from flask import Blueprint, render_template

from app import clock, http
from app.auth import require
from app.csvout import csv_response
from app.policy import Action
from app.services import patients as patient_service
from app.services import review_pack as pack_service

bp = Blueprint("review_pack", __name__)


def _pack(patient_id: int) -> pack_service.ReviewPack:
    patient = patient_service.get_patient(http.db(), patient_id)
    today = clock.clinic_today(patient.home_center.timezone)
    return pack_service.review_pack(http.db(), patient_id, http.settings(), today)


@bp.get("/patients/<int:patient_id>/review-pack")
@require(Action.VIEW_PATIENTS)
def page(patient_id: int) -> http.ResponseValue:
    """The review pack on one printable page: the patient, the course, its regimen versions,
    the assessments with their TIS, the reviews, the authorisations and the next review."""
    return render_template("care/review_pack.html", pack=_pack(patient_id))


@bp.get("/patients/<int:patient_id>/review-pack.csv", endpoint="csv")
@require(Action.VIEW_PATIENTS)
def csv_download(patient_id: int) -> http.ResponseValue:
    """The review pack as CSV, saved as review-pack-<MRN>.csv: a header, then one row per line
    of the pack; the first column, `section`, says which (patient, regimen, assessment,
    review, authorisation) and `date` is that line's date. Columns
    (app.services.review_pack.CSV_HEADER):

    section, date,
    name, mrn, birth_date, home_center, treating_physician, first_cycle_on, cycles_given,
    grams_given, next_review_due, review_overdue, authorised_until  (patient; date: drawn up on)
    version, product, dose_g_per_kg, days_per_cycle, interval_weeks, grams_per_cycle, reason
    (regimen; date: the version's first cycle start)
    cdasi_activity, cdasi_damage, mmt8, ck, ck_uln, physician_global, patient_global, tis
    (assessment; date: assessed on)
    due_on, decision, note, reviewed_by  (review, with cdasi_activity, mmt8,
    physician_global and tis as recorded with it; date: reviewed on)
    reference, approved_by, ends_on  (authorisation; date: starts on)

    Dates are ISO 8601, review_overdue is yes or no, an empty cell is unknown or not this
    section's; text cells are defused for spreadsheets (app.csvout)."""
    pack = _pack(patient_id)
    return csv_response(pack_service.csv_rows(pack), f"review-pack-{pack.patient.mrn}.csv")
