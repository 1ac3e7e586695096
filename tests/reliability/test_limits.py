"""Limits: oversized messages, oversized metadata and tokens, and the cap on concurrent RPCs.

Each is refused before it costs anything: a message over the limit never reaches a handler, an
oversized token is never decoded, metadata over the transport's limit never reaches our code, and
calls beyond `max_concurrent_rpcs` are refused instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tessera.auth.v1 import auth_pb2

from shared.tokens import MAX_TOKEN_BYTES
from tests.reliability.conftest import StartData
from tests.support.auth_server import running_auth_server
from tests.support.faults import checked_out, lock_held
from tests.support.inventory import create_product, database_snapshot, expect_error, new_product, pb
from tests.support.logs import wait_until
from tests.support.tokens import STAFF_SCOPES, bearer

SMALL_LIMIT = 64 * 1024
PASSWORD = "a long passphrase"
GET_PRODUCT = "/tessera.inventory.v1.InventoryService/GetProduct"
GET_CURRENT_USER = "/tessera.auth.v1.AuthService/GetCurrentUser"


@pytest.fixture
def decoded() -> Iterator[list[str]]:
    """Every token this process's verifiers start to decode: a spy on PyJWT's two entry points."""
    seen: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        for name in ("get_unverified_header", "decode"):
            original = getattr(jwt, name)

            def spy(token: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                seen.append(token if isinstance(token, str) else token.decode())
                return _original(token, *args, **kwargs)

            patch.setattr(jwt, name, spy)
        yield seen


def started(registry: Any, method: str) -> float:
    """How many calls of `method` reached the server's interceptors (its own metrics)."""
    service, name = method[1:].split("/")
    labels = {"grpc_type": "unary", "grpc_service": service, "grpc_method": name}
    return float(registry.get_sample_value("grpc_server_started_total", labels) or 0.0)


