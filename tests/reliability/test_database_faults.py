"""Database faults: killed connections, an unreachable database, an exhausted pool, injected conflicts.

Each case runs real servers against a real database; PostgreSQL-only cases say why they skip on SQLite.
Afterwards the database must show what the clients were told: stock = Σ ledger ≥ 0, one order per
request id that succeeded, nothing from a request that failed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url
from tessera.auth.v1 import auth_pb2

from tests.reliability.conftest import StartData
from tests.support.auth_server import running_auth_server
from tests.support.faults import (
    AUTH_APP,
    DATA_APP,
    ConflictInjector,
    checked_out,
    lock_held,
    postgres_admin,
)
from tests.support.inventory import (
    assert_ledger_consistent,
    create_product,
    database_snapshot,
    expect_error,
    order_request,
    pb,
)
from tests.support.load import SCALE, Load
from tests.support.logs import wait_until
from tests.support.status import details_of
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import bearer

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
STAFF_PASSWORD = "a long passphrase here"


def postgres_only(backend: str, why: str) -> None:
    if backend != "postgres":
        pytest.skip(why)


async def orders_in_database(database_url: str) -> int:
    return (await assert_ledger_consistent(database_url)).orders


# --- killed connections --------------------------------------------------------------------------------


async def test_killed_idle_connections_are_replaced_and_the_next_calls_of_both_services_succeed(
    backend: str, database_url: str, auth_database_url: str, tmp_path: Path, start_data: StartData
) -> None:
    postgres_only(backend, "pg_terminate_backend is PostgreSQL's; SQLite has no server connections")
    data = await start_data()
    staff = data.staff
    product = await create_product(staff, stock=100)
    async with (
        running_auth_server(auth_database_url, tmp_path) as auth,
        postgres_admin(database_url) as data_admin,
        postgres_admin(auth_database_url) as auth_admin,
    ):
        await auth.create_user("ann@example.com", STAFF_PASSWORD, role="staff")
        token = (await auth.login("ann@example.com", STAFF_PASSWORD)).access_token

        def who_am_i() -> Awaitable[Any]:
            return auth.stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=bearer(token))

        def one_unit() -> Awaitable[Any]:
            return staff.AdjustStock(
                pb.AdjustStockRequest(product_id=product.id, delta=1, reason=pb.STOCK_MOVEMENT_REASON_RESTOCK)
            )

        for _round in range(3):
            # Several connections in each pool...
            await asyncio.gather(*(who_am_i() for _ in range(4)), *(one_unit() for _ in range(4)))
            # ...then every idle one of both services is killed.
            assert await auth_admin.terminate_idle(AUTH_APP) >= 1
            assert await data_admin.terminate_idle(DATA_APP) >= 1
            # The very next calls succeed: a dead connection is noticed on checkout and replaced.
            users = await asyncio.gather(*(who_am_i() for _ in range(4)))
            assert {user.email for user in users} == {"ann@example.com"}
            await asyncio.gather(*(one_unit() for _ in range(4)))
            assert (await auth.login("ann@example.com", STAFF_PASSWORD)).access_token

    state = await assert_ledger_consistent(database_url)
    assert state.stock[product.id] == 100 + 3 * 8


async def test_a_connection_killed_in_the_middle_of_create_order_answers_unavailable_and_writes_nothing(
    backend: str, database_url: str, start_data: StartData
) -> None:
    postgres_only(backend, "pg_terminate_backend is PostgreSQL's; SQLite has no server connections")
    data = await start_data()
    staff, alice = data.staff, data.customer()
    product = await create_product(staff, stock=10)
    before = await database_snapshot(database_url)
    request_id = str(uuid.uuid4())

    async with postgres_admin(database_url) as admin, lock_held(database_url, product.id):
        # The order has claimed its request id and now waits for the product's row lock: the middle.
        placing = asyncio.ensure_future(
            alice.CreateOrder(order_request((product.id, 3), request_id=request_id))
        )
        [waiting] = await wait_until(lambda: admin.waiting_on_a_lock(DATA_APP))
        assert await admin.terminate([waiting.pid]) == 1
        details = await expect_error(placing, grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE")
        assert details.retry_info is not None

    # Nothing of it was written: not the order, not the ledger, not even the claimed request id...
    assert await database_snapshot(database_url) == before
    # ...so the client's retry with the same request id places the order, once.
    order = await alice.CreateOrder(order_request((product.id, 3), request_id=request_id))
    assert order.status == pb.ORDER_STATUS_PLACED
    assert await orders_in_database(database_url) == 1
    assert (await staff.GetProduct(pb.GetProductRequest(id=product.id))).stock_on_hand == 7


# --- the database unreachable during a bounded load -----------------------------------------------------


async def test_an_unreachable_database_fails_calls_fast_and_everything_recovers_by_itself(
    backend: str, database_url: str, start_data: StartData
) -> None:
    postgres_only(backend, "cuts the network route to the database server; SQLite is a file in-process")
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    try:
        data = await start_data(
            url.set(port=proxy.port).render_as_string(hide_password=False),
            db_health_interval_seconds=0.1,
            db_health_timeout_seconds=1.0,
            db_pool_timeout_seconds=2.0,
        )
        channel, staff = data.channel, data.staff
        products = [await create_product(staff, stock=1_000_000) for _ in range(4)]
        statuses: list[int] = []
        watcher = asyncio.create_task(_watch_health(channel, statuses))
        await wait_until(lambda: statuses[-1:] == [SERVING])

        customers = [data.customer(f"customer-{i}") for i in range(8)]
        placed: dict[str, str] = {}  # request id → outcome code
        deadline_seconds = 5.0

        async def one_call(number: int) -> None:
            client = customers[number % len(customers)]
            product = products[number % len(products)]
            if number % 3 == 2:
                await client.GetProduct(pb.GetProductRequest(id=product.id), timeout=deadline_seconds)
                return
            request_id = str(uuid.uuid4())
            placed[request_id] = "IN_FLIGHT"
            try:
                await client.CreateOrder(
                    order_request((product.id, 1), request_id=request_id), timeout=deadline_seconds
                )
            except grpc.aio.AioRpcError as error:
                placed[request_id] = error.code().name
                raise
            placed[request_id] = "OK"

        async with Load(workers=8, call=one_call) as load:
            await load.wait_for(lambda: load.count("OK") >= 30 * SCALE)

            cut_at = time.monotonic()
            await proxy.cut()
            await wait_until(lambda: NOT_SERVING in statuses)
            await load.wait_for(lambda: load.count("UNAVAILABLE", since=cut_at) >= 30 * SCALE)

            restored_at = time.monotonic()
            await proxy.restore()
            await wait_until(lambda: statuses[-1:] == [SERVING], within=30)
            await load.wait_for(lambda: load.count("OK", since=restored_at) >= 30 * SCALE)
        report = load.report
        watcher.cancel()

        # Nothing but successes and fast UNAVAILABLEs (with RetryInfo): no call hung into its deadline,
        # none failed as INTERNAL.
        assert set(report.codes) == {"OK", "UNAVAILABLE"}, report.codes
        for outcome in report.outcomes:
            if outcome.error is not None:
                assert details_of(outcome.error).retry_info is not None
        # Health followed the database: SERVING, NOT_SERVING while cut, SERVING again.
        assert _transitions(statuses) == [SERVING, NOT_SERVING, SERVING]

        # The clients retry what failed with the same request id; afterwards every request id has
        # exactly one order and the ledger adds up.
        for request_id, code in placed.items():
            if code != "OK":
                await customers[0].CreateOrder(order_request((products[0].id, 1), request_id=request_id))
    finally:
        await proxy.close()

    state = await assert_ledger_consistent(database_url)
    assert state.orders == len(placed)
    assert sum(1_000_000 - state.stock[p.id] for p in products) == len(placed)
    print(
        f"\nRELIABILITY outage: {len(report.outcomes)} calls by 8 clients, codes {dict(report.codes)}, "
        f"{len(placed)} orders, {sum(1 for c in placed.values() if c != 'OK')} retried after the outage"
    )


async def _watch_health(channel: grpc.aio.Channel, statuses: list[int]) -> None:
    """Every status the server's health Watch stream reports, in order."""
    async for response in health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service="")
    ):
        statuses.append(response.status)


