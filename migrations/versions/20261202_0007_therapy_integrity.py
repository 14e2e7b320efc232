"""therapy integrity: planned cycle starts, pinned moves, waivers, amendments, notices

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:01:12.720535+00:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "infusion_amendments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("infusion_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("amended_by_id", sa.Integer(), nullable=True),
        sa.Column("amended_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["amended_by_id"],
            ["users.id"],
            name=op.f("fk_infusion_amendments_amended_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["infusion_id"],
            ["infusions.id"],
            name=op.f("fk_infusion_amendments_infusion_id_infusions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_infusion_amendments")),
    )
    with op.batch_alter_table("infusion_amendments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_infusion_amendments_infusion_id"), ["infusion_id"], unique=False
        )

    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("infusion_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["infusion_id"],
            ["infusions.id"],
            name=op.f("fk_notices_infusion_id_infusions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_notices_patient_id_patients"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notices_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index("ix_notices_user_open", ["user_id", "done_at"], unique=False)

    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolved_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("resolved_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("resolution_note", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_adverse_events_resolved_by_id_users"),
            "users",
            ["resolved_by_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_check_constraint(
            "resolved_after_occurred", "resolved_on IS NULL OR resolved_on >= occurred_on"
        )

    with op.batch_alter_table("infusions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cycle_planned_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("pinned_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("waived_rules", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("waiver_reason", sa.Text(), nullable=True))
    _backfill_cycle_planned_on()
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _drop_chair_guard()
    with op.batch_alter_table("infusions", schema=None) as batch_op:
        batch_op.alter_column("cycle_planned_on", existing_type=sa.Date(), nullable=False)
        batch_op.alter_column("waived_rules", existing_type=sa.JSON(), server_default=None)
        batch_op.create_foreign_key(
            batch_op.f("fk_infusions_pinned_by_id_users"),
            "users",
            ["pinned_by_id"],
            ["id"],
            ondelete="RESTRICT",
        )
    if sqlite:
        _create_chair_guard()

    with op.batch_alter_table("suggestions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_suggestions_step_id"), ["step_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_suggestions_step_id_taper_steps"),
            "taper_steps",
            ["step_id"],
            ["id"],
            ondelete="RESTRICT",
        )


def downgrade() -> None:
    with op.batch_alter_table("suggestions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_suggestions_step_id_taper_steps"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_suggestions_step_id"))
        batch_op.drop_column("step_id")

    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _drop_chair_guard()
    with op.batch_alter_table("infusions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_infusions_pinned_by_id_users"), type_="foreignkey")
        batch_op.drop_column("waiver_reason")
        batch_op.drop_column("waived_rules")
        batch_op.drop_column("pinned_by_id")
        batch_op.drop_column("cycle_planned_on")
    if sqlite:
        _create_chair_guard()

    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        batch_op.drop_constraint("resolved_after_occurred", type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_adverse_events_resolved_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("resolution_note")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("resolved_by_id")

    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_user_open")
        batch_op.drop_index(batch_op.f("ix_notices_patient_id"))
    op.drop_table("notices")
    with op.batch_alter_table("infusion_amendments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_infusion_amendments_infusion_id"))
    op.drop_table("infusion_amendments")


def _backfill_cycle_planned_on() -> None:
    """A cycle's planned start is its first day's date less that day's shift."""
    bind = op.get_bind()
    infusions = sa.table(
        "infusions",
        sa.column("id", sa.Integer),
        sa.column("patient_id", sa.Integer),
        sa.column("regimen_id", sa.Integer),
        sa.column("cycle_number", sa.Integer),
        sa.column("day_number", sa.Integer),
        sa.column("planned_date", sa.Date),
        sa.column("shift_days", sa.Integer),
        sa.column("cycle_planned_on", sa.Date),
    )
    rows = bind.execute(
        sa.select(
            infusions.c.id,
            infusions.c.patient_id,
            infusions.c.regimen_id,
            infusions.c.cycle_number,
            infusions.c.day_number,
            infusions.c.planned_date,
            infusions.c.shift_days,
        ).order_by(infusions.c.patient_id, infusions.c.planned_date, infusions.c.day_number)
    ).all()
    starts: dict[tuple[int, int, int], dt.date] = {}
    for row in rows:
        key = (row.patient_id, row.regimen_id, row.cycle_number)
        if row.day_number == 1 or key not in starts:
            starts[key] = row.planned_date - dt.timedelta(days=row.shift_days or 0)
        bind.execute(
            infusions.update().where(infusions.c.id == row.id).values(cycle_planned_on=starts[key])
        )


#: Statuses that hold a chair; two of them may never overlap on one chair (as in 0002).
_HOLDING = "('scheduled', 'given', 'partial')"


def _create_chair_guard() -> None:
    """SQLite: a batch copy of infusions drops its triggers, so they are made again (0002)."""
    for verb in ("INSERT", "UPDATE"):
        op.execute(
            f"CREATE TRIGGER infusions_no_overlap_{verb.lower()} BEFORE {verb} ON infusions "
            f"WHEN NEW.chair_id IS NOT NULL AND NEW.status IN {_HOLDING} "
            "BEGIN SELECT RAISE(ABORT, 'ex_infusions_chair_overlap: chair double-booked') "
            "WHERE EXISTS (SELECT 1 FROM infusions AS other WHERE other.chair_id = NEW.chair_id "
            f"AND other.id IS NOT NEW.id AND other.status IN {_HOLDING} "
            "AND other.starts_at < NEW.occupied_until AND NEW.starts_at < other.occupied_until); "
            "END"
        )


def _drop_chair_guard() -> None:
    op.execute("DROP TRIGGER IF EXISTS infusions_no_overlap_insert")
    op.execute("DROP TRIGGER IF EXISTS infusions_no_overlap_update")
