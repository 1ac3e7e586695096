"""The primary of a Patroni cluster dies under load, then the lead is switched over: nothing acknowledged
is lost, nothing is doubled, both services follow the new primary by themselves.

Real `tessera-auth serve` and `tessera-data serve` processes, each with its own database on one
three-member cluster (synchronous replication), connect with the multi-host URL that `scripts/ha-cluster`
prints. Eight clients place orders (each with a request id), read products and read their account from
the auth service (its database). Mid-load the leader's Patroni and PostgreSQL are SIGKILLed (a crashed
host), and once writes are back, a planned switchover moves the lead again; after each, a customer logs in
(a write to the auth database).

Password logins are not part of the load: a login whose database goes away between counting the attempt
and taking it back stays counted as a failed attempt, and enough of them lock the address out
(docs/RELIABILITY.md, "High availability").
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc
from tessera.inventory.v1 import inventory_pb2_grpc

from tests.support.ha_cluster import HaCluster, ha_cluster
from tests.support.inventory import (
    InventoryClient,
    assert_ledger_consistent,
    create_product,
    order_request,
    pb,
)
from tests.support.load import Load, LoadReport, Outcome
from tests.support.logs import wait_until
from tests.support.processes import ServiceProcesses
from tests.support.servers import ServerProcess
from tests.support.status import details_of
from tests.support.tokens import bearer

PASSWORD = "correct horse battery staple"
CLIENTS = 8
PRODUCTS = 4
STOCK = 1_000_000
# Every call carries this deadline; none may take longer (plus scheduling slack on a loaded machine).
DEADLINE_SECONDS = 5.0
HANG_SLACK_SECONDS = 2.0
# Writes must be back on the new primary within this long after the leader is killed. Patroni's leader
# key lives 10 s (scripts/ha-cluster: ttl), so the expected figure is 10-15 s.
WRITES_RESUME_WITHIN_SECONDS = 30.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
ALLOWED_CODES = {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"}
Login = Callable[[str], Awaitable[auth_pb2.TokenResponse]]


@dataclass
class Ledger:
    """What the clients were told: per request id its last outcome, who sent it, and the order id."""

    outcome: dict[str, str] = field(default_factory=dict)
    sender: dict[str, tuple[InventoryClient, str]] = field(default_factory=dict)
    order_id: dict[str, str] = field(default_factory=dict)
    # (started, ended) of every acknowledged order and auth-service read, to time the outages.
    orders_ok: list[tuple[float, float]] = field(default_factory=list)
    auth_ok: list[tuple[float, float]] = field(default_factory=list)

    def acknowledged(self) -> set[str]:
        return {rid for rid, code in self.outcome.items() if code == "OK"}

    @staticmethod
    def longest_pause(calls: list[tuple[float, float]], start: float, end: float) -> float:
        """The longest time between two successive acknowledgements, from the last one before `start`
        to `end`: how long nothing of this kind got through around an event."""
        ends = sorted(ended for _, ended in calls)
        before = [t for t in ends if t < start][-1:]
        during = [t for t in ends if start <= t <= end]
        moments = before + during
        return max((b - a for a, b in itertools.pairwise(moments)), default=end - start)


async def test_the_primary_killed_under_load_then_switched_over_loses_and_doubles_no_order(
    tmp_path: Path,
) -> None:
    async with ha_cluster(tmp_path) as cluster, ServiceProcesses(tmp_path) as services:
        emails = [f"customer-{i}@example.com" for i in range(CLIENTS)]
        await services.create_users(
            cluster.auth_url, [("staff@example.com", "staff")] + [(e, "customer") for e in emails], PASSWORD
        )
        # The health probes ask every half second, so that health can follow a 10 s outage.
        auth = await services.start_auth(cluster.auth_url, **_frequent_probes("AUTH"))
        data = await services.start_data(cluster.data_url, auth.target, **_frequent_probes("DATA"))
        async with (
            grpc.aio.insecure_channel(auth.target) as auth_channel,
            grpc.aio.insecure_channel(data.target) as data_channel,
        ):
            auth_stub = auth_pb2_grpc.AuthServiceStub(auth_channel)
            data_stub = inventory_pb2_grpc.InventoryServiceStub(data_channel)

            async def login(email: str) -> auth_pb2.TokenResponse:
                request = auth_pb2.TokenRequest(
                    password=auth_pb2.PasswordGrant(username=email, password=PASSWORD)
                )
                response: auth_pb2.TokenResponse = await auth_stub.Token(request, timeout=DEADLINE_SECONDS)
                return response

            staff = InventoryClient(data_stub, (await login("staff@example.com")).access_token, "staff")
            customers = [InventoryClient(data_stub, (await login(e)).access_token, e) for e in emails]
            products = [(await create_product(staff, stock=STOCK)).id for _ in range(PRODUCTS)]
            health: dict[str, list[int]] = {"auth": [], "data": []}
            watchers = [
                asyncio.create_task(_watch_health(auth_channel, health["auth"])),
                asyncio.create_task(_watch_health(data_channel, health["data"])),
            ]
            await wait_until(lambda: all(statuses[-1:] == [SERVING] for statuses in health.values()))
            report, ledger, timings = await _run_failovers(cluster, customers, products, auth_stub, login)

            # Both services reported the outage in their health and are SERVING again.
            await wait_until(lambda: all(statuses[-1:] == [SERVING] for statuses in health.values()))
            for watcher in watchers:
                watcher.cancel()
            for service, statuses in health.items():
                assert NOT_SERVING in statuses, (service, statuses)

            # The services hold connections to the primary only: none to the killed member, none to
            # the demoted one (both of their pools and health probes).
            connections = await cluster.service_connections()
            assert [name for name, (primary, _) in connections.items() if primary] == [timings.new_leader]
            assert all(count == 0 for primary, count in connections.values() if not primary), connections
            assert connections[timings.new_leader][1] > 0, connections

            # Every call either succeeded or failed as retryable, and none outlived its deadline.
            unexpected = [o for o in report.outcomes if o.code not in ALLOWED_CODES]
            assert not unexpected, _server_side_story(unexpected, [auth, data])
            longest = max(o.ended - o.started for o in report.outcomes)
            assert longest <= DEADLINE_SECONDS + HANG_SLACK_SECONDS, longest
            for outcome in report.outcomes:
                if outcome.code == "UNAVAILABLE":
                    assert outcome.error is not None
                    assert details_of(outcome.error).retry_info is not None, outcome.error.details()

            # The clients retry what was not answered, as the same caller with the same request. An order
            # committed just before its primary died (its answer lost) comes back; one that was never
            # committed is placed now.
            unanswered = [rid for rid, code in ledger.outcome.items() if code != "OK"]
            committed_unanswered = len(await _orders_by_request_id(cluster.data_url)) - len(
                ledger.acknowledged()
            )
            for request_id in unanswered:
                client, product_id = ledger.sender[request_id]
                order = await _until_answered(
                    lambda c=client, p=product_id, r=request_id: c.CreateOrder(
                        order_request((p, 1), request_id=r), timeout=DEADLINE_SECONDS
                    )
                )
                ledger.order_id[request_id] = order.id
            # The auth service works on the new primary too.
            await _until_answered(lambda: login(emails[0]))

            rows = await _orders_by_request_id(cluster.data_url)
            # Exactly one order per request id, and it is the one the client was told about.
            assert rows == ledger.order_id
            assert len(set(rows.values())) == len(rows)
            assert timings.acknowledged_before_kill <= set(rows)
            state = await assert_ledger_consistent(cluster.data_url)
            assert state.orders == len(ledger.outcome)
            assert sum(STOCK - state.stock[p] for p in products) == len(ledger.outcome)

            print(
                f"\nRELIABILITY ha failover: {len(report.outcomes)} calls by {CLIENTS} clients, "
                f"codes {dict(report.codes)}; "
                f"leader SIGKILLed ({timings.killed}): no order for {timings.kill_write_gap:.1f} s, "
                f"no auth read for {timings.kill_auth_gap:.1f} s, "
                f"a login after {timings.kill_login_back:.1f} s, "
                f"codes {dict(timings.kill_codes)}; "
                f"switchover ({timings.switched}): "
                f"no order for {timings.switch_write_gap:.1f} s, "
                f"no auth read for {timings.switch_auth_gap:.1f} s, "
                f"a login after {timings.switch_login_back:.1f} s, "
                f"codes {dict(timings.switch_codes)}; "
                f"{len(ledger.outcome)} orders for {len(rows)} request ids, "
                f"{len(unanswered)} retried ({committed_unanswered} of them had been committed), "
                f"{len(timings.acknowledged_before_kill)} acknowledged before the kill: "
                "0 lost, 0 doubled"
            )


@dataclass
class Timings:
    killed: str = ""
    switched: str = ""
    new_leader: str = ""
    kill_write_gap: float = 0.0
    kill_auth_gap: float = 0.0
    kill_login_back: float = 0.0
    switch_write_gap: float = 0.0
    switch_auth_gap: float = 0.0
    switch_login_back: float = 0.0
    kill_codes: Counter[str] = field(default_factory=Counter)
    switch_codes: Counter[str] = field(default_factory=Counter)
    acknowledged_before_kill: set[str] = field(default_factory=set)


async def _run_failovers(
    cluster: HaCluster,
    customers: list[InventoryClient],
    products: list[str],
    auth_stub: auth_pb2_grpc.AuthServiceStub,
    login: Login,
) -> tuple[LoadReport, Ledger, Timings]:
    ledger, timings = Ledger(), Timings()

    async def one_call(number: int) -> None:
        client = customers[number % CLIENTS]
        product_id = products[number % PRODUCTS]
        started = time.monotonic()
        if number % 8 == 5:
            # The auth service reads its own database (the user, and whether the token was revoked).
            await auth_stub.GetCurrentUser(
                auth_pb2.GetCurrentUserRequest(), metadata=bearer(client.token), timeout=DEADLINE_SECONDS
            )
            ledger.auth_ok.append((started, time.monotonic()))
            return
        if number % 4 == 3:
            await client.GetProduct(pb.GetProductRequest(id=product_id), timeout=DEADLINE_SECONDS)
            return
        request_id = str(uuid.uuid4())
        ledger.outcome[request_id], ledger.sender[request_id] = "IN_FLIGHT", (client, product_id)
        try:
            order = await client.CreateOrder(
                order_request((product_id, 1), request_id=request_id), timeout=DEADLINE_SECONDS
            )
        except grpc.aio.AioRpcError as error:
            ledger.outcome[request_id] = error.code().name
            raise
        ledger.outcome[request_id], ledger.order_id[request_id] = "OK", order.id
        ledger.orders_ok.append((started, time.monotonic()))

    def orders_since(moment: float) -> int:
        return sum(1 for started, _ in ledger.orders_ok if started >= moment)

    def auth_reads_since(moment: float) -> int:
        return sum(1 for started, _ in ledger.auth_ok if started >= moment)

    async def login_works(since: float) -> float:
        """A password login (it writes: attempt counters, a refresh token) goes through; seconds since."""
        await _until_answered(lambda: login(customers[0].subject))
        return time.monotonic() - since

    async with Load(workers=CLIENTS, call=one_call) as load:
        await load.wait_for(lambda: orders_since(0) >= 30)

        timings.acknowledged_before_kill = ledger.acknowledged()
        timings.killed = str((await cluster.kill_leader())["killed"])
        # From the moment the processes are gone: calls that started earlier may still have succeeded.
        killed_at = time.monotonic()
        await load.wait_for(
            lambda: orders_since(killed_at) >= 20 and auth_reads_since(killed_at) >= 1, within=90
        )
        timings.kill_login_back = await login_works(since=killed_at)
        timings.kill_codes = Counter(o.code for o in load.report.outcomes if o.started >= killed_at)
        timings.kill_write_gap = ledger.longest_pause(ledger.orders_ok, killed_at, time.monotonic())
        timings.kill_auth_gap = ledger.longest_pause(ledger.auth_ok, killed_at, time.monotonic())

        switched_at = time.monotonic()
        switchover = await cluster.switchover()
        timings.switched = f"{switchover['old_leader']} → {switchover['new_leader']}"
        timings.new_leader = str(switchover["new_leader"])
        # Orders must then go through on the new leader (until now they may have reached the old one).
        switched = time.monotonic()
        await load.wait_for(
            lambda: orders_since(switched) >= 20 and auth_reads_since(switched) >= 1, within=90
        )
        timings.switch_login_back = await login_works(since=switched_at)
        timings.switch_codes = Counter(o.code for o in load.report.outcomes if o.started >= switched_at)
        timings.switch_write_gap = ledger.longest_pause(ledger.orders_ok, switched_at, time.monotonic())
        timings.switch_auth_gap = ledger.longest_pause(ledger.auth_ok, switched_at, time.monotonic())
    assert timings.kill_write_gap <= WRITES_RESUME_WITHIN_SECONDS, timings
    return load.report, ledger, timings


def _frequent_probes(prefix: str) -> dict[str, str]:
    return {f"{prefix}_DB_HEALTH_INTERVAL_SECONDS": "0.5", f"{prefix}_DB_HEALTH_TIMEOUT_SECONDS": "1"}


async def _watch_health(channel: grpc.aio.Channel, statuses: list[int]) -> None:
    """Every status the server's health Watch stream reports, in order."""
    async for response in health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service="")
    ):
        statuses.append(response.status)


