"""`shared.db.driver_connection`: hot reads straight to asyncpg through SQLAlchemy's pool."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest

from shared.db import create_engine, driver_connection, reads_outside_transactions, session_factory


async def test_only_read_only_postgres_sessions_read_through_the_driver(
    backend: str, database_url: str
) -> None:
    engine = create_engine(database_url)
    try:
        assert not reads_outside_transactions(session_factory(engine)())
        assert reads_outside_transactions(session_factory(engine, read_only=True)()) == (
            backend == "postgres"
        )
    finally:
        await engine.dispose()


async def test_a_read_cancelled_mid_query_leaves_the_pool_usable(backend: str, database_url: str) -> None:
    if backend != "postgres":
        pytest.skip("driver reads are a PostgreSQL matter")
    # One connection only: the read after the cancelled one must get a usable connection, not the
    # one still waiting for its interrupted query.
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    readers = session_factory(engine, read_only=True)
    sleeping = asyncio.Event()

    async def slow_read() -> None:
        async with driver_connection(readers()) as driver:
            sleeping.set()
            await driver.fetchval("SELECT pg_sleep(30)")

    try:
        async with asyncio.timeout(20):
            task = asyncio.create_task(slow_read())
            await sleeping.wait()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            async with driver_connection(readers()) as driver:
                assert await driver.fetchval("SELECT 41 + 1") == 42
    finally:
        await engine.dispose()


# A connection left for the garbage collector to return is an SAWarning: make it a failure.
@pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")
async def test_a_failed_read_gives_its_connection_back(backend: str, database_url: str) -> None:
    if backend != "postgres":
        pytest.skip("driver reads are a PostgreSQL matter")
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=2)
    readers = session_factory(engine, read_only=True)
    try:
        for _ in range(3):
            with pytest.raises(asyncpg.UndefinedTableError) as failure:
                async with driver_connection(readers()) as driver:
                    await driver.fetchval("SELECT * FROM no_such_table")
            assert engine.sync_engine.pool.checkedout() == 0, failure
        async with driver_connection(readers()) as driver:
            assert await driver.fetchval("SELECT 1") == 1
    finally:
        await engine.dispose()