def _transitions(statuses: list[int]) -> list[int]:
    return [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]


# --- pool exhaustion ---------------------------------------------------------------------------------


async def test_an_exhausted_pool_makes_callers_wait_a_bounded_time_then_unavailable_never_internal(
    database_url: str, start_data: StartData
) -> None:
    data = await start_data(db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=0.5)
    staff, alice = data.staff, data.customer()
    product = await create_product(staff, stock=5)
    engine = data.engine

    async with lock_held(database_url, product.id):
        # The pool's only connection is lent to an order that waits for the lock the test holds.
        holding = asyncio.ensure_future(alice.CreateOrder(order_request((product.id, 1)), timeout=30))
        await wait_until(lambda: checked_out(engine) == 1)

        patient = [staff.GetProduct(pb.GetProductRequest(id=product.id), timeout=10) for _ in range(10)]
        hasty = [staff.GetProduct(pb.GetProductRequest(id=product.id), timeout=0.2) for _ in range(5)]
        outcomes = await asyncio.gather(*patient, *hasty, return_exceptions=True)

    codes = [o.code() if isinstance(o, grpc.aio.AioRpcError) else o for o in outcomes]
    # Patient callers wait for the pool's timeout, not for their own deadline: UNAVAILABLE, retry later.
    assert codes[:10] == [grpc.StatusCode.UNAVAILABLE] * 10, codes
    for outcome in outcomes[:10]:
        assert isinstance(outcome, grpc.aio.AioRpcError)
        assert details_of(outcome).retry_info is not None
    # Hasty callers run out of their own time first.
    assert codes[10:] == [grpc.StatusCode.DEADLINE_EXCEEDED] * 5, codes

    # Once the lock is gone the waiting order completes and the pool serves again.
    assert (await holding).status == pb.ORDER_STATUS_PLACED
    assert (await staff.GetProduct(pb.GetProductRequest(id=product.id))).stock_on_hand == 4
    await assert_ledger_consistent(database_url)


