"""A database that is up but refuses: too many connections (53300) and a read-only primary (25006).

Each refusal is produced by the real server, not raised by a stub, and reaches both services on
every path a request takes to the database: the data service's driver fast path (`GetProduct`), its
ORM path (`CreateOrder`), the auth service's grants, and the health probe. Every one must answer
UNAVAILABLE with RetryInfo (retry later or elsewhere), write nothing, and recover by itself.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tessera.auth.v1 import auth_pb2

from tests.support.auth_server import RunningAuthServer, running_auth_server
from tests.support.data_server import running_data_server
from tests.support.faults import asyncpg_dsn
from tests.support.inventory import (
    InventoryClient,
    assert_ledger_consistent,
    client_for,
    create_product,
    database_snapshot,
    expect_error,
    order_request,
    pb,
)
from tests.support.logs import wait_until
from tests.support.pg_cluster import throwaway_cluster
from tests.support.tokens import CUSTOMER_SCOPES, STAFF_SCOPES, TokenMinter, bearer

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
EMAIL, PASSWORD = "ann@example.com", "correct horse battery staple"
# The services notice a change of the database within a fraction of a second.
FAST_HEALTH: dict[str, Any] = {"db_health_interval_seconds": 0.1, "db_health_timeout_seconds": 1.0}


def postgres_only(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL refusals (SQLSTATE 53300, 25006); SQLite has no server to refuse")


@dataclass
class Services:
    """Both services on the databases under test, with a staff member's and a customer's access."""

    auth: RunningAuthServer
    data_channel: grpc.aio.Channel
    staff: InventoryClient
    customer: InventoryClient

    async def health(self) -> tuple[int, int]:
        auth = await health_pb2_grpc.HealthStub(self.auth.channel).Check(health_pb2.HealthCheckRequest())
        data = await health_pb2_grpc.HealthStub(self.data_channel).Check(health_pb2.HealthCheckRequest())
        return auth.status, data.status

    def who_am_i(self, token: str) -> Awaitable[Any]:
        return self.auth.stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=bearer(token))


@asynccontextmanager
async def services_on(data_url: str, auth_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    minter = TokenMinter()
    async with (
        running_data_server(data_url, minter.key_set(), **FAST_HEALTH) as data,
        running_auth_server(auth_url, tmp_path, **FAST_HEALTH) as auth,
        grpc.aio.insecure_channel(data.target) as channel,
    ):
        await auth.create_user(EMAIL, PASSWORD)
        yield Services(
            auth=auth,
            data_channel=channel,
            staff=client_for(channel, minter, "staff-1", STAFF_SCOPES),
            customer=client_for(channel, minter, "customer-1", CUSTOMER_SCOPES),
        )


async def expect_unavailable(call: Awaitable[Any]) -> None:
    details = await expect_error(call, grpc.StatusCode.UNAVAILABLE)
    assert details.retry_info is not None, details


async def terminate_sessions(admin_dsn: str, *, user: str | None = None, database: str | None = None) -> None:
    """End the services' sessions (their engines name them `tessera-…`) of `user` and/or in `database`:
    their next ones start anew, under the database's new rules."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE ($1::text IS NULL OR usename = $1) AND ($2::text IS NULL OR datname = $2) "
            "AND application_name LIKE 'tessera-%' AND pid <> pg_backend_pid()",
            user,
            database,
        )
    finally:
        await admin.close()


async def test_too_many_connections_answers_unavailable_on_every_path_and_health_follows(
    backend: str, tmp_path: Path
) -> None:
    postgres_only(backend)
    # A role of its own (superusers are exempt from connection limits), so on a cluster of its own.
    async with throwaway_cluster() as cluster:
        await cluster.execute("CREATE ROLE tessera LOGIN")
        data_url = await cluster.create_database("data", owner="tessera")
        auth_url = await cluster.create_database("auth", owner="tessera")
        async with services_on(data_url, auth_url, tmp_path) as services:
            product = await create_product(services.staff, stock=10)
            token = (await services.auth.login(EMAIL, PASSWORD)).access_token
            before = await database_snapshot(cluster.url("data"))

            # The server now refuses every new session of the role: 53300 "too many connections".
            await cluster.execute("ALTER ROLE tessera CONNECTION LIMIT 0")
            await terminate_sessions(cluster.admin_dsn, user="tessera")

            await wait_until(lambda: _health_is(services, (NOT_SERVING, NOT_SERVING)))
            await expect_unavailable(services.customer.GetProduct(pb.GetProductRequest(id=product.id)))
            await expect_unavailable(services.customer.CreateOrder(order_request((product.id, 1))))
            await expect_unavailable(services.auth.login(EMAIL, PASSWORD))
            await expect_unavailable(services.who_am_i(token))
            assert await database_snapshot(cluster.url("data")) == before

            await cluster.execute("ALTER ROLE tessera CONNECTION LIMIT -1")
            await wait_until(lambda: _health_is(services, (SERVING, SERVING)))
            assert (
                await services.customer.GetProduct(pb.GetProductRequest(id=product.id))
            ).stock_on_hand == 10
            await services.customer.CreateOrder(order_request((product.id, 1)))
            assert (await services.who_am_i(token)).email == EMAIL
        state = await assert_ledger_consistent(cluster.url("data"))
        assert (state.orders, state.stock[product.id]) == (1, 9)


async def test_a_read_only_primary_answers_writes_unavailable_and_serves_reads(
    backend: str, database_url: str, auth_database_url: str, tmp_path: Path
) -> None:
    postgres_only(backend)
    async with services_on(database_url, auth_database_url, tmp_path) as services:
        product = await create_product(services.staff, stock=10)
        request_id = str(uuid.uuid4())
        before = await database_snapshot(database_url)

        # What a primary demoted by a failover does until clients reconnect to the new one: every
        # transaction read-only, writes refused with 25006.
        async with _read_only(database_url), _read_only(auth_database_url):
            await expect_unavailable(
                services.customer.CreateOrder(order_request((product.id, 1), request_id=request_id))
            )
            await expect_unavailable(services.auth.login(EMAIL, PASSWORD))
            # Reads are still served.
            assert (
                await services.customer.GetProduct(pb.GetProductRequest(id=product.id))
            ).stock_on_hand == 10
            assert await database_snapshot(database_url) == before

        # Writable again: the client's retry with the same request id places the order, once.
        await services.customer.CreateOrder(order_request((product.id, 1), request_id=request_id))
        await services.customer.CreateOrder(order_request((product.id, 1), request_id=request_id))
        assert (await services.auth.login(EMAIL, PASSWORD)).access_token
    state = await assert_ledger_consistent(database_url)
    assert (state.orders, state.stock[product.id]) == (1, 9)


@asynccontextmanager
async def _read_only(database_url: str) -> AsyncIterator[None]:
    """Make the test's own database read-only for every new session, and end the current ones."""
    dsn = asyncpg_dsn(database_url)
    name = dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        await terminate_sessions(dsn, database=name)
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        await admin.close()
        await terminate_sessions(dsn, database=name)


async def _health_is(services: Services, expected: tuple[int, int]) -> bool:
    return await services.health() == expected
