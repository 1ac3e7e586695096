"""Database faults a test can cause on cue, in its own database only.

Other helpers' tests run on the same PostgreSQL cluster at the same time: everything here connects to the
test's own uniquely named database and only ever looks at (or terminates) backends of that database
(`datname = current_database()`), picked by the `application_name` our engines set
(shared/db.py: `tessera-data`, `tessera-auth`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

DATA_APP = "tessera-data"
AUTH_APP = "tessera-auth"


def asyncpg_dsn(database_url: str) -> str:
    """The plain libpq DSN of a `postgresql+asyncpg://` SQLAlchemy URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def sqlite_path(database_url: str) -> str:
    database = make_url(database_url).database
    assert database, database_url
    return database


@dataclass(frozen=True)
class Backend:
    pid: int
    state: str | None
    wait_event_type: str | None
    query: str


class PostgresAdmin:
    """A connection of the test's own to its own database: inspect and terminate the service's backends."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def backends(self, application_name: str) -> list[Backend]:
        rows = await self.connection.fetch(
            "SELECT pid, state, wait_event_type, query FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()",
            application_name,
        )
        return [Backend(r["pid"], r["state"], r["wait_event_type"], r["query"]) for r in rows]

    async def terminate(self, pids: list[int]) -> int:
        """Terminate the given backends, which must belong to this database; returns how many died."""
        rows = await self.connection.fetch(
            "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid = ANY($1::int[])",
            pids,
        )
        return sum(1 for row in rows if row["killed"])

    async def terminate_idle(self, application_name: str) -> int:
        idle = [b.pid for b in await self.backends(application_name) if b.state == "idle"]
        return await self.terminate(idle)

    async def waiting_on_a_lock(self, application_name: str) -> list[Backend]:
        return [b for b in await self.backends(application_name) if b.wait_event_type == "Lock"]

    async def busy(self, application_name: str) -> list[Backend]:
        """Backends of the service that are running a statement or sit inside an open transaction."""
        return [
            b
            for b in await self.backends(application_name)
            if b.state in ("active", "idle in transaction", "idle in transaction (aborted)")
        ]


@asynccontextmanager
async def postgres_admin(database_url: str) -> AsyncIterator[PostgresAdmin]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        yield PostgresAdmin(connection)
    finally:
        await connection.close()


class LockHolder:
    """Makes the service's next stock change wait: the product's row lock (PostgreSQL) or the database's
    write lock (SQLite, whose writers all queue on it), held by the test until `release()`."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._pg: asyncpg.Connection | None = None
        self._sqlite: aiosqlite.Connection | None = None

    async def hold(self, product_id: str) -> None:
        if self._url.startswith("sqlite"):
            self._sqlite = await aiosqlite.connect(sqlite_path(self._url), isolation_level=None)
            await self._sqlite.execute("BEGIN IMMEDIATE")
            return
        self._pg = await asyncpg.connect(asyncpg_dsn(self._url))
        await self._pg.execute("BEGIN")
        locked = await self._pg.fetchval("SELECT id FROM products WHERE id = $1 FOR UPDATE", product_id)
        assert locked is not None, product_id

    async def release(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.execute("ROLLBACK")
            await self._sqlite.close()
            self._sqlite = None
        if self._pg is not None:
            await self._pg.execute("ROLLBACK")
            await self._pg.close()
            self._pg = None


@asynccontextmanager
async def lock_held(database_url: str, product_id: str) -> AsyncIterator[LockHolder]:
    holder = LockHolder(database_url)
    await holder.hold(product_id)
    try:
        yield holder
    finally:
        await holder.release()


def checked_out(engine: AsyncEngine) -> int:
    """Connections of the server's pool that are lent out right now."""
    return int(engine.pool.checkedout())  # type: ignore[attr-defined]


# A statement-level trigger: one failure per attempt, however many rows the attempt inserts. The attempt
# counter is a sequence because nextval() survives the rollback that the raised error causes.
_POSTGRES_INJECTOR = """
CREATE TABLE injected_fault (sqlstate text NOT NULL, times integer NOT NULL, sleep_seconds float NOT NULL);
CREATE SEQUENCE injected_fault_attempts MINVALUE 0 START 0;
CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  fault injected_fault;
BEGIN
  SELECT * INTO fault FROM injected_fault;
  IF FOUND THEN
    PERFORM pg_sleep(fault.sleep_seconds);
    IF nextval('injected_fault_attempts') <= fault.times THEN
      RAISE EXCEPTION 'fault injected by the test' USING ERRCODE = fault.sqlstate;
    END IF;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER inject_fault BEFORE INSERT ON {table} FOR EACH STATEMENT EXECUTE FUNCTION inject_fault();
"""


# SQLITE_BUSY (https://sqlite.org/rescode.html#busy): what sqlite3 reports when the write lock stays taken.
SQLITE_BUSY = 5


def sqlite_busy(dbapi: Any) -> Exception:
    """The error sqlite3 raises when another writer holds the lock past the busy timeout."""
    error = dbapi.OperationalError("database is locked")
    error.sqlite_errorcode, error.sqlite_errorname = SQLITE_BUSY, "SQLITE_BUSY"
    return error


class ConflictInjector:
    """Makes inserts into one table fail with a serialization failure (40001) or a deadlock (40P01).

    PostgreSQL: a trigger in the test database raises the real SQLSTATE from the server. SQLite has no
    such errors; its conflict is "database is locked", raised by an engine hook as the driver would.
    """

    def __init__(self, database_url: str, engine: AsyncEngine, table: str) -> None:
        self._url = database_url
        self._engine = engine
        self._table = table
        self._sqlite_budget = 0
        self._sqlite_attempts = 0

    @property
    def is_postgres(self) -> bool:
        return not self._url.startswith("sqlite")

    async def install(self) -> None:
        if self.is_postgres:
            connection = await asyncpg.connect(asyncpg_dsn(self._url))
            try:
                await connection.execute(_POSTGRES_INJECTOR.format(table=self._table))
            finally:
                await connection.close()
            return
        dbapi = self._engine.dialect.dbapi
        assert dbapi is not None
        prefix = f"INSERT INTO {self._table}"

        @event.listens_for(self._engine.sync_engine, "before_cursor_execute")
        def _inject(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if self._sqlite_budget < 0 or not statement.startswith(prefix):
                return
            self._sqlite_attempts += 1
            if self._sqlite_attempts <= self._sqlite_budget:
                raise sqlite_busy(dbapi)

        self._sqlite_budget = -1

    async def arm(self, sqlstate: str, times: int, *, sleep_seconds: float = 0.0) -> None:
        """The next `times` attempts fail (each after `sleep_seconds` of work, PostgreSQL only)."""
        if self.is_postgres:
            connection = await asyncpg.connect(asyncpg_dsn(self._url))
            try:
                await connection.execute("DELETE FROM injected_fault")
                await connection.execute("SELECT setval('injected_fault_attempts', 0, true)")
                await connection.execute(
                    "INSERT INTO injected_fault VALUES ($1, $2, $3)", sqlstate, times, sleep_seconds
                )
            finally:
                await connection.close()
            return
        assert sleep_seconds == 0, "SQLite injection cannot simulate slow attempts"
        self._sqlite_attempts, self._sqlite_budget = 0, times

    async def disarm(self) -> None:
        if self.is_postgres:
            connection = await asyncpg.connect(asyncpg_dsn(self._url))
            try:
                await connection.execute("DELETE FROM injected_fault")
            finally:
                await connection.close()
            return
        self._sqlite_budget = -1

    async def attempts(self) -> int:
        """How many attempts reached the table since `arm`."""
        if self.is_postgres:
            connection = await asyncpg.connect(asyncpg_dsn(self._url))
            try:
                return int(await connection.fetchval("SELECT last_value FROM injected_fault_attempts"))
            finally:
                await connection.close()
        return self._sqlite_attempts
