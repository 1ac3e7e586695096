"""SIGTERM to a real `tessera-data serve` process in the middle of a bounded load.

The order the operator relies on: health NOT_SERVING first, then no new calls (UNAVAILABLE), every call
already in the server completes, the pools close, exit 0; the database shows exactly what the clients
were told.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from tessera.inventory.v1 import inventory_pb2_grpc

from tests.support.faults import lock_held
from tests.support.inventory import (
    InventoryClient,
    assert_ledger_consistent,
    create_product,
    order_request,
    pb,
)
from tests.support.link_servers import ADMIN_EMAIL, CUSTOMER_EMAIL, AuthServerHandle
from tests.support.load import SCALE, Load
from tests.support.logs import wait_until
from tests.support.ops import free_port, scrape
from tests.support.processes import ServiceProcesses
from tests.support.status import StatusDetails, details_of

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
BLOCKED_CALLS = 5


async def in_flight(metrics_port: int, method: str) -> int:
    """Calls of `method` the server has started and not yet answered, from its own /metrics."""
    started = handled = 0.0
    for family in text_string_to_metric_families(await scrape(metrics_port)):
        for sample in family.samples:
            if sample.labels.get("grpc_method") != method:
                continue
            if sample.name == "grpc_server_started_total":
                started += sample.value
            elif sample.name == "grpc_server_handled_total":
                handled += sample.value
    return int(started - handled)


async def test_sigterm_under_load_drains_in_flight_calls_refuses_new_ones_and_exits_zero(
    database_url: str, auth_database_url: str, tmp_path: Path
) -> None:
    auth = AuthServerHandle(auth_database_url, tmp_path / "auth")
    await auth.start()
    metrics_port = free_port()
    try:
        await auth.create_users()
        async with ServiceProcesses(tmp_path) as services:
            data = await services.start_data(
                database_url,
                auth.target,
                DATA_METRICS_PORT=str(metrics_port),
                DATA_SHUTDOWN_GRACE_SECONDS="10",
            )
            async with grpc.aio.insecure_channel(data.target) as channel:
                stub = inventory_pb2_grpc.InventoryServiceStub(channel)
                staff = InventoryClient(stub, await auth.token(ADMIN_EMAIL), "admin")
                customer = InventoryClient(stub, await auth.token(CUSTOMER_EMAIL), "customer")
                locked = await create_product(staff, stock=1_000)
                busy = await create_product(staff, stock=1_000_000)
                statuses: list[int] = []
                watcher = asyncio.ensure_future(_watch(channel, statuses))
                placed: dict[str, str] = {}

                async def one_call(number: int) -> None:
                    if number % 2:
                        await customer.GetProduct(pb.GetProductRequest(id=busy.id), timeout=20)
                        return
                    request_id = str(uuid.uuid4())
                    placed[request_id] = "IN_FLIGHT"
                    try:
                        await customer.CreateOrder(
                            order_request((busy.id, 1), request_id=request_id), timeout=20
                        )
                    except grpc.aio.AioRpcError as error:
                        placed[request_id] = error.code().name
                        raise
                    placed[request_id] = "OK"

                load = Load(workers=6, call=one_call)
                async with load:
                    await load.wait_for(lambda: load.count("OK") >= 20 * SCALE)
                    async with lock_held(database_url, locked.id):
                        # Stock changes that wait for the test's lock: in the server when SIGTERM comes.
                        blocked = [
                            asyncio.ensure_future(
                                staff.AdjustStock(
                                    pb.AdjustStockRequest(
                                        product_id=locked.id,
                                        delta=1,
                                        reason=pb.STOCK_MOVEMENT_REASON_RESTOCK,
                                        request_id=str(uuid.uuid4()),
                                    ),
                                    timeout=20,
                                )
                            )
                            for _ in range(BLOCKED_CALLS)
                        ]
                        await wait_until(lambda: _all_in_flight(metrics_port, "AdjustStock", BLOCKED_CALLS))

                        sigterm_at = time.monotonic()
                        data.process.send_signal(signal.SIGTERM)
                        # The watcher hears NOT_SERVING, and then its stream ends (it holds nothing up).
                        await asyncio.wait_for(watcher, timeout=10)
                        assert statuses[-1] == NOT_SERVING
                        # While the blocked calls run, every new call is refused, retryably.
                        refusals = await asyncio.gather(*(_refused(staff, busy.id) for _ in range(10)))
                        load.stop_issuing()
                    # The lock is gone: the calls that were in the server finish normally.
                    adjusted = await asyncio.gather(*blocked)
                report = load.report

            exit_code = await asyncio.to_thread(data.process.wait, 30)
    finally:
        await auth.stop()

    assert exit_code == 0, data.log_path.read_text()[-3000:]
    assert [a.movement.delta for a in adjusted] == [1] * BLOCKED_CALLS
    assert {(r.code, r.reason) for r in refusals} == {(grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE")}
    assert all(r.retry_info is not None for r in refusals)
    # Successes, then (for calls that arrived after SIGTERM) refusals; nothing failed in any other way.
    assert set(report.codes) <= {"OK", "UNAVAILABLE"}, report.codes
    for outcome in report.outcomes:
        if outcome.error is not None:
            assert outcome.started >= sigterm_at - 1.0
            assert details_of(outcome.error).retry_info is not None
    events = [line.get("event") for line in data.log_lines()]
    assert events.index("server_stopping") < events.index("server_stopped")

    # Nothing half-written: the ledger adds up, every acknowledged order exists, no refused one does.
    state = await assert_ledger_consistent(database_url)
    acknowledged = sum(1 for code in placed.values() if code == "OK")
    assert state.orders == acknowledged
    assert state.stock[busy.id] == 1_000_000 - acknowledged
    assert state.stock[locked.id] == 1_000 + BLOCKED_CALLS
    print(
        f"\nRELIABILITY shutdown: {len(report.outcomes)} calls by 6 clients, codes {dict(report.codes)}, "
        f"{BLOCKED_CALLS} in-flight stock changes drained, 10 new calls refused, exit {exit_code}"
    )


async def _refused(client: InventoryClient, product_id: str) -> StatusDetails:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.GetProduct(pb.GetProductRequest(id=product_id), timeout=5)
    return details_of(raised.value)


async def _all_in_flight(metrics_port: int, method: str, calls: int) -> bool:
    return await in_flight(metrics_port, method) == calls


async def _watch(channel: grpc.aio.Channel, statuses: list[int]) -> None:
    async for response in health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service="")
    ):
        statuses.append(response.status)
