"""audit chain: each audit event's hash covers it and the link before it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 08:40:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_chain",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["audit_events.id"],
            name=op.f("fk_audit_chain_event_id_audit_events"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_chain")),
        sa.UniqueConstraint("event_id", name=op.f("uq_audit_chain_event_id")),
    )
    _chain_existing_events()
    _create_guard()


def downgrade() -> None:
    _drop_guard()
    op.drop_table("audit_chain")


def _chain_existing_events() -> None:
    """Link the events written before this migration, in id order."""
    from app.services.audit import link_hash

    bind = op.get_bind()
    events = sa.table(
        "audit_events",
        sa.column("id", sa.Integer),
        sa.column("occurred_at", app.db.UTCDateTime()),
        sa.column("actor_user_id", sa.Integer),
        sa.column("actor_label", sa.String),
        sa.column("action", sa.String),
        sa.column("entity_type", sa.String),
        sa.column("entity_id", sa.String),
        sa.column("before", sa.JSON),
        sa.column("after", sa.JSON),
        sa.column("request_id", sa.String),
    )
    chain = sa.table(
        "audit_chain",
        sa.column("seq", sa.Integer),
        sa.column("event_id", sa.Integer),
        sa.column("hash", sa.String),
    )
    previous, rows = "0" * 64, []
    for seq, event in enumerate(bind.execute(sa.select(events).order_by(events.c.id)), start=1):
        previous = link_hash(previous, event)  # type: ignore[arg-type]
        rows.append({"seq": seq, "event_id": event.id, "hash": previous})
    if rows:
        bind.execute(chain.insert(), rows)


def _create_guard() -> None:
    """The chain is append-only like the events (0001's audit guard, for this table)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_chain_no_change BEFORE UPDATE OR DELETE ON audit_chain "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_immutable()"
        )
        op.execute(
            "CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_immutable()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_chain_no_{verb.lower()} BEFORE {verb} ON audit_chain "
                f"BEGIN SELECT RAISE(ABORT, 'audit_chain rows are append-only ({verb} refused)'); "
                "END"
            )


def _drop_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_chain_no_truncate ON audit_chain")
        op.execute("DROP TRIGGER audit_chain_no_change ON audit_chain")
    else:
        op.execute("DROP TRIGGER audit_chain_no_update")
        op.execute("DROP TRIGGER audit_chain_no_delete")
