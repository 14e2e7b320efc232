"""Alembic environment: the database comes from a passed connection, DATABASE_URL or config."""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.config import load_settings
from app.db import Base, make_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata

#: Tables other software owns in the same database.
FOREIGN_TABLES = {"apscheduler_jobs"}


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    if type_ == "table" and name in FOREIGN_TABLES:
        return False
    table = getattr(obj, "table", None)
    return not (table is not None and table.name in FOREIGN_TABLES)


def _configure(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=include_object,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.attributes.get("database_url") or load_settings().app.database_url
    engine = make_engine(url)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode copies tables; with foreign keys on, dropping the old copy would
            # cascade. Turn them off outside any transaction, and check them afterwards.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            connection.commit()
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
            if problems:
                raise RuntimeError(f"foreign keys broken by the migration: {problems[:5]}")
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
