"""Talking to the inventory service in tests: stubs with a caller's token, and database invariants."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tessera.inventory.v1 import inventory_pb2, inventory_pb2_grpc

from tests.support.status import StatusDetails, details_of
from tests.support.tokens import TokenMinter, bearer

pb = inventory_pb2


@dataclass
class InventoryClient:
    """An InventoryService stub that sends one caller's token on every call.

    `client.CreateProduct(request)` works like the stub's method; the token is added to the metadata.
    """

    stub: inventory_pb2_grpc.InventoryServiceStub
    token: str
    subject: str

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.stub, name)

        def call(request: Any, **kwargs: Any) -> Awaitable[Any]:
            return method(request, metadata=bearer(self.token), timeout=kwargs.pop("timeout", 30), **kwargs)

        return call


def client_for(
    channel: grpc.aio.Channel, minter: TokenMinter, subject: str, scopes: tuple[str, ...]
) -> InventoryClient:
    return InventoryClient(
        inventory_pb2_grpc.InventoryServiceStub(channel), minter.mint(subject, scopes), subject
    )


def money(minor_units: int, currency: str = "EUR") -> inventory_pb2.Money:
    return inventory_pb2.Money(currency_code=currency, minor_units=minor_units)


def new_product(
    sku: str | None = None, *, price: int = 1000, currency: str = "EUR", name: str = "Widget"
) -> inventory_pb2.Product:
    return inventory_pb2.Product(
        sku=sku or f"SKU-{uuid.uuid4().hex[:12].upper()}",
        name=name,
        description="A thing",
        price=money(price, currency),
    )


async def create_product(
    client: InventoryClient, stock: int = 0, **product_fields: Any
) -> inventory_pb2.Product:
    return await client.CreateProduct(  # type: ignore[no-any-return]
        inventory_pb2.CreateProductRequest(product=new_product(**product_fields), initial_stock=stock)
    )


def order_request(*lines: tuple[str, int], request_id: str = "") -> inventory_pb2.CreateOrderRequest:
    return inventory_pb2.CreateOrderRequest(
        lines=[inventory_pb2.CreateOrderRequest.Line(product_id=p, quantity=q) for p, q in lines],
        request_id=request_id,
    )


@dataclass(frozen=True)
class LedgerState:
    stock: dict[str, int]
    ledger_sum: dict[str, int]
    movements: int
    orders: int


async def ledger_state(database_url: str) -> LedgerState:
    """Stock on hand and Σ movements.delta of every product, read straight from the database."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            stock = {
                str(row.id): row.stock_on_hand
                for row in await connection.execute(text("SELECT id, stock_on_hand FROM products"))
            }
            sums = {
                str(row.product_id): int(row.total)
                for row in await connection.execute(
                    text("SELECT product_id, SUM(delta) AS total FROM stock_movements GROUP BY product_id")
                )
            }
            movements = (await connection.execute(text("SELECT COUNT(*) FROM stock_movements"))).scalar_one()
            orders = (await connection.execute(text("SELECT COUNT(*) FROM orders"))).scalar_one()
    finally:
        await engine.dispose()
    # SQLite returns ids as 32 hex digits, PostgreSQL as UUIDs: one spelling for both.
    return LedgerState(
        stock={str(uuid.UUID(k)): v for k, v in stock.items()},
        ledger_sum={str(uuid.UUID(k)): v for k, v in sums.items()},
        movements=movements,
        orders=orders,
    )


async def assert_ledger_consistent(database_url: str) -> LedgerState:
    """For every product: stock_on_hand = Σ movements.delta and stock_on_hand ≥ 0."""
    state = await ledger_state(database_url)
    for product_id, on_hand in state.stock.items():
        assert on_hand >= 0, f"{product_id} has negative stock {on_hand}"
        assert on_hand == state.ledger_sum.get(product_id, 0), (
            f"{product_id}: stock_on_hand {on_hand} != Σ movements {state.ledger_sum.get(product_id, 0)}"
        )
    return state


async def database_snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every inventory table (test databases are small), to prove a call changed nothing."""
    engine = create_async_engine(database_url)
    tables = ("products", "stock_movements", "orders", "order_lines", "idempotency_keys")
    try:
        async with engine.connect() as connection:
            return {
                table: sorted(
                    tuple(str(value) for value in row)
                    for row in await connection.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 - fixed names
                )
                for table in tables
            }
    finally:
        await engine.dispose()


async def expect_error(
    call: Awaitable[Any], code: grpc.StatusCode, reason: str | None = None
) -> StatusDetails:
    """Await `call`, which must fail with `code` (and `reason`); returns the decoded status details."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() == code, raised.value
    details = details_of(raised.value)
    if reason is not None:
        assert details.reason == reason, details
    return details
