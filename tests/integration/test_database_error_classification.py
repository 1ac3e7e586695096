"""Real errors from real databases, however wrapped, classified by SQLSTATE / result code and type.

The same refusal reaches the services as asyncpg's exception (driver fast path), as SQLAlchemy's
emulated DBAPI error (a pool connect outside a Connection) and as `sqlalchemy.exc.DBAPIError` (the
ORM path). Each wrapping must come out the same; data errors (SQLSTATE class 22, SQLite's overflow)
must never look like an outage, or clients would retry them forever.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, EmulatedDBAPIException
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from shared.db import create_engine, driver_connection, session_factory, translate_infrastructure_error
from shared.deadlines import start_deadline
from shared.errors import TransactionConflict, Unavailable
from tests.support.faults import asyncpg_dsn

# Out of range for a 64-bit integer: SQLite's "integer overflow", PostgreSQL's 22003 (its sum() of
# bigints is numeric and cannot overflow; its bigint addition can).
OVERFLOWING_SUM = "SELECT sum(x) FROM (SELECT 9223372036854775807 AS x UNION ALL SELECT 1 AS x) AS t"
OVERFLOWING_ADDITION = "SELECT 9223372036854775807::bigint + 1"


async def raised_by(action: Callable[[], Awaitable[Any]]) -> BaseException:
    with pytest.raises(Exception) as raised:  # noqa: PT011 - which class is what is being tested
        await action()
    return raised.value


async def test_data_errors_are_not_unavailable_on_any_path(backend: str, database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        overflow = OVERFLOWING_ADDITION if backend == "postgres" else OVERFLOWING_SUM

        async def through_the_orm() -> None:
            async with engine.connect() as connection:
                await connection.execute(text(overflow))

        errors = [await raised_by(through_the_orm)]
        if backend == "postgres":

            async def through_the_driver() -> None:
                async with driver_connection(session_factory(engine, read_only=True)()) as driver:
                    await driver.fetchval(overflow)

            async def a_bad_cast() -> None:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 'not a number'::int"))

            async def a_parameter_out_of_range() -> None:
                # Refused by asyncpg itself, before anything is sent: a data error all the same.
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT CAST(:n AS integer)"), {"n": 2**40})

            errors += [
                await raised_by(through_the_driver),
                await raised_by(a_bad_cast),
                await raised_by(a_parameter_out_of_range),
            ]
    finally:
        await engine.dispose()

    for error in errors:
        assert translate_infrastructure_error(error) is None, repr(error)


async def test_a_refused_socket_is_unavailable_through_sqlalchemy_and_the_raw_pool(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("SQLite has no server to refuse a connection")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens on it once the probe is closed
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nowhere", pool_timeout=1)
    try:
        errors = [await raised_by(lambda: _select_one(engine)), await raised_by(engine.raw_connection)]
    finally:
        await engine.dispose()
    for error in errors:
        assert isinstance(translate_infrastructure_error(error), Unavailable), repr(error)


async def test_server_refusals_are_unavailable_in_every_wrapping(backend: str, database_url: str) -> None:
    if backend != "postgres":
        pytest.skip("SQLSTATEs raised by the PostgreSQL server")
    # The server raises each SQLSTATE itself; asyncpg turns it into its exception class, SQLAlchemy
    # wraps that once (raw pool) or twice (ORM).
    raise_it = "DO $$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '{}'; END $$"
    engine = create_engine(database_url)
    try:
        for sqlstate in ("08006", "57P01", "57P02", "57P03", "53300", "25006", "40001", "22003"):
            statement = raise_it.format(sqlstate)
            raw = await raised_by(lambda s=statement: _driver_execute(database_url, s))  # type: ignore[misc]
            emulated = await raised_by(lambda s=statement: _dbapi_execute(engine, s))  # type: ignore[misc]
            wrapped = await raised_by(lambda s=statement: _orm_execute(engine, s))  # type: ignore[misc]
            assert isinstance(raw, asyncpg.PostgresError)
            assert isinstance(emulated, EmulatedDBAPIException)
            assert isinstance(wrapped, DBAPIError)
            for error in (raw, emulated, wrapped):
                translated = translate_infrastructure_error(error)
                if sqlstate == "40001":
                    assert isinstance(translated, TransactionConflict), (sqlstate, repr(error))
                elif sqlstate.startswith("22"):
                    assert translated is None, (sqlstate, repr(error))
                else:
                    assert isinstance(translated, Unavailable), (sqlstate, repr(error))
    finally:
        await engine.dispose()


async def test_sqlite_busy_is_a_conflict_and_its_overflow_is_not_an_outage(
    backend: str, database_url: str
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's result codes")
    writer, waiter = create_engine(database_url), create_engine(database_url)
    try:
        async with writer.connect() as holding:
            await holding.execute(text("CREATE TABLE t (x integer)"))
            await holding.commit()
            await holding.execute(text("INSERT INTO t VALUES (1)"))  # holds the write lock (BEGIN IMMEDIATE)

            async def blocked_write() -> None:
                # A caller with a short deadline waits that long for the lock, then SQLite says BUSY.
                start_deadline(0.2)
                try:
                    async with waiter.connect() as connection:
                        await connection.execute(text("INSERT INTO t VALUES (2)"))
                finally:
                    start_deadline(None)

            busy = await raised_by(blocked_write)
        overflow = await raised_by(lambda: _select(writer, OVERFLOWING_SUM))
    finally:
        await writer.dispose()
        await waiter.dispose()
    assert isinstance(translate_infrastructure_error(busy), TransactionConflict), repr(busy)
    assert translate_infrastructure_error(overflow) is None, repr(overflow)


async def _select_one(engine: AsyncEngine) -> None:
    await _select(engine, "SELECT 1")


async def _select(engine: AsyncEngine, sql: str) -> None:
    async with engine.connect() as connection:
        await connection.execute(text(sql))


async def _orm_execute(engine: AsyncEngine, sql: str) -> None:
    async with engine.connect() as connection:
        await connection.exec_driver_sql(sql)


async def _dbapi_execute(engine: AsyncEngine, sql: str) -> None:
    """Through SQLAlchemy's DBAPI adapter without a Connection around it, as a raw pool connection."""
    pooled = await engine.raw_connection()
    try:
        await greenlet_spawn(lambda: pooled.cursor().execute(sql))
    finally:
        await greenlet_spawn(pooled.invalidate)


async def _driver_execute(database_url: str, sql: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def test_a_connection_closed_under_a_fast_path_read_is_unavailable(
    backend: str, database_url: str
) -> None:
    if backend != "postgres":
        pytest.skip("the driver fast path is PostgreSQL's")
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    readers = session_factory(engine, read_only=True)
    try:

        async def read_on_a_closed_connection() -> None:
            async with driver_connection(readers()) as driver:
                # What the driver says when the connection died before the query: a bare InterfaceError.
                await driver.close()
                await driver.fetchval("SELECT 1")

        with pytest.raises(Unavailable) as raised:
            await read_on_a_closed_connection()
        assert isinstance(raised.value.__cause__, asyncpg.InterfaceError)
        # The dead connection was replaced: the next read gets a working one.
        async with driver_connection(readers()) as driver:
            assert await driver.fetchval("SELECT 1") == 1
    finally:
        await engine.dispose()
