"""The PostgreSQL role the app connects as: it may read and write care data, but only add to
the audit trail, and it owns nothing, so it cannot switch the audit guard off.

The migrations run as the owner; after each `alembic upgrade`, the owner runs
`flask --app wsgi db grant-app-role --role ivig_app` (idempotent) to give the app role what it
needs on every table, the audit tables append-only.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

#: Tables the app may only INSERT into and SELECT from.
APPEND_ONLY = ("audit_events", "audit_chain")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def grant_app_role(conn: sa.Connection, role: str) -> None:
    """Create the role if missing (LOGIN, no superuser, owns nothing) and grant it its rights.

    Its password is the DBA's to set (`ALTER ROLE ... PASSWORD`), never in this code.
    """
    if conn.dialect.name != "postgresql":
        raise ValueError("app roles are a PostgreSQL feature; SQLite has one user")
    if not _NAME.match(role):
        raise ValueError(f"role: {role!r} is not a plain lower-case PostgreSQL name")
    exists = conn.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if not exists:
        conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'))
    database = conn.scalar(sa.text("SELECT current_database()"))
    for statement in (
        f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
        f'GRANT USAGE ON SCHEMA public TO "{role}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
        f'REVOKE UPDATE, DELETE, TRUNCATE ON {", ".join(APPEND_ONLY)} FROM "{role}"',
        f'REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM "{role}"',
    ):
        conn.execute(sa.text(statement))
