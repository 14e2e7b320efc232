"""JSON API: a center's day board."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app import http
from app.api import bp, guarded
from app.policy import Action
from app.schemas.boards import DayBoardOut
from app.schemas.infusions import InfusionOut
from app.services import boards as board_service
from app.services.errors import InvalidInput


def board_infusion(infusion: Any) -> dict[str, Any]:
    return InfusionOut.model_validate(infusion).model_dump() | {
        "patient_name": infusion.patient.display_name
    }


@bp.get("/centers/<int:center_id>/day/<day>")
@guarded(Action.VIEW_SCHEDULE)
@bp.output(DayBoardOut)
def day_board(center_id: int, day: str) -> Any:
    """The center's chairs and infusions on a local date (YYYY-MM-DD)."""
    try:
        date = dt.date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidInput("day: give a date as YYYY-MM-DD", field="day") from exc
    board = board_service.day_board(http.db(), center_id, date, http.settings())
    return {
        "center_id": center_id,
        "date": date,
        "opens_at": board.hours[0] if board.hours else None,
        "closes_at": board.hours[1] if board.hours else None,
        "closure": board.closure,
        "part_closures": board.part_closures,
        "chairs": [
            {
                "chair_id": chair.id,
                "name": chair.name,
                "infusions": [board_infusion(i) for i in board.by_chair.get(chair.id, [])],
            }
            for chair in board.chairs
        ],
        "unbooked": [board_infusion(i) for i in board.unbooked],
    }
