"""A lot recall over 100,000 recorded vials: which patients received lot X, when.

Target (issue 13): `recalls.recipients()` for a lot that 8 patients received answers in at
most 50 ms median, in one SQL query. `python -m bench.recall` (BENCH_DB for PostgreSQL, as
the other benchmarks); BENCH_VIALS changes the number of vials (two per infusion).
"""

from __future__ import annotations

import datetime as dt
import os
import time

import sqlalchemy as sa
import sqlalchemy.orm as so

from app import create_app
from app.db import recorded_statements
from app.models import Center, Infusion, InfusionVial, Patient, Regimen
from app.services import recalls
from app.services import users as user_service
from app.services.context import system_actor
from bench.common import median_ms, settings_for, throwaway_database

START = dt.date(2025, 1, 6)
CYCLES = 25
#: Infusions in a row (same cycle, consecutive patients) that share a lot of each size.
PER_LOT = 8
#: The lot searched, typed as a nurse might: cycle 12's first lot of 30 g vials.
SEARCHED = "a 03125"
BATCH = 20_000


def _lot(prefix: str, infusion_index: int) -> str:
    return f"{prefix}{infusion_index // PER_LOT:05d}"


def _populate(session: so.Session, vials: int) -> int:
    """Patients with a regimen each, CYCLES given infusions each, two vial rows per infusion
    (30 g and 10 g, each of a lot shared by PER_LOT patients infused in a row)."""
    patients = max(1, vials // (2 * CYCLES))
    center = Center(name="Recall Center", timezone="America/New_York")
    session.add(center)
    session.flush()
    session.execute(
        sa.insert(Patient),
        [
            {
                "mrn": f"R-{n:06d}",
                "family_name": f"Family{n:06d}",
                "given_name": "Given",
                "sex": "female" if n % 2 else "male",
                "birth_date": dt.date(1950 + n % 50, 1 + n % 12, 1 + n % 28),
                "home_center_id": center.id,
                "height_cm": 165.0,
            }
            for n in range(patients)
        ],
    )
    ids = list(session.scalars(sa.select(Patient.id).order_by(Patient.id)))
    session.execute(
        sa.insert(Regimen),
        [
            {
                "patient_id": pid,
                "version": 1,
                "product": "Octagam 10%",
                "dose_g_per_kg": 1.0,
                "days_per_cycle": 1,
                "interval_weeks": 4,
                "weight_basis": "actual",
                "starts_on": START,
                "preferred_time": dt.time(9),
                "center_id": center.id,
                "weight_kg": 70.0,
                "height_cm": 165.0,
                "dosing_weight_kg": 70.0,
                "grams_per_day": 70.0,
                "grams_per_cycle": 70.0,
                "minutes_per_day": 240,
                "calculation": {},
                "soft_stops": [],
                "reason": "bench",
            }
            for pid in ids
        ],
    )
    regimen_of = dict(session.execute(sa.select(Regimen.patient_id, Regimen.id)).all())
    now = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    infusions: list[dict[str, object]] = []
    for cycle in range(CYCLES):
        day = START + dt.timedelta(weeks=4 * cycle)
        started = dt.datetime.combine(day, dt.time(14), tzinfo=dt.UTC)
        for pid in ids:
            infusions.append(
                {
                    "uid": f"{pid:08d}{cycle:04d}".ljust(32, "0"),
                    "patient_id": pid,
                    "regimen_id": regimen_of[pid],
                    "cycle_number": cycle + 1,
                    "day_number": 1,
                    "planned_date": day,
                    "cycle_planned_on": day,
                    "center_id": center.id,
                    "status": "given",
                    "planned_grams": 70.0,
                    "planned_vials": [[30, 2], [10, 1]],
                    "planned_minutes": 240,
                    "given_grams": 70.0,
                    "given_started_at": started,
                    "given_ended_at": started + dt.timedelta(minutes=240),
                    "sequence": 0,
                    "version": 1,
                    "shift_days": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    for start in range(0, len(infusions), BATCH):
        session.execute(sa.insert(Infusion), infusions[start : start + BATCH])
    id_of = dict(session.execute(sa.select(Infusion.uid, Infusion.id)).all())
    rows: list[dict[str, object]] = []
    for index, infusion in enumerate(infusions):
        for prefix, grams, count in (("A", 30.0, 2), ("B", 10.0, 1)):
            rows.append(
                {
                    "infusion_id": id_of[infusion["uid"]],
                    "product": "Octagam 10%",
                    "lot_number": _lot(prefix, index),
                    "expires_on": START + dt.timedelta(days=900),
                    "vial_grams": grams,
                    "count": count,
                    "created_at": now,
                }
            )
        if len(rows) >= BATCH:
            session.execute(sa.insert(InfusionVial), rows)
            rows = []
    if rows:
        session.execute(sa.insert(InfusionVial), rows)
    session.commit()
    return session.scalar(sa.select(sa.func.count()).select_from(InfusionVial)) or 0


def lot_recall(repeat: int = 500) -> dict[str, float]:
    vials = int(os.environ.get("BENCH_VIALS", "100000"))
    with throwaway_database() as url:
        app = create_app(settings_for(url))
        state = app.extensions["ivig"]
        session = state.session_factory()
        started = time.perf_counter()
        recorded = _populate(session, vials)
        populate_s = time.perf_counter() - started
        if state.engine.dialect.name == "postgresql":
            with state.engine.connect() as conn:  # fresh statistics, as autovacuum would have
                conn.execute(sa.text("ANALYZE"))
                conn.commit()
        with recorded_statements(state.engine) as statements:
            found = recalls.recipients(session, SEARCHED)
        assert found and {r.lot_number for r in found} == {"A03125"}
        service_ms = median_ms(lambda: recalls.recipients(session, SEARCHED), repeat)
        miss_ms = median_ms(lambda: recalls.recipients(session, "NO-SUCH-LOT"), repeat)

        user = user_service.create_user(
            session,
            system_actor("bench"),
            email="nurse@bench.test",
            full_name="Bench Nurse",
            role="nurse",
            password="bench-password",
            settings=state.settings.auth,
        )
        token, _ = user_service.create_api_token(
            session, system_actor("bench"), user=user, name="bench", days=1
        )
        session.close()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        path = f"/api/v1/lots/{SEARCHED.replace(' ', '%20')}/recipients"
        answer = client.get(path, headers=headers)
        assert answer.status_code == 200 and answer.json is not None
        assert len(answer.json["recipients"]) == len(found)
        api_ms = median_ms(lambda: client.get(path, headers=headers), repeat // 2)
        csv_ms = median_ms(lambda: client.get(path + ".csv", headers=headers), repeat // 2)
        state.engine.dispose()
        return {
            "recall_vials": recorded,
            "recall_populate_s": populate_s,
            "recall_patients_of_the_lot": len({r.patient_id for r in found}),
            "recall_queries": len(statements),
            # SQLite's BEGIN IMMEDIATE is sent through the cursor too: count the SELECTs.
            "recall_selects": sum(1 for s in statements if s.lstrip().upper().startswith("SELECT")),
            "recall_service_median_ms": service_ms,
            "recall_unknown_lot_median_ms": miss_ms,
            "recall_api_json_median_ms": api_ms,
            "recall_api_csv_median_ms": csv_ms,
        }


def main() -> None:
    import json

    results = {"database": os.environ.get("BENCH_DB", "sqlite").split("://")[0]}
    results |= lot_recall()
    print(
        json.dumps(
            {k: round(v, 2) if isinstance(v, float) else v for k, v in results.items()}, indent=2
        )
    )


if __name__ == "__main__":
    main()
