"""closures of a chair, a range or part of a day; users' home center

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 14:45:13.753904+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("closures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_until", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("chair_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("from_time", sa.Time(), nullable=True))
        batch_op.add_column(sa.Column("until_time", sa.Time(), nullable=True))
    # Every closure so far was one whole day of the whole center.
    op.execute("UPDATE closures SET closed_until = closed_on")
    with op.batch_alter_table("closures", schema=None) as batch_op:
        batch_op.alter_column("closed_until", existing_type=sa.Date(), nullable=False)
        batch_op.drop_constraint(batch_op.f("uq_closures_center_day"), type_="unique")
        batch_op.create_index(batch_op.f("ix_closures_center_id"), ["center_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_closures_chair_id_chairs"),
            "chairs",
            ["chair_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_check_constraint("range_in_order", "closed_on <= closed_until")
        batch_op.create_check_constraint(
            "part_of_day_in_order",
            "(from_time IS NULL AND until_time IS NULL)"
            " OR (from_time IS NOT NULL AND until_time IS NOT NULL AND from_time < until_time)",
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("home_center_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_users_home_center_id_centers"),
            "centers",
            ["home_center_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_users_home_center_id_centers"), type_="foreignkey")
        batch_op.drop_column("home_center_id")

    # Only whole-center single days existed before: the rest cannot be kept.
    op.execute(
        "DELETE FROM closures WHERE chair_id IS NOT NULL OR from_time IS NOT NULL"
        " OR closed_until <> closed_on"
    )
    with op.batch_alter_table("closures", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_closures_part_of_day_in_order"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_closures_range_in_order"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_closures_chair_id_chairs"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_closures_center_id"))
        batch_op.create_unique_constraint(
            batch_op.f("uq_closures_center_day"), ["center_id", "closed_on"]
        )
        batch_op.drop_column("until_time")
        batch_op.drop_column("from_time")
        batch_op.drop_column("chair_id")
        batch_op.drop_column("closed_until")
