"""names revision: the one content counter left counts only name changes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 10:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Feeds now read their own rows' versions; the counter every write used to update
    # (a lock point for the whole clinic) only follows patients', centers' and chairs' names.
    op.execute("UPDATE content_revisions SET name = 'names' WHERE name = 'feeds'")


def downgrade() -> None:
    op.execute("UPDATE content_revisions SET name = 'feeds' WHERE name = 'names'")
