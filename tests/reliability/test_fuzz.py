"""Bad input, generated: every RPC of both services gets requests built by Hypothesis from its descriptor.

For every example: never INTERNAL or UNKNOWN; every refusal carries ErrorInfo and RequestInfo (and a
BadRequest naming fields for INVALID_ARGUMENT); and a refused request changes nothing in the database
(the only writes a refusal may make by design are the auth service's failed-attempt counters, which
are what a brute-force limit is made of). One server per service and backend for the whole module;
derandomized, so CI tries the same inputs every run. TESSERA_FUZZ_EXAMPLES sets the examples per RPC
(`make soak-reliability` runs many more).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import pytest_asyncio
from google.protobuf.descriptor import MethodDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tessera.auth.v1 import auth_pb2
from tessera.inventory.v1 import inventory_pb2, inventory_pb2_grpc

from shared.config import ServiceSettings
from tests.support.auth_server import running_auth_server
from tests.support.calls import method_path
from tests.support.data_server import running_data_server
from tests.support.databases import enabled_backends, fresh_database
from tests.support.fuzz import authorization, payloads
from tests.support.inventory import new_product, order_request
from tests.support.status import details_of
from tests.support.tokens import STAFF_SCOPES, TokenMinter, bearer

pytestmark = pytest.mark.asyncio(loop_scope="module")
T = TypeVar("T")

EXAMPLES_PER_RPC = int(os.environ.get("TESSERA_FUZZ_EXAMPLES", "45"))
TOKEN_EXAMPLES = 2 * EXAMPLES_PER_RPC
INVENTORY = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
AUTH = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
DATA_TABLES = ("products", "stock_movements", "orders", "order_lines", "idempotency_keys")
AUTH_TABLES = (
    "users",
    "user_roles",
    "service_clients",
    "refresh_tokens",
    "revoked_access_tokens",
    "login_attempts",
)
# A refused grant or password change is counted against the account and the peer: that is the
# brute-force limit working, not a partial write.
COUNTED_WHEN_REFUSED = {
    "Token": "login_attempts",
    "ChangePassword": "login_attempts",
    # Registrations per address are counted before the email is found taken.
    "Register": "login_attempts",
}
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
MAX_MESSAGE_BYTES = ServiceSettings.model_fields["max_message_bytes"].default
PASSWORD = "correct horse battery staple"


@dataclass
class Target:
    """One service under fuzz: a channel to it, the database it owns, and values worth mutating."""

    channel: grpc.aio.Channel
    database_url: str
    tables: tuple[str, ...]
    token: str
    pool: list[str] = field(default_factory=list)
    _engine: Any = None

    async def snapshot(self, skip: str | None = None) -> dict[str, list[tuple[str, ...]]]:
        if self._engine is None:
            self._engine = create_async_engine(self.database_url)
        async with self._engine.connect() as connection:
            return {
                table: sorted(
                    tuple(str(v) for v in row)
                    for row in await connection.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 - fixed names
                )
                for table in self.tables
                if table != skip
            }


@dataclass
class Targets:
    inventory: Target
    auth: Target


def forged_page_tokens(real: str) -> list[str]:
    """Tokens shaped like ours (same filters digest) with keys we never issue."""
    real = real.rpartition(".")[0]  # the signed body, without its HMAC
    padded = real + "=" * (-len(real) % 4)
    decoded = json.loads(base64.urlsafe_b64decode(padded))
    keys: list[Any] = [
        [],
        ["x"],
        [1, 2],
        None,
        "k",
        ["9999-99-99T99:99:99", "not-a-uuid"],
        ["", ""],
        [["nested"]],
    ]
    forged = [{"f": decoded["f"], "k": key} for key in keys] + [
        {"k": decoded["k"]},
        {"f": 7, "k": decoded["k"]},
    ]
    return [base64.urlsafe_b64encode(json.dumps(t).encode()).decode().rstrip("=") for t in forged]


async def seed_inventory(channel: grpc.aio.Channel, token: str) -> list[str]:
    """Real products (one archived, one sold out), orders and page tokens: inputs that get deep."""
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    meta = bearer(token)
    pool: list[str] = []
    products = [
        await stub.CreateProduct(
            inventory_pb2.CreateProductRequest(product=new_product(), initial_stock=stock), metadata=meta
        )
        for stock in (1_000_000, 1, 0)
    ]
    archived = await stub.ArchiveProduct(
        inventory_pb2.ArchiveProductRequest(id=products[2].id), metadata=meta
    )
    orders = [await stub.CreateOrder(order_request((products[0].id, 1)), metadata=meta) for _ in range(2)]
    cancelled = await stub.CancelOrder(inventory_pb2.CancelOrderRequest(id=orders[1].id), metadata=meta)
    pool += [p.id for p in products] + [p.sku for p in products] + [p.etag for p in (*products, archived)]
    pool += [o.id for o in orders] + [o.etag for o in (*orders, cancelled)] + ["fuzzer", "staff-1"]
    listed = await stub.ListProducts(inventory_pb2.ListProductsRequest(page_size=1), metadata=meta)
    movements = await stub.ListStockMovements(
        inventory_pb2.ListStockMovementsRequest(product_id=products[0].id, page_size=1), metadata=meta
    )
    orders_page = await stub.ListOrders(inventory_pb2.ListOrdersRequest(page_size=1), metadata=meta)
    for page_token in (listed.next_page_token, movements.next_page_token, orders_page.next_page_token):
        pool += [page_token, *forged_page_tokens(page_token)]
    return pool


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=enabled_backends())
async def targets(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Targets]:
    directory: Path = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    minter = TokenMinter()
    async with AsyncExitStack() as stack:
        data_url = await stack.enter_async_context(fresh_database(request.param, directory, "data"))
        auth_url = await stack.enter_async_context(fresh_database(request.param, directory, "auth"))
        data = await stack.enter_async_context(running_data_server(data_url, minter.key_set()))
        auth = await stack.enter_async_context(running_auth_server(auth_url, directory))
        data_channel = await stack.enter_async_context(grpc.aio.insecure_channel(data.target))

        data_token = minter.mint("fuzzer", STAFF_SCOPES)
        await auth.create_user("admin@example.com", PASSWORD, role="admin")
        await auth.create_user("victim@example.com", PASSWORD)
        admin = await auth.login("admin@example.com", PASSWORD)
        victim = await auth.login("victim@example.com", PASSWORD)
        client_id, _secret = await auth.create_client("fuzz-client", "catalog.read")
        inventory = Target(data_channel, data_url, DATA_TABLES, data_token)
        inventory.pool = await seed_inventory(data_channel, data_token)
        auth_target = Target(auth.channel, auth_url, AUTH_TABLES, admin.access_token)
        auth_target.pool = [
            "admin@example.com",
            "victim@example.com",
            " Victim@Example.COM ",
            client_id,
            victim.access_token,
            victim.refresh_token,
            "catalog.read orders.write",
            "auth.admin",
        ]
        yield Targets(inventory=inventory, auth=auth_target)
        for target in (inventory, auth_target):
            if target._engine is not None:
                await target._engine.dispose()


@dataclass
class Outcomes:
    tried: int = 0
    codes: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        return f"{self.tried} generated requests, {dict(self.codes)}"


async def fuzz(
    target: Target,
    method: MethodDescriptor,
    inputs: st.SearchStrategy[tuple[bytes, tuple[tuple[str, str], ...]]],
    examples: int,
    expect: Callable[[grpc.aio.AioRpcError | None], None] = lambda _: None,
) -> Outcomes:
    """Send every generated (payload, metadata) to `method` and check what the service did with it."""
    loop = asyncio.get_running_loop()
    call = target.channel.unary_unary(method_path(method))  # raw bytes: payloads need not be messages
    allowed_write = COUNTED_WHEN_REFUSED.get(method.name)
    outcomes = Outcomes()

    def on_loop(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=60)

    async def attempt(payload: bytes, metadata: tuple[tuple[str, str], ...]) -> grpc.aio.AioRpcError | None:
        try:
            await call(payload, metadata=metadata, timeout=30)
        except grpc.aio.AioRpcError as error:
            return error
        return None

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs)
    def check(example: tuple[bytes, tuple[tuple[str, str], ...]]) -> None:
        payload, metadata = example
        outcomes.tried += 1
        before = on_loop(target.snapshot(skip=allowed_write))
        error = on_loop(attempt(payload, metadata))
        outcomes.codes[error.code().name if error else "OK"] += 1
        expect(error)
        if error is None:
            return
        assert error.code() not in NEVER, f"{error.code()}: {error.details()} for {payload[:300]!r}"
        if len(payload) > MAX_MESSAGE_BYTES:
            # Refused by the transport before any of our code runs (test_limits.py covers it).
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        else:
            details = details_of(error)
            assert details.error_info is not None, details
            assert details.request_info is not None, details
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                assert details.bad_fields or details.reason == "REQUEST_ID_REUSED", details
        after = on_loop(target.snapshot(skip=allowed_write))
        assert after == before, f"{error.code()} but the database changed"

    await asyncio.to_thread(check)
    return outcomes


@pytest.mark.parametrize(
    "method", [*INVENTORY.methods, *AUTH.methods], ids=lambda m: f"{m.containing_service.name}.{m.name}"
)
async def test_generated_requests_are_refused_precisely_and_change_nothing(
    targets: Targets, method: MethodDescriptor
) -> None:
    target = targets.inventory if method.containing_service is INVENTORY else targets.auth
    inputs = st.tuples(payloads(method.input_type, target.pool), st.just(bearer(target.token)))

    outcomes = await fuzz(target, method, inputs, EXAMPLES_PER_RPC)

    print(f"\nRELIABILITY fuzz {method.name}: {outcomes.summary()}")
    assert outcomes.tried >= EXAMPLES_PER_RPC * 0.9, outcomes.summary()


@pytest.mark.parametrize(
    "method",
    [INVENTORY.methods_by_name["GetProduct"], AUTH.methods_by_name["GetCurrentUser"]],
    ids=lambda m: f"{m.containing_service.name}.{m.name}",
)
async def test_generated_tokens_never_get_in_and_never_break_anything(
    targets: Targets, method: MethodDescriptor
) -> None:
    target = targets.inventory if method.containing_service is INVENTORY else targets.auth
    product_id = next(value for value in targets.inventory.pool if len(value) == 36)
    request = (
        inventory_pb2.GetProductRequest(id=product_id)
        if target is targets.inventory
        else auth_pb2.GetCurrentUserRequest()
    )
    inputs = st.tuples(st.just(request.SerializeToString()), authorization(target.token, target.pool))

    def only_valid_tokens_get_in(error: grpc.aio.AioRpcError | None) -> None:
        # A valid token spelled another way (`bearer` in lower case) is still valid; nothing else is.
        assert error is None or error.code() == grpc.StatusCode.UNAUTHENTICATED, error

    outcomes = await fuzz(target, method, inputs, TOKEN_EXAMPLES, only_valid_tokens_get_in)

    print(f"\nRELIABILITY fuzz tokens {method.name}: {outcomes.summary()}")
    assert outcomes.codes["UNAUTHENTICATED"] >= TOKEN_EXAMPLES * 0.8, outcomes.summary()