def _server_side_story(outcomes: list[Outcome], servers: list[ServerProcess]) -> str:
    """What the servers logged about the calls that failed unexpectedly (by request id)."""
    story = []
    for outcome in outcomes:
        assert outcome.error is not None
        request_id = details_of(outcome.error).request_info
        story.append(f"{outcome.code}: {outcome.error.details()} (request {request_id})")
        for server in servers:
            story += [
                str(line)
                for line in server.log_lines()
                if request_id is not None and line.get("request_id") == request_id.request_id
            ]
    return "\n".join(story)


async def _until_answered(call: Callable[[], Awaitable[Any]], within: float = 60.0) -> Any:
    """Repeat a call that fails with a retryable code until it is answered (bounded; 0.2 s apart, as a
    client backs off after UNAVAILABLE)."""

    async def attempt() -> Any:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code().name not in ALLOWED_CODES:
                raise
            return None

    return await wait_until(attempt, within=within, interval=0.2)


async def _orders_by_request_id(database_url: str) -> dict[str, str]:
    """request id → order id, for every order in the database (one row per order and request id)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            keys = (
                await connection.execute(
                    text(
                        "SELECT request_id, result_id FROM idempotency_keys "
                        "WHERE result_id IN (SELECT id FROM orders)"
                    )
                )
            ).all()
            orders = (await connection.execute(text("SELECT count(*) FROM orders"))).scalar_one()
    finally:
        await engine.dispose()
    by_request = {str(request_id): str(order_id) for request_id, order_id in keys}
    assert len(by_request) == len(keys) == orders, (len(by_request), len(keys), orders)
    return by_request
