"""The daily housekeeping job: what keeps the record current without anyone asking.

- Pending suggestions nobody decided within [notices].suggestion_expiry_days expire.
- A current regimen whose patient's latest weight differs from the regimen's by more than
  [dosing].weight_change_review_percent puts a task on the treating physician's worklist.
- Job runs older than [scheduler].job_history_days are deleted.
- CDS Hooks JWT ids (cds_token_ids) whose token has expired are deleted: the token's own exp
  refuses a replay by then.

Cancelled appointments leave the feeds after [feeds].cancelled_retention_days by themselves:
each feed reads its window at every request (app.services.feeds), so no job has to.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.config import Settings
from app.models import CdsTokenId, Patient, Regimen, User, WeightMeasurement
from app.services import jobruns, reviews, scheduling, suggestions, worklist
from app.services.context import system_actor


def run(session: so.Session, settings: Settings, now: dt.datetime) -> dict[str, int]:
    system = system_actor("housekeeping")
    return {
        "suggestions_expired": suggestions.expire_undecided(session, settings, now, system),
        "weight_flags": flag_weight_changes(session, settings, now),
        "job_runs_pruned": jobruns.prune(session, settings, now),
        "cds_token_ids_purged": purge_token_ids(session, now),
    }


def purge_token_ids(session: so.Session, now: dt.datetime) -> int:
    """Delete the CDS Hooks JWT ids whose token expired (its exp refuses it by now)."""

    def one_batch() -> int:
        result = session.execute(sa.delete(CdsTokenId).where(CdsTokenId.expires_at < now))
        return int(getattr(result, "rowcount", 0) or 0)

    return jobruns.in_batch(session, one_batch)


def flag_weight_changes(session: so.Session, settings: Settings, now: dt.datetime) -> int:
    """A task for the physician of each patient whose weight moved past the threshold since
    the current regimen was set (once per regimen and weight)."""
    threshold = settings.dosing.weight_change_review_percent
    flagged = 0
    patient_ids = scheduling.patients_with_regimens(session)
    for start in range(0, len(patient_ids), settings.scheduler.batch_size):
        batch = patient_ids[start : start + settings.scheduler.batch_size]
        flagged += jobruns.in_batch(
            session, functools.partial(_flag_batch, session, batch, threshold, now)
        )
    return flagged


def _flag_batch(
    session: so.Session, batch: Sequence[int], threshold: float, now: dt.datetime
) -> int:
    current = (
        sa.select(Regimen.patient_id, sa.func.max(Regimen.version).label("version"))
        .where(Regimen.patient_id.in_(batch))
        .group_by(Regimen.patient_id)
        .subquery()
    )
    regimens = {
        r.patient_id: r
        for r in session.scalars(
            sa.select(Regimen).join(
                current,
                sa.and_(
                    Regimen.patient_id == current.c.patient_id,
                    Regimen.version == current.c.version,
                ),
            )
        )
    }
    latest: dict[int, WeightMeasurement] = {}
    for measured in session.scalars(
        sa.select(WeightMeasurement)
        .where(WeightMeasurement.patient_id.in_(batch))
        .order_by(
            WeightMeasurement.patient_id,
            WeightMeasurement.measured_on,
            WeightMeasurement.id,
        )
    ):
        latest[measured.patient_id] = measured
    doctor = so.aliased(User)
    patients = {
        p.id: (p, bool(active))
        for p, active in session.execute(
            sa.select(Patient, doctor.active)
            .outerjoin(doctor, doctor.id == Patient.treating_physician_id)
            .where(Patient.id.in_(batch))
        )
    }
    tasks: list[dict[str, Any]] = []
    for pid, regimen in regimens.items():
        weight = latest.get(pid)
        if weight is None or regimen.weight_kg <= 0:
            continue
        change = (weight.weight_kg - regimen.weight_kg) / regimen.weight_kg * 100
        if abs(change) <= threshold:
            continue
        patient, active = patients[pid]
        recipient = reviews.physician_for(patient, active)
        tasks.append(
            {
                "key": f"weight_change:{regimen.id}:{weight.id}",
                "kind": "weight_change",
                "patient_id": pid,
                "message": f"Weight {weight.weight_kg:g} kg on "
                f"{weight.measured_on} is {change:+.0f}% from the {regimen.weight_kg:g} kg "
                f"regimen version {regimen.version} was set with (threshold "
                f"{threshold:g}%); review the dose.",
                **recipient,
            }
        )
    return worklist.add_tasks(session, tasks, now)
