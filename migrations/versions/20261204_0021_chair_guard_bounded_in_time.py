"""the chair guard bounded in time: no booking holds a chair a day or more, so the SQLite
no-double-booking trigger searches one day of the chair's index instead of its whole history

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 19:45:00+00:00

PostgreSQL's exclusion constraint (gist) needs no bound; the check holds on both, and is
what makes app.services.scheduling.MAX_HOLD (the occupancy queries' lower bound) safe.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HOLDING = "('scheduled', 'checked_in', 'in_chair', 'given', 'partial')"
_CHECK = "chair_hold_under_a_day"


def _guard(bounded: bool) -> None:
    """The SQLite trigger pair that refuses a double booking (0017's, optionally bounded)."""
    bound = "AND other.starts_at > datetime(NEW.starts_at, '-1 day') " if bounded else ""
    for verb in ("INSERT", "UPDATE"):
        op.execute(f"DROP TRIGGER IF EXISTS infusions_no_overlap_{verb.lower()}")
        op.execute(
            f"CREATE TRIGGER infusions_no_overlap_{verb.lower()} BEFORE {verb} ON infusions "
            f"WHEN NEW.chair_id IS NOT NULL AND NEW.status IN {_HOLDING} "
            "BEGIN SELECT RAISE(ABORT, 'ex_infusions_chair_overlap: chair double-booked') "
            "WHERE EXISTS (SELECT 1 FROM infusions AS other WHERE other.chair_id = NEW.chair_id "
            f"AND other.id IS NOT NEW.id AND other.status IN {_HOLDING} "
            f"{bound}"
            "AND other.starts_at < NEW.occupied_until AND NEW.starts_at < other.occupied_until); "
            "END"
        )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint(
            _CHECK, "infusions", "occupied_until - starts_at < interval '1 day'"
        )
        return
    with op.batch_alter_table("infusions", schema=None) as batch_op:
        batch_op.create_check_constraint(
            _CHECK, "julianday(occupied_until) - julianday(starts_at) < 1"
        )
    # A batch copy of infusions drops its triggers: made again, bounded.
    _guard(bounded=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f(f"ck_infusions_{_CHECK}"), "infusions", type_="check")
        return
    with op.batch_alter_table("infusions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(f"ck_infusions_{_CHECK}"), type_="check")
    _guard(bounded=False)
