"""Async SQLAlchemy plumbing shared by both services: engines, units of work, error translation.

Only repositories (and migrations) use this module; service code sees a unit of work through a Protocol
and `shared.errors` exceptions, never SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import asyncpg
import structlog
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, EmulatedDBAPIException
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_only, greenlet_spawn

from shared.db_failures import Failure, classify
from shared.deadlines import remaining_time
from shared.errors import DeadlineExceeded, TransactionConflict, Unavailable
from shared.failover import follow_the_primary, protocol_out_of_step
from shared.private_files import private_sqlite_database

log = structlog.get_logger(__name__)

# How long a SQLite write waits for the database lock when the RPC set no deadline.
SQLITE_BUSY_TIMEOUT_MS = 5000


def deadline_timeout_ms() -> int | None:
    """What is left of the running RPC's deadline in whole milliseconds (at least 1); None without one."""
    left = remaining_time()
    return None if left is None else max(1, int(left * 1000))


def connect_args_for(url: str | URL, application_name: str | None) -> dict[str, Any]:
    """Driver arguments that name our connections on PostgreSQL (nothing on SQLite)."""
    if application_name is None or is_sqlite(url):
        return {}
    # Shown in pg_stat_activity: operators (and the fault tests) can tell whose connection is whose.
    return {"server_settings": {"application_name": application_name}}


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 5,
    pool_timeout: float = 5.0,
    echo: bool = False,
    application_name: str | None = None,
) -> AsyncEngine:
    """An engine for `postgresql+asyncpg` or `sqlite+aiosqlite`, tuned for a long-running server.

    Every transaction is bounded by what is left of the running RPC's deadline (`shared.deadlines`):
    PostgreSQL gets it as the transaction's statement timeout, SQLite as its busy timeout.
    """
    if is_sqlite(url):
        return _create_sqlite_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout, echo=echo
        )
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        # Statement parameters (password hashes, token hashes, emails) stay out of error messages,
        # which end up in logs.
        hide_parameters=True,
        echo=echo,
        connect_args=connect_args_for(url, application_name),
    )
    _ping_on_checkout(engine)
    follow_the_primary(engine)

    @event.listens_for(engine.sync_engine, "begin")
    def _bound_by_deadline(connection: Any) -> None:
        # SET LOCAL (set_config's third argument): the limit ends with the transaction, so a pooled
        # connection never carries one caller's deadline into the next caller's work. One round trip,
        # one prepared statement whatever the value.
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            # Read-only sessions run single statements outside any transaction (see session_factory):
            # there is no transaction to bound, and the caller's cancellation stops the statement.
            return
        timeout_ms = deadline_timeout_ms()
        if timeout_ms is not None:
            connection.execute(
                text("SELECT set_config('statement_timeout', :timeout, true)"), {"timeout": str(timeout_ms)}
            )

    return engine


def _ping_on_checkout(engine: AsyncEngine) -> None:
    """A connection that died while idle (database restart, pg_terminate_backend) is noticed on
    checkout and replaced, so the next RPC after an outage succeeds.

    This is `pool_pre_ping` in one round trip: the asyncpg dialect's own ping wraps its query in
    BEGIN/ROLLBACK (for pgbouncer's transaction mode, which we do not run behind), three round trips on
    every checkout.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        driver_connection: Any = record.driver_connection
        try:
            await_only(driver_connection.fetchrow(";"))
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError("the pooled connection is gone") from exc


def ensure_sqlite_directory(url: str) -> None:
    """SQLite creates the file but not its folder (./var/ on a fresh checkout), and would create the
    file with the umask's bits (0644): both are made owner-only first (shared/private_files.py)."""
    database = make_url(url).database
    if is_sqlite(url) and database and database != ":memory:" and not database.startswith("file:"):
        private_sqlite_database(Path(database))


def _create_sqlite_engine(
    url: str, *, pool_size: int, max_overflow: int, pool_timeout: float, echo: bool
) -> AsyncEngine:
    ensure_sqlite_directory(url)
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        hide_parameters=True,
        echo=echo,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Take over transaction control from the driver, which would otherwise defer BEGIN until the
        # first write and break our read-then-write units of work.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        record.info["busy_timeout_ms"] = SQLITE_BUSY_TIMEOUT_MS

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # The wait for the write lock is bounded by the caller's deadline, when it set one.
        timeout_ms = deadline_timeout_ms() or SQLITE_BUSY_TIMEOUT_MS
        if connection.info.get("busy_timeout_ms") != timeout_ms:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={int(timeout_ms)}")
            connection.info["busy_timeout_ms"] = timeout_ms
        # IMMEDIATE takes the write lock up front: two writers queue on busy_timeout instead of both
        # reading and then deadlocking when each tries to upgrade its lock.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: AsyncEngine, *, read_only: bool = False) -> async_sessionmaker[AsyncSession]:
    """Sessions for units of work; `read_only` ones are for use cases that only read.

    On PostgreSQL a read-only session runs each statement on its own (autocommit), without a
    transaction: no BEGIN and no ROLLBACK round trip around a one-query use case. Each statement then
    sees its own snapshot, so only use cases whose reads need not agree with each other may use one.
    SQLite keeps its usual transactions (its connections begin explicitly; see `_create_sqlite_engine`).
    """
    outside_transactions = read_only and engine.url.get_backend_name() != "sqlite"
    if outside_transactions:
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(
        engine,
        expire_on_commit=False,
        autoflush=False,
        info={_OUTSIDE_TRANSACTIONS: outside_transactions},
    )


_OUTSIDE_TRANSACTIONS = "tessera_reads_outside_transactions"


