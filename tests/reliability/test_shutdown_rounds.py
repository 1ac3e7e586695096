"""SIGTERM to a real `tessera-data serve` process under concurrent clients, round after round.

A single SIGTERM proves little about a race: what reaches the server in the last milliseconds before
it stops differs every time. So the process is started and terminated again and again under 8 clients
(GetProduct, CreateOrder, ListProducts) that keep calling until it is gone, and every answer is counted.
A call may be served or refused with UNAVAILABLE (with RetryInfo if the server answered it); none may
end CANCELLED (clients must not retry that blindly) or any other way. Health is polled throughout: it
must answer NOT_SERVING while the server drains, for a load balancer to see, before the server stops.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tessera.inventory.v1 import inventory_pb2_grpc

from tests.support.inventory import (
    InventoryClient,
    assert_ledger_consistent,
    create_product,
    order_request,
    pb,
)
from tests.support.link_servers import ADMIN_EMAIL, CUSTOMER_EMAIL, AuthServerHandle
from tests.support.load import SCALE, Load
from tests.support.processes import ServiceProcesses
from tests.support.servers import ServerProcess
from tests.support.status import details_of

# `make soak-reliability` runs 5 times as many (about 1.3 s a round).
ROUNDS = 20 * min(SCALE, 5)
CLIENTS = 8
SERVING = health_pb2.HealthCheckResponse.ServingStatus.Name(health_pb2.HealthCheckResponse.SERVING)
NOT_SERVING = health_pb2.HealthCheckResponse.ServingStatus.Name(health_pb2.HealthCheckResponse.NOT_SERVING)


@dataclass
class Round:
    codes: Counter[str]
    # What health said after SIGTERM, in order, repeats collapsed (e.g. NOT_SERVING, UNAVAILABLE).
    health_after_sigterm: list[str]
    exit_code: int
    in_progress_logged: int


def _in_order(seen: list[str], order: list[str]) -> bool:
    """`seen` (repeats collapsed) goes through `order` forwards only, skipping any."""
    positions = [order.index(answer) if answer in order else -1 for answer in seen]
    return -1 not in positions and positions == sorted(set(positions))


async def _poll_health(channel: grpc.aio.Channel, answers: list[tuple[float, str]]) -> None:
    """Ask Check again and again; record each answer (a status, or the error code) with its time."""
    health = health_pb2_grpc.HealthStub(channel)
    while True:
        try:
            response = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            answer = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        except grpc.aio.AioRpcError as error:
            answer = error.code().name
        answers.append((time.monotonic(), answer))
        await asyncio.sleep(0.002)


async def _start(
    services: ServiceProcesses, database_url: str, auth: AuthServerHandle, number: int
) -> ServerProcess:
    return await services.start_data(
        database_url,
        auth.target,
        name=f"data-{number}",
        DATA_SHUTDOWN_GRACE_SECONDS="10",
        # NOT_SERVING for at least 0.3 s before the process goes (1 s by default).
        DATA_SHUTDOWN_DRAIN_SECONDS="0.3",
    )


async def _one_round(data: ServerProcess, tokens: dict[str, str]) -> tuple[Round, dict[str, str]]:
    placed: dict[str, str] = {}
    async with grpc.aio.insecure_channel(data.target) as channel:
        stub = inventory_pb2_grpc.InventoryServiceStub(channel)
        staff = InventoryClient(stub, tokens["staff"], "admin")
        customers = [InventoryClient(stub, tokens["customer"], "customer") for _ in range(CLIENTS)]
        product = await create_product(staff, stock=1_000_000)

        async def one_call(call_number: int) -> None:
            client = customers[call_number % CLIENTS]
            kind = call_number % 3
            if kind == 0:
                await client.GetProduct(pb.GetProductRequest(id=product.id), timeout=10)
            elif kind == 1:
                await client.ListProducts(pb.ListProductsRequest(page_size=10), timeout=10)
            else:
                request_id = str(uuid.uuid4())
                placed[request_id] = "IN_FLIGHT"
                try:
                    await client.CreateOrder(
                        order_request((product.id, 1), request_id=request_id), timeout=10
                    )
                except grpc.aio.AioRpcError as error:
                    placed[request_id] = error.code().name
                    raise
                placed[request_id] = "OK"

        health: list[tuple[float, str]] = []
        poller = asyncio.create_task(_poll_health(channel, health))
        async with Load(workers=CLIENTS, call=one_call) as load:
            await load.wait_for(lambda: load.count("OK") >= 2 * CLIENTS)
            sigterm_at = time.monotonic()
            data.process.send_signal(signal.SIGTERM)
            # The clients keep calling until the process is gone.
            exit_code = await asyncio.to_thread(data.process.wait, 30)
        report = load.report
        poller.cancel()

    # Calls that reached the server before SIGTERM were served or refused with RetryInfo.
    for outcome in report.outcomes:
        if outcome.started < sigterm_at and outcome.error is not None:
            assert outcome.error.code() == grpc.StatusCode.UNAVAILABLE, outcome.error
            assert details_of(outcome.error).retry_info is not None, outcome.error
    answers = [answer for at, answer in health if at > sigterm_at]
    stopping = [line for line in data.log_lines() if line.get("event") == "server_stopping"]
    return (
        Round(
            codes=report.codes,
            health_after_sigterm=[a for i, a in enumerate(answers) if i == 0 or answers[i - 1] != a],
            exit_code=exit_code,
            in_progress_logged=int(stopping[0]["in_progress"]) if stopping else -1,  # type: ignore[call-overload]
        ),
        placed,
    )


async def test_sigterm_under_concurrent_clients_cancels_no_call_round_after_round(
    database_url: str, auth_database_url: str, tmp_path: Path
) -> None:
    auth = AuthServerHandle(auth_database_url, tmp_path / "auth")
    await auth.start()
    rounds: list[Round] = []
    placed: dict[str, str] = {}
    try:
        await auth.create_users()
        tokens = {"staff": await auth.token(ADMIN_EMAIL), "customer": await auth.token(CUSTOMER_EMAIL)}
        async with ServiceProcesses(tmp_path) as services:
            # The next process starts while the current one is under load: a round is its SIGTERM only.
            starting = asyncio.ensure_future(_start(services, database_url, auth, 0))
            for number in range(ROUNDS):
                data = await starting
                if number + 1 < ROUNDS:
                    starting = asyncio.ensure_future(_start(services, database_url, auth, number + 1))
                result, orders = await _one_round(data, tokens)
                rounds.append(result)
                placed.update(orders)
    finally:
        await auth.stop()

    summary = [(dict(r.codes), r.health_after_sigterm, r.exit_code, r.in_progress_logged) for r in rounds]
    for result in rounds:
        # Served, or refused retryably: never CANCELLED, never anything else.
        assert set(result.codes) <= {"OK", "UNAVAILABLE"}, summary
        assert result.exit_code == 0, summary
        # Health kept answering during the drain, and said NOT_SERVING (never SERVING again) until the
        # server stopped; only then did the transport refuse.
        assert NOT_SERVING in result.health_after_sigterm, summary
        assert _in_order(result.health_after_sigterm, [SERVING, NOT_SERVING, "UNAVAILABLE"]), summary
    # The log counts the calls the server had received when SIGTERM came (clients were mid-call).
    assert sum(r.in_progress_logged for r in rounds) >= ROUNDS, summary
    # Nothing half-written: the ledger adds up and every acknowledged order exists.
    state = await assert_ledger_consistent(database_url)
    acknowledged = sum(1 for code in placed.values() if code == "OK")
    assert acknowledged <= state.orders <= len(placed)
    total = Counter[str]()
    for result in rounds:
        total.update(result.codes)
    print(
        f"\nRELIABILITY sigterm rounds: {ROUNDS} rounds of {CLIENTS} clients, codes {dict(total)}, "
        f"in_progress at SIGTERM {[r.in_progress_logged for r in rounds]}, exit codes "
        f"{sorted({r.exit_code for r in rounds})}"
    )
