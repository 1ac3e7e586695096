"""Domain objects for repository tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from data_service.domain.orders import Order, OrderLine, OrderStatus
from data_service.domain.products import Product
from data_service.domain.stock import MovementReason, StockMovement
from data_service.domain.values import Money, Sku, new_id

T0 = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)


def product(sku: str | None = None, *, stock: int = 10, price: int = 500, currency: str = "EUR") -> Product:
    return Product.new(
        id=new_id(),
        sku=Sku(sku or f"P-{uuid.uuid4().hex[:10].upper()}"),
        name="Widget",
        description="",
        price=Money(currency, price),
        initial_stock=stock,
        now=T0,
    )


def restock(item: Product, delta: int, at: datetime = T0) -> StockMovement:
    return StockMovement(new_id(), item.id, delta, MovementReason.RESTOCK, None, at)


def order(
    owner: str, *items: tuple[Product, int], at: datetime = T0, status: OrderStatus = OrderStatus.PLACED
) -> Order:
    lines = [OrderLine(p.id, p.sku, q, p.price) for p, q in items]
    placed = Order.place(id=new_id(), owner=owner, lines=lines, now=at)
    return placed if status is OrderStatus.PLACED else placed.moved_to(status, at)


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)
