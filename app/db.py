"""Engine, sessions, the declarative base and the column types every model shares."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.engine import Dialect

from app import clock

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(so.DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    """Return the current time as an aware UTC datetime (from the one clock, app.clock)."""
    return clock.now()


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A datetime stored in UTC: aware in, aware out, on every backend."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} refused: give a time zone")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


#: The execution option that says how a SQLite transaction begins (PostgreSQL ignores it).
SQLITE_BEGIN = "sqlite_begin"
#: A session's `info` key: its transactions begin DEFERRED until a unit of work writes.
READ_FIRST = "read_first"


def _configure_sqlite(engine: sa.Engine) -> None:
    """Turn on foreign keys and let SQLAlchemy, not pysqlite, issue BEGIN (for SAVEPOINT)."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # IMMEDIATE takes the write lock up front: concurrent requests queue on busy_timeout
        # instead of failing when a read transaction later tries to write (SQLite's locking
        # scheme for the quick start; PostgreSQL relies on row locks and constraints). A
        # request that only reads begins DEFERRED (READ_FIRST): it takes no write lock, and a
        # unit of work in it begins afresh, IMMEDIATE, before it writes (unit_of_work).
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        if mode not in ("IMMEDIATE", "DEFERRED"):
            raise ValueError(f"{SQLITE_BEGIN} must be IMMEDIATE or DEFERRED, got {mode!r}")
        connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """Create an engine for a SQLite or PostgreSQL URL with this project's settings."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def make_session_factory(
    bind: sa.Engine | sa.Connection, settings: Any = None, **kwargs: Any
) -> so.sessionmaker[so.Session]:
    """Return a session factory whose objects stay readable after commit.

    Its sessions carry the settings in `session.info`: the therapy-integrity check that runs
    before every commit (app.services.integrity) reads the clinic's limits from them.
    """
    info = {**kwargs.pop("info", {}), "settings": settings}
    return so.sessionmaker(bind=bind, expire_on_commit=False, info=info, **kwargs)


def make_read_session_factory(
    engine: sa.Engine, settings: Any = None
) -> so.sessionmaker[so.Session]:
    """A factory for requests that (mostly) only read: on SQLite their transactions begin
    DEFERRED, so a day board never queues behind another request's write lock."""
    return make_session_factory(
        engine.execution_options(**{SQLITE_BEGIN: "DEFERRED"}), settings, info={READ_FIRST: True}
    )


@contextlib.contextmanager
def recorded_statements(bind: sa.Engine | sa.Connection) -> Iterator[list[str]]:
    """Collect the SQL sent through `bind` inside the block (query counts in tests, benches)."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])  # (conn, cursor, statement, parameters, context, executemany)

    sa.event.listen(bind, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(bind, "before_cursor_execute", record)
