"""Lot recalls: find the patients who received a lot, and download them as CSV."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from app import http
from app.auth import require
from app.csvout import csv_response
from app.domain.visit import normal_lot
from app.policy import Action
from app.services import recalls

bp = Blueprint("recalls", __name__)

#: Longest lot number the search box takes (a longer one cannot match a vial record).
_MAX_LOT = 100


def _lot_arg() -> str:
    return request.args.get("lot", "")[:_MAX_LOT]


@bp.get("/recalls")
@require(Action.VIEW_PATIENTS)
def index() -> http.ResponseValue:
    """Search a lot number: who received it, when, where and how much."""
    typed = _lot_arg()
    lot = normal_lot(typed)
    return render_template(
        "recalls/index.html",
        typed=typed,
        lot=lot,
        found=recalls.recipients(http.db(), lot) if lot else [],
    )


@bp.get("/recalls.csv")
@require(Action.VIEW_PATIENTS)
def export() -> http.ResponseValue:
    """The recipients of the lot as CSV (the same file as the API's)."""
    lot = normal_lot(_lot_arg())
    return csv_response(
        recalls.export_rows(recalls.recipients(http.db(), lot)), f"lot-{lot}-recipients.csv"
    )
