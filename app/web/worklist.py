"""Each user's worklist: notices to look at (e.g. a move of theirs a re-plan could not keep)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for

from app import http
from app.auth import require
from app.policy import Action
from app.services import worklist
from app.services.errors import ServiceError

bp = Blueprint("worklist", __name__, url_prefix="/worklist")


@bp.get("")
@require(Action.VIEW_SCHEDULE)
def mine() -> http.ResponseValue:
    """The signed-in user's open notices, newest first."""
    return render_template(
        "worklist/mine.html", notices=worklist.open_notices(http.db(), http.actor().user_id or 0)
    )


@bp.post("/<int:notice_id>/done")
@require(Action.VIEW_SCHEDULE)
def done(notice_id: int) -> http.ResponseValue:
    """Mark a notice done."""
    try:
        worklist.mark_done(http.db(), http.actor(), notice_id)
    except ServiceError as exc:
        flash(exc.message, "error")
    return redirect(url_for("worklist.mine"))