# --- injected serialization failures and deadlocks ------------------------------------------------------


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
async def test_injected_conflicts_are_retried_and_the_write_happens_once(
    sqlstate: str, database_url: str, start_data: StartData
) -> None:
    data = await start_data()
    staff, alice = data.staff, data.customer()
    product = await create_product(staff, stock=10)
    faults = ConflictInjector(database_url, data.engine, "stock_movements")
    await faults.install()

    await faults.arm(sqlstate, times=2)
    order = await alice.CreateOrder(order_request((product.id, 2), request_id=str(uuid.uuid4())))
    assert await faults.attempts() == 3

    await faults.arm(sqlstate, times=3)
    adjusted = await staff.AdjustStock(
        pb.AdjustStockRequest(product_id=product.id, delta=5, reason=pb.STOCK_MOVEMENT_REASON_RESTOCK)
    )
    assert await faults.attempts() == 4
    await faults.disarm()

    assert order.status == pb.ORDER_STATUS_PLACED
    assert adjusted.product.stock_on_hand == 13
    state = await assert_ledger_consistent(database_url)
    assert (state.orders, state.movements) == (1, 3)


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
async def test_conflicts_that_never_stop_answer_aborted_after_a_bounded_number_of_attempts(
    sqlstate: str, database_url: str, start_data: StartData
) -> None:
    data = await start_data()
    staff, alice = data.staff, data.customer()
    product = await create_product(staff, stock=10)
    faults = ConflictInjector(database_url, data.engine, "stock_movements")
    await faults.install()
    before = await database_snapshot(database_url)
    request_id = str(uuid.uuid4())

    await faults.arm(sqlstate, times=1_000)
    details = await expect_error(
        alice.CreateOrder(order_request((product.id, 2), request_id=request_id)),
        grpc.StatusCode.ABORTED,
        "CONCURRENCY_CONFLICT",
    )
    attempts = await faults.attempts()
    await faults.disarm()

    assert attempts == 4, "retried a bounded number of times"
    assert details.error_info is not None
    assert await database_snapshot(database_url) == before
    # Nothing was claimed: the client's retry with the same request id goes through.
    await alice.CreateOrder(order_request((product.id, 2), request_id=request_id))
    assert await orders_in_database(database_url) == 1


async def test_conflict_retries_stop_at_the_callers_deadline(
    backend: str, database_url: str, start_data: StartData
) -> None:
    postgres_only(backend, "needs attempts that take time inside the database (a sleeping trigger)")
    data = await start_data()
    staff, alice = data.staff, data.customer()
    product = await create_product(staff, stock=10)
    faults = ConflictInjector(database_url, data.engine, "stock_movements")
    await faults.install()
    before = await database_snapshot(database_url)

    # Every attempt works 0.4 s and then conflicts: four attempts cannot fit into one second.
    await faults.arm("40001", times=1_000, sleep_seconds=0.4)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await alice.CreateOrder(order_request((product.id, 1)), timeout=1.0)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    async with postgres_admin(database_url) as admin:
        await wait_until(lambda: _idle(admin))
    attempts = await faults.attempts()
    await faults.disarm()

    assert 1 <= attempts < 4
    assert await database_snapshot(database_url) == before


async def _idle(admin: Any) -> bool:
    return not await admin.busy(DATA_APP)