def reads_outside_transactions(session: AsyncSession) -> bool:
    """The session is read-only on PostgreSQL: a repository may then send a one-statement read straight
    to the driver (`driver_connection`), which no transaction could be bypassed by."""
    return bool(session.info.get(_OUTSIDE_TRANSACTIONS))


@contextlib.asynccontextmanager
async def driver_connection(session: AsyncSession) -> AsyncIterator[Any]:
    """The asyncpg connection of a pooled connection, for a hot read in a read-only session.

    SQLAlchemy's pool (and its liveness ping) without its statement execution and result machinery,
    which cost several times the query itself (bench/README.md). Errors are the driver's own
    (`INFRASTRUCTURE_ERRORS` covers them). A connection whose query was interrupted is closed rather
    than handed to the next caller mid-protocol.
    """
    engine = session.bind
    if not isinstance(engine, AsyncEngine) or not reads_outside_transactions(session):
        raise RuntimeError("driver_connection needs a read-only PostgreSQL session")
    try:
        pooled = await engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as exc:
        # Unlike `connect()`, `raw_connection()` hands on the driver's connect error unwrapped (mid-failover:
        # a member shutting down, no member taking writes): wrap it as `connect()` would, so it is
        # classified the same way.
        raise DBAPIError.instance(
            None, None, exc, engine.dialect.loaded_dbapi.Error, connection_invalidated=True
        ) from exc
    driver: Any = pooled.driver_connection
    try:
        yield driver
    except BaseException as exc:
        # The server closed the connection under the query: "connection is closed" is a bare
        # InterfaceError, like the driver's misuse errors; the connection's state tells them apart.
        lost = isinstance(exc, Exception) and classify(exc) is None and driver.is_closed()
        # Closed and replaced, never handed on mid-protocol; invalidating also checks it back in.
        await asyncio.shield(greenlet_spawn(pooled.invalidate))
        if lost:
            raise Unavailable("the database connection was lost, retry later") from exc
        if protocol_out_of_step(exc):
            raise DBAPIError.instance(
                None, None, exc, engine.dialect.loaded_dbapi.Error, connection_invalidated=True
            ) from exc
        raise
    # Back to the pool, which may close an overflow connection: I/O, hence the greenlet. Not shielded
    # (a shield is a task per call, a third of this path's CPU): only that close can be interrupted,
    # after the pool has let go of the connection, so a cancelled RPC loses nothing but a socket that
    # the garbage collector closes.
    await greenlet_spawn(pooled.close)


def translate_infrastructure_error(exc: BaseException) -> Exception | None:
    """Map what is not the request's fault to a client-facing error; None when it is something else.

    The database being away or refusing (however the driver and SQLAlchemy wrapped it, see
    `shared.db_failures`) and an exhausted pool become UNAVAILABLE; serialization failures and
    deadlocks a retryable conflict. Integrity and data errors are left to repositories, which know the
    constraints.
    """
    if isinstance(exc, PoolTimeoutError):
        return Unavailable("the database is busy, retry later", retry_after_seconds=1.0)
    failure = classify(exc)
    if failure is Failure.CONFLICT:
        return TransactionConflict("the transaction conflicted with a concurrent one")
    if failure is Failure.DEADLINE and remaining_time() is not None:
        # Our own deadline-derived statement timeout.
        return DeadlineExceeded("the deadline expired while the database was working")
    if failure is not None:
        # Also a statement cancelled by an operator (57014 without a deadline of ours).
        return Unavailable("the database is unavailable, retry later")
    return None


# What `translate_infrastructure_error` may turn into a client-facing error: SQLAlchemy's wrappers,
# the DBAPI errors it raises unwrapped (a pool connect outside a Connection: `EmulatedDBAPIException`
# for asyncpg, sqlite3's own), the driver's own, and the socket errors under all of them.
INFRASTRUCTURE_ERRORS = (
    DBAPIError,
    PoolTimeoutError,
    EmulatedDBAPIException,
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


@contextlib.contextmanager
def infrastructure_errors_translated() -> Any:
    try:
        yield
    except INFRASTRUCTURE_ERRORS as exc:
        translated = translate_infrastructure_error(exc)
        if translated is None:
            raise
        raise translated from exc


class SqlAlchemyUnitOfWork:
    """One session and one transaction per use case; rolls back unless `commit()` was called.

    Subclasses add repositories in `_open_repositories(session)`. Repositories flush, never commit.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self.committed = False

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open; use `async with uow:`")
        return self._session

    def _open_repositories(self, session: AsyncSession) -> None:
        """Create this unit of work's repositories over `session`."""

    async def __aenter__(self) -> Self:
        left = remaining_time()
        if left is not None and left <= 0:
            # The caller has given up: starting a transaction would only hold a connection for nobody.
            raise DeadlineExceeded("the deadline expired before the work started")
        self.committed = False
        self._session = self._sessions()
        self._open_repositories(self._session)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        # A session that never began (a read served by `driver_connection`) or whose commit already
        # returned its connection holds nothing: skip the two round trips through the greenlet.
        if session.in_transaction():
            try:
                if not self.committed:
                    # Shielded: a cancelled RPC must still give its connection back in a clean state.
                    await asyncio.shield(session.rollback())
            except Exception:
                log.warning("rollback_failed", exc_info=True)
            finally:
                await asyncio.shield(session.close())
        if exc is not None and not isinstance(exc, Exception):
            return
        if exc is not None:
            translated = translate_infrastructure_error(exc)
            if translated is not None:
                raise translated from exc

    async def commit(self) -> None:
        with infrastructure_errors_translated():
            await self.session.commit()
        self.committed = True


@contextlib.asynccontextmanager
async def lifespan_engine(url: str, **kwargs: Any) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url, **kwargs)
    try:
        yield engine
    finally:
        await engine.dispose()
