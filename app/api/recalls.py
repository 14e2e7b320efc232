"""JSON API: a lot recall, the patients who received a lot (as JSON, or CSV to download)."""

from __future__ import annotations

from typing import Any

from apiflask.schemas import FileSchema

from app import http
from app.api import bp, guarded
from app.csvout import csv_response
from app.domain.visit import normal_lot
from app.policy import Action
from app.schemas.recalls import RecipientList
from app.services import recalls


@bp.get("/lots/<lot>/recipients")
@guarded(Action.VIEW_PATIENTS)
@bp.output(RecipientList)
def lot_recipients(lot: str) -> Any:
    """The patients who received a lot, by date then patient.

    The lot is searched as vials record it: spaces removed, upper-case ("ab 12" finds AB12).
    A lot no one received answers 200 with an empty list. The same as CSV: `.../recipients.csv`.
    """
    return {"lot": normal_lot(lot), "recipients": recalls.recipients(http.db(), lot)}


@bp.get("/lots/<lot>/recipients.csv")
@guarded(Action.VIEW_PATIENTS)
@bp.output(
    FileSchema(type="string"),
    content_type="text/csv",
    description="UTF-8 CSV with a header row; dates in ISO 8601, times in UTC",
)
def lot_recipients_csv(lot: str) -> Any:
    """The patients who received a lot, as a CSV download.

    Columns: date, started_at_utc, ended_at_utc, patient_id, mrn, family_name, given_name,
    birth_date, infusion_id, status, center, product, lot_number, expires_on, vials,
    vial_count, grams. Saved as lot-<LOT>-recipients.csv; a cell that a spreadsheet would run
    as a formula starts with a quote.
    """
    return csv_response(
        recalls.export_rows(recalls.recipients(http.db(), lot)),
        f"lot-{normal_lot(lot)}-recipients.csv",
    )
