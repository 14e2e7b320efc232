"""infusions by patient and cycle: the stewardship ledger groups each patient's cycles

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 20:20:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain CREATE INDEX on both databases (no batch copy: SQLite's chair triggers stay).
    op.create_index("ix_infusions_patient_cycle", "infusions", ["patient_id", "cycle_number"])


def downgrade() -> None:
    op.drop_index("ix_infusions_patient_cycle", table_name="infusions")
