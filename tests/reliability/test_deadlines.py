"""Deadlines: a caller that gives up leaves nothing behind, and the database is told how long it has.

The remaining deadline of an RPC reaches the database as the transaction's statement timeout
(PostgreSQL) or the busy timeout of its write lock (SQLite): shared/db.py. That it also reaches outbound
calls (the data service's key fetch from the auth service) is tests/e2e/link/test_auth_link.py's
`test_a_key_fetch_caused_by_a_request_inherits_its_deadline`.
"""

from __future__ import annotations

import uuid

import asyncpg
import grpc
import pytest
from sqlalchemy import text

from shared.db import SQLITE_BUSY_TIMEOUT_MS, SqlAlchemyUnitOfWork, create_engine, session_factory
from shared.deadlines import start_deadline
from shared.errors import DeadlineExceeded
from tests.reliability.conftest import StartData
from tests.support.faults import DATA_APP, asyncpg_dsn, checked_out, lock_held, postgres_admin
from tests.support.inventory import assert_ledger_consistent, create_product, database_snapshot, order_request
from tests.support.logs import wait_until

# Records the statement timeout in force when an order is inserted; a sequence, because setval() is not
# undone by a rollback and the test reads it afterwards.
STATEMENT_TIMEOUT_SPY = """
CREATE SEQUENCE observed_statement_timeout MINVALUE 0 START 0;
CREATE FUNCTION observe_statement_timeout() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM setval('observed_statement_timeout',
                 (SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout'), true);
  RETURN NEW;
END $$;
CREATE TRIGGER observe_statement_timeout BEFORE INSERT ON orders
  FOR EACH ROW EXECUTE FUNCTION observe_statement_timeout();
"""


async def test_a_deadline_shorter_than_the_work_answers_deadline_exceeded_and_leaves_no_order(
    backend: str, database_url: str, start_data: StartData
) -> None:
    data = await start_data()
    alice = data.customer()
    product = await create_product(data.staff, stock=10)
    before = await database_snapshot(database_url)
    request_id = str(uuid.uuid4())

    async with lock_held(database_url, product.id):
        # The order waits for the lock, longer than its caller is willing to wait.
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await alice.CreateOrder(order_request((product.id, 1), request_id=request_id), timeout=0.5)
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The server gives up too, while the lock is still held: its connection comes back to the pool...
        await wait_until(lambda: checked_out(data.engine) == 0)
        if backend == "postgres":
            async with postgres_admin(database_url) as admin:
                # ...and no backend of the service waits or sits in a transaction any more.
                assert await admin.busy(DATA_APP) == []

    # With the lock gone nothing of the abandoned order appears: not the order, not its request id...
    assert await database_snapshot(database_url) == before
    # ...so the caller's retry places it, once.
    await alice.CreateOrder(order_request((product.id, 1), request_id=request_id))
    state = await assert_ledger_consistent(database_url)
    assert (state.orders, state.stock[product.id]) == (1, 9)


async def test_the_database_is_told_what_is_left_of_the_deadline(
    backend: str, database_url: str, start_data: StartData
) -> None:
    if backend != "postgres":
        pytest.skip("reads the statement timeout from inside PostgreSQL; SQLite's busy timeout is below")
    data = await start_data()
    alice = data.customer()
    product = await create_product(data.staff, stock=10)
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await admin.execute(STATEMENT_TIMEOUT_SPY)

        await alice.CreateOrder(order_request((product.id, 1)), timeout=3)
        with_deadline = await admin.fetchval("SELECT last_value FROM observed_statement_timeout")
        await alice.CreateOrder(order_request((product.id, 1)), timeout=None)
        without_deadline = await admin.fetchval("SELECT last_value FROM observed_statement_timeout")
    finally:
        await admin.close()

    # Milliseconds: what was left of the 3 s when the transaction began (gRPC's wire format rounds a
    # deadline up by a few milliseconds); no limit without a deadline.
    assert 0 < with_deadline < 3100
    assert without_deadline == 0
    print(
        f"\nRELIABILITY deadline: 3 s deadline -> statement_timeout {with_deadline} ms; "
        f"none -> {without_deadline}"
    )


async def test_a_unit_of_work_carries_the_deadline_into_its_transaction_and_no_further(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    is_sqlite = database_url.startswith("sqlite")
    question = text(
        "PRAGMA busy_timeout"
        if is_sqlite
        else "SELECT setting::int FROM pg_settings WHERE name = 'statement_timeout'"
    )

    async def limit_in_force() -> int:
        async with SqlAlchemyUnitOfWork(sessions) as uow:
            return int((await uow.session.execute(question)).scalar_one())

    try:
        start_deadline(2.0)
        bounded = await limit_in_force()
        start_deadline(None)
        # Same pool, next transaction: the previous caller's deadline is gone.
        unbounded = await limit_in_force()
        start_deadline(-0.1)
        with pytest.raises(DeadlineExceeded):
            await limit_in_force()
    finally:
        start_deadline(None)
        await engine.dispose()

    assert 0 < bounded <= 2000
    assert unbounded == (SQLITE_BUSY_TIMEOUT_MS if is_sqlite else 0)