async def refused_with(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value.code()


async def test_a_message_over_the_size_limit_is_refused_by_both_services_and_changes_nothing(
    database_url: str, auth_database_url: str, tmp_path: Path, start_data: StartData
) -> None:
    data = await start_data(max_message_bytes=SMALL_LIMIT)
    before = await database_snapshot(database_url)
    product = new_product()
    product.description = "x" * (2 * SMALL_LIMIT)

    code = await refused_with(data.staff.CreateProduct(pb.CreateProductRequest(product=product)))

    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await database_snapshot(database_url) == before
    # Connection and server are fine: the next, normal call succeeds.
    await create_product(data.staff)

    async with running_auth_server(auth_database_url, tmp_path, max_message_bytes=SMALL_LIMIT) as auth:
        too_big = auth_pb2.RegisterRequest(
            email="ann@example.com", password=PASSWORD, display_name="x" * SMALL_LIMIT
        )
        assert await refused_with(auth.stub.Register(too_big)) == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Nothing was registered: the same email registers now.
        await auth.stub.Register(auth_pb2.RegisterRequest(email="ann@example.com", password=PASSWORD))


async def test_oversized_tokens_and_metadata_are_refused_before_any_decoding(
    auth_database_url: str, tmp_path: Path, start_data: StartData, decoded: list[str]
) -> None:
    data = await start_data()
    # A correctly signed token the server would accept, were it not padded past the size limit.
    padded = data.minter.mint("staff-1", STAFF_SCOPES, padding="p" * MAX_TOKEN_BYTES)
    assert len(padded) > MAX_TOKEN_BYTES
    product = await create_product(data.staff)
    decoded.clear()
    registry = data.running.server.metrics.registry

    details = await expect_error(
        data.channel.unary_unary(GET_PRODUCT)(
            pb.GetProductRequest(id=product.id).SerializeToString(), metadata=bearer(padded), timeout=10
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid_token",
    )
    assert details.error_info is not None
    assert decoded == [], "the oversized token was handed to the JWT decoder"

    # Metadata beyond the transport's limit (16 KiB) never reaches the interceptors at all.
    calls_before = started(registry, GET_PRODUCT)
    giant = "Bearer " + "g" * (40 * 1024)
    code = await refused_with(
        data.channel.unary_unary(GET_PRODUCT)(
            pb.GetProductRequest(id=product.id).SerializeToString(),
            metadata=(("authorization", giant),),
            timeout=10,
        )
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert started(registry, GET_PRODUCT) == calls_before
    assert decoded == []

    # The auth service applies the same limits to its own authenticated methods.
    async with running_auth_server(auth_database_url, tmp_path) as auth:
        await auth.create_user("ann@example.com", PASSWORD)
        token = (await auth.login("ann@example.com", PASSWORD)).access_token
        decoded.clear()
        for metadata, expected in (
            (bearer(token + "." + "p" * MAX_TOKEN_BYTES), grpc.StatusCode.UNAUTHENTICATED),
            ((("authorization", giant),), grpc.StatusCode.RESOURCE_EXHAUSTED),
        ):
            call = auth.stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=metadata, timeout=10)
            assert await refused_with(call) == expected
        assert decoded == []
        assert (
            await auth.stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=bearer(token))
        ).email


async def test_calls_beyond_max_concurrent_rpcs_are_refused_with_resource_exhausted(
    database_url: str, start_data: StartData
) -> None:
    data = await start_data(max_concurrent_rpcs=4)
    product = await create_product(data.staff, stock=100)

    async with lock_held(database_url, product.id):
        # Four stock changes wait for the test's lock: every slot is taken.
        busy = [
            asyncio.ensure_future(
                data.staff.AdjustStock(
                    pb.AdjustStockRequest(
                        product_id=product.id, delta=1, reason=pb.STOCK_MOVEMENT_REASON_RESTOCK
                    )
                )
            )
            for _ in range(4)
        ]
        await wait_until(lambda: checked_out(data.engine) == 4)

        excess = await asyncio.gather(
            *(refused_with(data.staff.GetProduct(pb.GetProductRequest(id=product.id))) for _ in range(10))
        )
        assert excess == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 10
        # A busy server is not an unhealthy one: health Check is outside the budget.
        health = health_pb2_grpc.HealthStub(data.channel)
        assert (
            await health.Check(health_pb2.HealthCheckRequest())
        ).status == health_pb2.HealthCheckResponse.SERVING

    # The slots free up and the server serves again; the four waiting calls were never refused.
    assert [r.movement.delta for r in await asyncio.gather(*busy)] == [1] * 4
    assert (await data.staff.GetProduct(pb.GetProductRequest(id=product.id))).stock_on_hand == 104


async def test_an_error_naming_a_hundred_bad_lines_still_fits_what_a_client_accepts(
    start_data: StartData,
) -> None:
    """Found by the fuzzer: 200 field violations (or 100 missing products) made trailers too big for the
    client's metadata limit, which then saw RESOURCE_EXHAUSTED instead of the error."""
    data = await start_data()
    empty_lines = pb.CreateOrderRequest(lines=[pb.CreateOrderRequest.Line() for _ in range(100)])
    missing_products = pb.CreateOrderRequest(
        lines=[pb.CreateOrderRequest.Line(product_id=str(uuid.uuid4()), quantity=1) for _ in range(100)]
    )

    invalid = await expect_error(data.staff.CreateOrder(empty_lines), grpc.StatusCode.INVALID_ARGUMENT)
    unservable = await expect_error(
        data.staff.CreateOrder(missing_products), grpc.StatusCode.FAILED_PRECONDITION
    )

    assert invalid.bad_request is not None
    assert {v.field for v in invalid.bad_request.field_violations} >= {
        "lines[0].product_id",
        "lines[0].quantity",
    }
    assert unservable.precondition_failure is not None
    assert unservable.precondition_failure.violations[0].type == "NOT_FOUND"
    # What did not fit is counted, so a client knows the list is not complete.
    listed = {
        200: len(invalid.bad_request.field_violations),
        100: len(unservable.precondition_failure.violations),
    }
    for (total, shown), details in zip(listed.items(), (invalid, unservable), strict=True):
        assert details.error_info is not None
        assert shown + int(details.error_info.metadata["omitted_violations"]) == total


async def test_bytes_that_are_no_message_are_invalid_argument_not_unknown(
    auth_database_url: str, tmp_path: Path, start_data: StartData
) -> None:
    """Found by the fuzzer: grpcio answered undecodable requests with UNKNOWN and the DecodeError's text."""
    data = await start_data()
    token = data.minter.mint("staff-1", STAFF_SCOPES)
    # A string field holding invalid UTF-8, a truncated length-delimited field, a runaway varint.
    corrupt = (b"\x0a\x02\xc3\x28", b"\x0a\x05ab", b"\x08" + b"\xff" * 11)
    async with running_auth_server(auth_database_url, tmp_path) as auth:
        for channel, method, metadata in (
            (data.channel, GET_PRODUCT, bearer(token)),
            (auth.channel, "/tessera.auth.v1.AuthService/Register", ()),
        ):
            for payload in corrupt:
                details = await expect_error(
                    channel.unary_unary(method)(payload, metadata=metadata, timeout=10),
                    grpc.StatusCode.INVALID_ARGUMENT,
                )
                assert details.bad_fields == {"request"}
                assert "Traceback" not in details.message
                assert "<class" not in details.message
