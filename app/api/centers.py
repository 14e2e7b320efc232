"""JSON API: infusion centers, their hours, chairs and closures (set up by an admin)."""

from __future__ import annotations

from typing import Any

from app import http
from app.api import bp, guarded
from app.policy import Action
from app.schemas.centers import (
    CenterChangedOut,
    CenterCreateIn,
    CenterIn,
    CenterList,
    CenterOut,
    ChairChangedOut,
    ChairIn,
    ChairOut,
    ClosureAddedOut,
    ClosureIn,
    ClosureList,
)
from app.schemas.previews import PreviewOut
from app.services import centers as center_service
from app.services import clinic


@bp.get("/centers")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(CenterList)
def centers() -> Any:
    """Infusion centers with opening hours and chairs."""
    return {"centers": clinic.list_centers(http.db())}


@bp.post("/centers")
@guarded(Action.MANAGE_CENTERS)
@bp.input(CenterCreateIn, arg_name="body")
@bp.output(CenterOut, status_code=201)
def create_center(body: CenterCreateIn) -> Any:
    """Create a center with its weekly hours, nurse staffing and chairs (admin)."""
    chairs = tuple(chair.chair_input() for chair in body.chairs)
    return center_service.create_center(http.db(), http.actor(), body.center_input(chairs))


@bp.get("/centers/<int:center_id>")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(CenterOut)
def center(center_id: int) -> Any:
    """One center with its hours and chairs."""
    return clinic.get_center(http.db(), center_id)


@bp.put("/centers/<int:center_id>")
@guarded(Action.MANAGE_CENTERS)
@bp.input(CenterIn, arg_name="body")
@bp.output(CenterChangedOut)
def update_center(center_id: int, body: CenterIn) -> Any:
    """Replace a center's description and weekly hours (admin); infusions the new hours or
    holidays no longer hold are re-booked, and the answer says how many."""
    changed, totals = center_service.update_center(
        http.db(), http.actor(), center_id, body.center_input(), http.settings()
    )
    return {"center": changed, "replan": totals}


@bp.post("/centers/<int:center_id>/chairs")
@guarded(Action.MANAGE_CENTERS)
@bp.input(ChairIn, arg_name="body")
@bp.output(ChairOut, status_code=201)
def add_chair(center_id: int, body: ChairIn) -> Any:
    """Add a chair to a center (admin)."""
    return center_service.add_chair(http.db(), http.actor(), center_id, body.chair_input())


@bp.put("/chairs/<int:chair_id>")
@guarded(Action.MANAGE_CENTERS)
@bp.input(ChairIn, arg_name="body")
@bp.output(ChairChangedOut)
def update_chair(chair_id: int, body: ChairIn) -> Any:
    """Rename, describe, retire or bring back a chair (admin); a retired chair's bookings
    are re-booked."""
    chair, totals = center_service.update_chair(
        http.db(), http.actor(), chair_id, body.chair_input(), http.settings()
    )
    return {"chair": chair, "replan": totals}


@bp.get("/centers/<int:center_id>/closures")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(ClosureList)
def list_closures(center_id: int) -> Any:
    """The center's closures that have not ended yet, first first (public holidays are on
    the day board and the center's page)."""
    closures = center_service.closures_to_come(http.db(), center_id)
    return {"closures": [center_service.closure_view(c) for c in closures]}


@bp.post("/centers/<int:center_id>/closures/preview")
@guarded(Action.MANAGE_CENTERS)
@bp.input(ClosureIn, arg_name="body")
@bp.output(PreviewOut)
def preview_closure(center_id: int, body: ClosureIn) -> Any:
    """What the closure (the center or one chair; a day, a range, or part of each day) would
    move, and what could not be placed; saves nothing. Send its fingerprint with the closure
    to apply exactly this (admin)."""
    preview = center_service.preview_closure(
        http.db(), http.actor(), center_id, body.closure_input(), http.settings()
    )
    return preview.as_dict()


@bp.post("/centers/<int:center_id>/closures")
@guarded(Action.MANAGE_CENTERS)
@bp.input(ClosureIn, arg_name="body")
@bp.output(ClosureAddedOut, status_code=201)
def add_closure(center_id: int, body: ClosureIn) -> Any:
    """Close a center or one chair: whole days of the center shift the cycles on them within
    the window; a chair's closure or part of a day moves its bookings to another chair or
    time (admin). With a preview's fingerprint, a 409 carries the new preview if the
    bookings changed since."""
    closure, totals = center_service.add_closure(
        http.db(),
        http.actor(),
        center_id,
        body.closure_input(),
        http.settings(),
        fingerprint=body.fingerprint,
    )
    return center_service.closure_view(closure) | {"replan": totals}
