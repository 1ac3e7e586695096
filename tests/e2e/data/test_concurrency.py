"""Many real gRPC clients at once; afterwards the database must show stock = Σ ledger and stock ≥ 0."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.data_server import RunningDataServer
from tests.support.inventory import (
    InventoryClient,
    assert_ledger_consistent,
    client_for,
    create_product,
    order_request,
    pb,
)
from tests.support.status import details_of
from tests.support.tokens import CUSTOMER_SCOPES, STAFF_SCOPES, TokenMinter

CLIENTS = 12


@pytest.fixture
async def channels(data_server: RunningDataServer) -> AsyncIterator[list[grpc.aio.Channel]]:
    """Separate connections, as separate client processes would have."""
    opened = [grpc.aio.insecure_channel(data_server.target) for _ in range(CLIENTS)]
    try:
        yield opened
    finally:
        for channel in opened:
            await channel.close()


def customers(channels: list[grpc.aio.Channel], minter: TokenMinter, count: int) -> list[InventoryClient]:
    return [
        client_for(channels[i % len(channels)], minter, f"customer-{i}", CUSTOMER_SCOPES)
        for i in range(count)
    ]


async def outcomes(calls: list[Awaitable[Any]]) -> list[Any]:
    """Run all calls at once; each result is the response or the AioRpcError."""
    return await asyncio.gather(*calls, return_exceptions=True)


def failures(results: list[Any]) -> list[grpc.aio.AioRpcError]:
    unexpected = [
        r for r in results if isinstance(r, BaseException) and not isinstance(r, grpc.aio.AioRpcError)
    ]
    assert not unexpected, unexpected
    return [r for r in results if isinstance(r, grpc.aio.AioRpcError)]


async def deadlocks_detected(database_url: str) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            )
            return int(result.scalar_one())
    finally:
        await engine.dispose()


async def test_sixty_orders_for_twenty_units_sell_exactly_twenty(
    staff: InventoryClient, channels: list[grpc.aio.Channel], minter: TokenMinter, database_url: str
) -> None:
    product = await create_product(staff, stock=20)

    results = await outcomes(
        [client.CreateOrder(order_request((product.id, 1))) for client in customers(channels, minter, 60)]
    )

    placed = [r for r in results if isinstance(r, pb.Order)]
    rejected = failures(results)
    assert len(placed) == 20
    assert len({order.id for order in placed}) == 20
    assert len(rejected) == 40
    for error in rejected:
        details = details_of(error)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
        assert details.reason == "ORDER_NOT_SERVABLE"
        assert [(v.type, v.subject) for v in details.precondition_failure.violations] == [
            ("INSUFFICIENT_STOCK", f"products/{product.id}")
        ]
    assert (await staff.GetProduct(pb.GetProductRequest(id=product.id))).stock_on_hand == 0
    state = await assert_ledger_consistent(database_url)
    assert state.orders == 20


async def test_orders_over_overlapping_products_in_opposite_orders_all_succeed(
    staff: InventoryClient,
    channels: list[grpc.aio.Channel],
    minter: TokenMinter,
    database_url: str,
    backend: str,
) -> None:
    products = [await create_product(staff, stock=100) for _ in range(4)]
    ids = [p.id for p in products]
    forward = [(pid, 1) for pid in ids]
    backward = list(reversed(forward))
    overlapping = [(ids[1], 1), (ids[3], 1), (ids[0], 1)]
    shapes = [forward, backward, overlapping]
    clients = customers(channels, minter, 48)

    results = await outcomes(
        [client.CreateOrder(order_request(*shapes[i % 3])) for i, client in enumerate(clients)]
    )

    assert failures(results) == []
    ordered = {
        pid: sum(q for shape_index in range(48) for p, q in shapes[shape_index % 3] if p == pid)
        for pid in ids
    }
    for product in products:
        current = await staff.GetProduct(pb.GetProductRequest(id=product.id))
        assert current.stock_on_hand == 100 - ordered[product.id]
    await assert_ledger_consistent(database_url)
    if backend == "postgres":
        # Rows are locked in one order (by id), so the database never had to break a deadlock.
        assert await deadlocks_detected(database_url) == 0


async def test_one_request_id_from_twenty_concurrent_calls_places_one_order(
    staff: InventoryClient, channels: list[grpc.aio.Channel], minter: TokenMinter, database_url: str
) -> None:
    product = await create_product(staff, stock=10)
    token = minter.mint("carol", CUSTOMER_SCOPES)
    carol = [client_for(channels[i % len(channels)], minter, "carol", CUSTOMER_SCOPES) for i in range(20)]
    for client in carol:
        client.token = token
    request_id = str(uuid.uuid4())

    results = await outcomes(
        [client.CreateOrder(order_request((product.id, 3), request_id=request_id)) for client in carol]
    )

    assert failures(results) == []
    assert len({order.id for order in results}) == 1
    assert all(order == results[0] for order in results)
    assert (await staff.GetProduct(pb.GetProductRequest(id=product.id))).stock_on_hand == 7
    state = await assert_ledger_consistent(database_url)
    assert state.orders == 1
    assert state.movements == 2  # the initial restock and the one order


async def test_one_request_id_racing_with_different_lines_serves_only_the_first_request(
    staff: InventoryClient, channels: list[grpc.aio.Channel], minter: TokenMinter, database_url: str
) -> None:
    product = await create_product(staff, stock=100)
    carol = [client_for(channels[i % len(channels)], minter, "carol", CUSTOMER_SCOPES) for i in range(20)]
    request_id = str(uuid.uuid4())
    quantities = [1 + i % 2 for i in range(20)]

    results = await outcomes(
        [
            client.CreateOrder(order_request((product.id, quantity), request_id=request_id))
            for client, quantity in zip(carol, quantities, strict=True)
        ]
    )

    placed = [r for r in results if isinstance(r, pb.Order)]
    assert len({order.id for order in placed}) == 1
    winner_quantity = placed[0].lines[0].quantity
    for quantity, result in zip(quantities, results, strict=True):
        if quantity == winner_quantity:
            assert isinstance(result, pb.Order), result
        else:
            assert isinstance(result, grpc.aio.AioRpcError)
            assert result.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert details_of(result).reason == "REQUEST_ID_REUSED"
    current = await staff.GetProduct(pb.GetProductRequest(id=product.id))
    assert current.stock_on_hand == 100 - winner_quantity
    assert (await assert_ledger_consistent(database_url)).orders == 1


async def test_racing_cancels_of_one_order_restock_it_once(
    staff: InventoryClient, channels: list[grpc.aio.Channel], minter: TokenMinter, database_url: str
) -> None:
    product = await create_product(staff, stock=10)
    dave = [client_for(channels[i % len(channels)], minter, "dave", CUSTOMER_SCOPES) for i in range(10)]
    order = await dave[0].CreateOrder(order_request((product.id, 4)))

    results = await outcomes([client.CancelOrder(pb.CancelOrderRequest(id=order.id)) for client in dave])

    cancelled = [r for r in results if isinstance(r, pb.Order)]
    assert len(cancelled) == 1
    for error in failures(results):
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert details_of(error).reason == "INVALID_ORDER_STATUS"
    assert (await staff.GetProduct(pb.GetProductRequest(id=product.id))).stock_on_hand == 10
    await assert_ledger_consistent(database_url)


async def test_mixed_orders_cancels_and_adjustments_keep_the_ledger_exact(
    staff: InventoryClient, channels: list[grpc.aio.Channel], minter: TokenMinter, database_url: str
) -> None:
    products = [await create_product(staff, stock=15) for _ in range(3)]
    clients = customers(channels, minter, 30)
    stock_keepers = [
        client_for(channels[i], minter, f"staff-{i}", STAFF_SCOPES) for i in range(len(channels))
    ]

    async def order_then_maybe_cancel(index: int, client: InventoryClient) -> Any:
        lines = [(products[(index + k) % 3].id, 1 + k) for k in range(2)]
        (placed,) = await outcomes([client.CreateOrder(order_request(*lines))])
        if isinstance(placed, pb.Order) and index % 2:
            return await client.CancelOrder(pb.CancelOrderRequest(id=placed.id))
        return placed

    def adjust(index: int) -> Awaitable[Any]:
        delta = 5 if index % 3 else -3
        return stock_keepers[index % len(stock_keepers)].AdjustStock(
            pb.AdjustStockRequest(
                product_id=products[index % 3].id,
                delta=delta,
                reason=pb.STOCK_MOVEMENT_REASON_RESTOCK if delta > 0 else pb.STOCK_MOVEMENT_REASON_DAMAGE,
            )
        )

    results = await outcomes(
        [*(order_then_maybe_cancel(i, c) for i, c in enumerate(clients)), *(adjust(i) for i in range(15))]
    )

    # Orders that find too little stock and removals of more than is there are refused; nothing else.
    for error in failures(results):
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
        assert details_of(error).reason in {"ORDER_NOT_SERVABLE", "INSUFFICIENT_STOCK"}
    assert any(isinstance(r, pb.Order) and r.status == pb.ORDER_STATUS_CANCELLED for r in results)

    await assert_ledger_consistent(database_url)


async def test_racing_duplicates_of_create_product_and_adjust_stock_take_effect_once(
    channels: list[grpc.aio.Channel], minter: TokenMinter, database_url: str
) -> None:
    keeper = [client_for(channels[i % len(channels)], minter, "keeper", STAFF_SCOPES) for i in range(10)]
    create = pb.CreateProductRequest(
        product=pb.Product(sku="RACE", name="Race", price=pb.Money(currency_code="EUR", minor_units=1)),
        initial_stock=3,
        request_id=str(uuid.uuid4()),
    )

    created = await outcomes([client.CreateProduct(create) for client in keeper])

    assert failures(created) == []
    assert len({product.id for product in created}) == 1
    adjust = pb.AdjustStockRequest(
        product_id=created[0].id,
        delta=4,
        reason=pb.STOCK_MOVEMENT_REASON_RESTOCK,
        request_id=str(uuid.uuid4()),
    )

    adjusted = await outcomes([client.AdjustStock(adjust) for client in keeper])

    assert failures(adjusted) == []
    assert len({result.movement.id for result in adjusted}) == 1
    assert (await keeper[0].GetProduct(pb.GetProductRequest(id=created[0].id))).stock_on_hand == 7
    assert (await assert_ledger_consistent(database_url)).movements == 2
