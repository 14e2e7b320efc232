""" "Optimise the next four weeks": the scheduling nurse runs the optimiser on a center, sees
the plan as booked beside the proposal with their figures and every move, and accepts it
(the moves become reschedules) or sets it aside. Nothing moves before she accepts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import flash, redirect, render_template, url_for

from app import http
from app.auth import require
from app.models import Center, ScheduleProposal
from app.policy import Action
from app.services import clinic
from app.services import optimiser as service
from app.services.errors import ServiceError
from app.web.care import bp

#: The figures the page compares, in order: (key, label, better when lower).
FIGURES = (
    ("peak_setups", "Peak setups at once", True),
    ("days_setups_over_nurses", "Days with more setups at once than nurses", True),
    ("peak_patients", "Peak patients in chairs at once", True),
    ("days_patients_over_capacity", "Days with more patients than the nurses can watch", True),
    ("minutes_past_closing", "Minutes past closing (the day as the nurses would run it)", True),
    ("minutes_waited", "Minutes patients would wait for a nurse", True),
    ("chair_utilisation", "Chair utilisation", False),
    ("cycles_on_one_chair", "Cycles kept on one chair", False),
    ("minutes_from_preferred", "Minutes from the patients' preferred times", True),
    ("days_from_target", "Days from the planned cycle starts", True),
    ("days_unbooked", "Days without a chair", True),
)
_SHARES = frozenset({"chair_utilisation", "cycles_on_one_chair"})


def _shown(key: str, value: Any) -> str:
    if key in _SHARES:
        return f"{100 * float(value):.0f}%"
    return str(value)


def _figures(proposal: ScheduleProposal) -> list[dict[str, Any]]:
    rows = []
    for key, label, lower_is_better in FIGURES:
        now, then = proposal.current[key], proposal.proposed[key]
        better = then < now if lower_is_better else then > now
        worse = then > now if lower_is_better else then < now
        rows.append(
            {
                "key": key,
                "label": label,
                "current": _shown(key, now),
                "proposed": _shown(key, then),
                "change": "better" if better else "worse" if worse else "same",
            }
        )
    return rows


def _days(proposal: ScheduleProposal) -> list[dict[str, Any]]:
    """Each open day's peak setups as booked and as proposed, beside the nurses on shift."""
    current = {p["date"]: p for p in proposal.current["peaks"]}
    proposed = {p["date"]: p for p in proposal.proposed["peaks"]}
    first, last = proposal.from_on.isoformat(), proposal.until_on.isoformat()
    days = sorted(d for d in current.keys() | proposed.keys() if first <= d <= last)
    return [
        {
            "date": dt.date.fromisoformat(day),
            "nurses": (current.get(day) or proposed[day])["nurses"],
            "current": current.get(day, {}).get("peak_setups", 0),
            "proposed": proposed.get(day, {}).get("peak_setups", 0),
        }
        for day in days
    ]


def _moves(proposal: ScheduleProposal, center: Center) -> list[dict[str, Any]]:
    chairs = {chair.id: chair.name for chair in center.chairs}
    names = service.patient_names(http.db(), proposal)
    out = []
    for move in sorted(proposal.moves, key=lambda m: (m["date"], m["starts_at"])):
        before = move["from_starts_at"]
        out.append(
            {
                **move,
                "patient": names.get(move["patient_id"], "?"),
                "from_at": dt.datetime.fromisoformat(before) if before else None,
                "from_chair": chairs.get(move["from_chair_id"], "no chair"),
                "to_at": dt.datetime.fromisoformat(move["starts_at"]),
                "to_chair": chairs.get(move["chair_id"], "?"),
            }
        )
    return out


def _said(exc: ServiceError) -> str:
    """A refusal as a sentence for the page (without the field name it leads with)."""
    text = exc.message.removeprefix("proposal_id: ")
    return text[:1].upper() + text[1:] + "."


@bp.get("/centers/<int:center_id>/optimise")
@require(Action.VIEW_SCHEDULE)
def optimise_page(center_id: int) -> http.ResponseValue:
    """The button, and the latest proposal at the center if one waits for a decision."""
    center = clinic.get_center(http.db(), center_id)
    latest = service.latest_proposal(http.db(), center_id)
    settings = http.settings().optimiser
    return render_template(
        "care/optimise.html",
        center=center,
        latest=latest,
        weeks=settings.horizon_weeks,
        seconds=settings.time_limit_seconds,
    )


@bp.post("/centers/<int:center_id>/optimise")
@require(Action.RECORD_INFUSION)
def optimise_run(center_id: int) -> http.ResponseValue:
    """Run the optimiser (up to its time limit) and show what it proposes."""
    proposal = service.propose(http.db(), http.actor(), center_id, http.settings())
    return redirect(url_for("care.proposal", center_id=center_id, proposal_id=proposal.id))


@bp.get("/centers/<int:center_id>/optimise/<int:proposal_id>")
@require(Action.VIEW_SCHEDULE)
def proposal(center_id: int, proposal_id: int, status: int = 200) -> http.ResponseValue:
    """The plan as booked beside the proposal: figures, each day's setups, every move."""
    center = clinic.get_center(http.db(), center_id)
    found = service.get_proposal(http.db(), center_id, proposal_id)
    return (
        render_template(
            "care/proposal.html",
            center=center,
            proposal=found,
            figures=_figures(found),
            days=_days(found),
            moves=_moves(found, center),
        ),
        status,
    )


@bp.post("/centers/<int:center_id>/optimise/<int:proposal_id>/accept")
@require(Action.RECORD_INFUSION)
def accept_proposal(center_id: int, proposal_id: int) -> http.ResponseValue:
    """Apply the proposal's moves as reschedules, or say why not (nothing moves then)."""
    try:
        accepted = service.accept(http.db(), http.actor(), center_id, proposal_id, http.settings())
    except ServiceError as exc:
        flash(_said(exc), "error")
        return proposal(center_id, proposal_id, status=exc.status)
    count = len(accepted.moves)
    flash(
        f"Accepted: {count} infusion day{'' if count == 1 else 's'} moved. "
        "Calendars update; patients and nurses get change notices where due.",
        "success",
    )
    return redirect(url_for("care.proposal", center_id=center_id, proposal_id=proposal_id))


@bp.post("/centers/<int:center_id>/optimise/<int:proposal_id>/discard")
@require(Action.RECORD_INFUSION)
def discard_proposal(center_id: int, proposal_id: int) -> http.ResponseValue:
    """Set the proposal aside; the bookings stay as they are."""
    try:
        service.discard(http.db(), http.actor(), center_id, proposal_id)
    except ServiceError as exc:
        flash(_said(exc), "error")
        return proposal(center_id, proposal_id, status=exc.status)
    flash("Proposal set aside; nothing moved.", "success")
    return redirect(url_for("care.optimise_page", center_id=center_id))
