"""Two data-service processes and two auth-service processes on one PostgreSQL, clients spread over both.

What one process guarantees with its own locks would be worthless here; these cases pass only if the
guarantee lives in the database: no oversell, one order per request id, refresh-token reuse detected
and the login throttle counted whichever replica a request reaches.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc
from tessera.inventory.v1 import inventory_pb2_grpc

from tests.support.databases import enabled_backends, fresh_database
from tests.support.inventory import (
    InventoryClient,
    assert_ledger_consistent,
    create_product,
    order_request,
    pb,
)
from tests.support.processes import ServiceProcesses
from tests.support.status import details_of

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        "postgres" not in enabled_backends(),
        reason="replicas share one database server; SQLite is a file inside one process",
    ),
]
PASSWORD = "correct horse battery staple"
CUSTOMERS = 20


@dataclass
class Cluster:
    data_url: str
    auth_url: str
    auth_stubs: list[auth_pb2_grpc.AuthServiceStub]
    data_stubs: list[inventory_pb2_grpc.InventoryServiceStub]
    staff_token: str
    customer_tokens: list[str]

    def customer(self, number: int) -> InventoryClient:
        """Customer `number`, talking to data replica `number % 2`."""
        stub = self.data_stubs[number % 2]
        return InventoryClient(stub, self.customer_tokens[number % CUSTOMERS], f"customer-{number}")

    def staff(self, replica: int = 0) -> InventoryClient:
        return InventoryClient(self.data_stubs[replica], self.staff_token, "staff")

    async def login(self, replica: int, email: str, password: str = PASSWORD) -> auth_pb2.TokenResponse:
        response: auth_pb2.TokenResponse = await self.auth_stubs[replica].Token(
            auth_pb2.TokenRequest(password=auth_pb2.PasswordGrant(username=email, password=password)),
            timeout=10,
        )
        return response

    async def refresh(self, replica: int, refresh_token: str) -> auth_pb2.TokenResponse:
        response: auth_pb2.TokenResponse = await self.auth_stubs[replica].Token(
            auth_pb2.TokenRequest(refresh_token=auth_pb2.RefreshTokenGrant(refresh_token=refresh_token)),
            timeout=10,
        )
        return response


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    directory = tmp_path_factory.mktemp("replicas")
    async with (
        fresh_database("postgres", directory, "data") as data_url,
        fresh_database("postgres", directory, "auth") as auth_url,
        ServiceProcesses(directory) as services,
    ):
        customers = [f"customer-{i}@example.com" for i in range(CUSTOMERS)]
        others = ["victim@example.com", "rotator@example.com", "racer@example.com"]
        await services.create_users(
            auth_url,
            [("staff@example.com", "staff")] + [(e, "customer") for e in customers + others],
            PASSWORD,
        )
        auths = await asyncio.gather(*(services.start_auth(auth_url, name=f"auth-{i}") for i in range(2)))
        datas = await asyncio.gather(
            *(services.start_data(data_url, auths[i].target, name=f"data-{i}") for i in range(2))
        )
        channels = [grpc.aio.insecure_channel(p.target) for p in (*auths, *datas)]
        try:
            auth_stubs = [auth_pb2_grpc.AuthServiceStub(c) for c in channels[:2]]
            cluster = Cluster(
                data_url=data_url,
                auth_url=auth_url,
                auth_stubs=auth_stubs,
                data_stubs=[inventory_pb2_grpc.InventoryServiceStub(c) for c in channels[2:]],
                staff_token="",
                customer_tokens=[],
            )
            cluster.staff_token = (await cluster.login(0, "staff@example.com")).access_token
            cluster.customer_tokens = [
                (await cluster.login(i % 2, f"customer-{i}@example.com")).access_token
                for i in range(CUSTOMERS)
            ]
            yield cluster
        finally:
            await asyncio.gather(*(c.close() for c in channels))


async def outcomes(calls: list[object]) -> list[object]:
    return await asyncio.gather(*calls, return_exceptions=True)  # type: ignore[arg-type]


async def test_a_hundred_concurrent_orders_over_both_replicas_never_oversell(cluster: Cluster) -> None:
    scarce = await create_product(cluster.staff(0), stock=30)
    companion = await create_product(cluster.staff(1), stock=45)

    # Every order takes one of each, all or nothing.
    results = await outcomes(
        [
            cluster.customer(i).CreateOrder(order_request((scarce.id, 1), (companion.id, 1)), timeout=30)
            for i in range(100)
        ]
    )

    placed = [r for r in results if isinstance(r, pb.Order)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(placed) + len(refused) == 100, [
        r for r in results if not isinstance(r, pb.Order | grpc.aio.AioRpcError)
    ]
    assert len(placed) == 30
    for error in refused:
        details = details_of(error)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
        assert details.precondition_failure is not None
        assert {(v.type, v.subject) for v in details.precondition_failure.violations} == {
            ("INSUFFICIENT_STOCK", f"products/{scarce.id}")
        }
    state = await assert_ledger_consistent(cluster.data_url)
    assert (state.stock[scarce.id], state.stock[companion.id]) == (0, 15)
    print(
        f"\nRELIABILITY replicas: 100 concurrent orders over 2 data replicas, {len(placed)} placed, "
        "stock 30 → 0"
    )


async def test_racing_retries_of_one_request_id_make_one_order_across_replicas(cluster: Cluster) -> None:
    product = await create_product(cluster.staff(0), stock=1_000)
    request_ids = [str(uuid.uuid4()) for _ in range(20)]

    # Each request id sent five times at once by its customer, to both replicas.
    calls = [
        InventoryClient(
            cluster.data_stubs[copy % 2], cluster.customer_tokens[n], f"customer-{n}"
        ).CreateOrder(order_request((product.id, 2), request_id=request_id), timeout=30)
        for n, request_id in enumerate(request_ids)
        for copy in range(5)
    ]
    results = await outcomes(calls)

    assert all(isinstance(r, pb.Order) for r in results), [r for r in results if not isinstance(r, pb.Order)]
    orders_per_request = Counter()
    for index, order in enumerate(results):
        assert isinstance(order, pb.Order)
        orders_per_request[(index // 5, order.id)] += 1
    # One order id per request id, answered to all five copies.
    assert sorted(orders_per_request.values()) == [5] * 20
    state = await assert_ledger_consistent(cluster.data_url)
    assert state.stock[product.id] == 1_000 - 2 * 20


async def test_refresh_token_reuse_is_detected_across_replicas(cluster: Cluster) -> None:
    first = await cluster.login(0, "rotator@example.com")
    second = await cluster.refresh(1, first.refresh_token)

    with pytest.raises(grpc.aio.AioRpcError) as replayed:
        await cluster.refresh(0, first.refresh_token)
    assert (replayed.value.code(), details_of(replayed.value).reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid_grant",
    )
    # The replay revoked the whole family: the legitimate successor is dead too, on either replica.
    for replica in (0, 1):
        with pytest.raises(grpc.aio.AioRpcError) as revoked:
            await cluster.refresh(replica, second.refresh_token)
        assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # Ten copies of one refresh token raced over both replicas: exactly one rotation.
    token = (await cluster.login(1, "racer@example.com")).refresh_token
    results = await outcomes([cluster.refresh(i % 2, token) for i in range(10)])
    winners = [r for r in results if isinstance(r, auth_pb2.TokenResponse)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert (len(winners), len(losers)) == (1, 9)
    assert {(e.code(), details_of(e).reason) for e in losers} == {
        (grpc.StatusCode.UNAUTHENTICATED, "invalid_grant")
    }


async def test_the_login_throttle_is_shared_by_the_replicas(cluster: Cluster) -> None:
    # Ten wrong guesses at once, half on each replica: the account's limit of five holds in total.
    results = await outcomes(
        [cluster.login(i % 2, "victim@example.com", "a wrong password!") for i in range(10)]
    )
    codes = Counter(r.code() for r in results if isinstance(r, grpc.aio.AioRpcError))
    assert codes == {grpc.StatusCode.UNAUTHENTICATED: 5, grpc.StatusCode.RESOURCE_EXHAUSTED: 5}
    # Locked on both replicas, whatever the password.
    for replica in (0, 1):
        with pytest.raises(grpc.aio.AioRpcError) as locked:
            await cluster.login(replica, "victim@example.com")
        assert locked.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert details_of(locked.value).retry_info is not None
