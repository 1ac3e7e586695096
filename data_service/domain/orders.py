"""Orders and their life cycle: PLACED, then FULFILLED or CANCELLED."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from data_service.domain.errors import (
    LINE_ARCHIVED,
    LINE_CURRENCY_MISMATCH,
    LINE_INSUFFICIENT_STOCK,
    LINE_NOT_FOUND,
    InvalidOrderStatus,
    OrderNotServable,
    product_subject,
)
from data_service.domain.products import Product
from data_service.domain.values import INT64_MAX, Caller, InvalidValue, Money, Sku, etag_of
from shared.errors import PreconditionViolation

MAX_LINES = 100
MAX_QUANTITY = 10_000


class OrderStatus(StrEnum):
    PLACED = "PLACED"
    FULFILLED = "FULFILLED"
    CANCELLED = "CANCELLED"


# The whole state machine: FULFILLED and CANCELLED are final.
_NEXT_STATUSES: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PLACED: frozenset({OrderStatus.FULFILLED, OrderStatus.CANCELLED}),
    OrderStatus.FULFILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


def order_quantity(quantity: int) -> int:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidValue(f"quantity must be between 1 and {MAX_QUANTITY}")
    return quantity


@dataclass(frozen=True, slots=True)
class LineRequest:
    """What a customer asks for: a product and a quantity."""

    product_id: UUID
    quantity: int


@dataclass(frozen=True, slots=True)
class OrderLine:
    """A placed line: SKU and unit price are captured when the order is placed."""

    product_id: UUID
    sku: Sku
    quantity: int
    unit_price: Money

    @property
    def total(self) -> Money:
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True, slots=True)
class Order:
    id: UUID
    owner: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    version: int
    create_time: datetime
    update_time: datetime

    @classmethod
    def place(cls, *, id: UUID, owner: str, lines: Sequence[OrderLine], now: datetime) -> Order:
        return cls(
            id=id,
            owner=owner,
            status=OrderStatus.PLACED,
            lines=tuple(lines),
            version=1,
            create_time=now,
            update_time=now,
        )

    @property
    def etag(self) -> str:
        return etag_of(self.version)

    @property
    def total(self) -> Money:
        """Sum of quantity times unit price; an order's lines share one currency."""
        total = Money(self.lines[0].unit_price.currency_code, 0)
        for line in self.lines:
            total = total.plus(line.total)
        return total

    def visible_to(self, caller: Caller) -> bool:
        """Without `orders.admin`, a caller sees only its own orders."""
        return caller.is_orders_admin or self.owner == caller.subject

    def moved_to(self, status: OrderStatus, now: datetime) -> Order:
        """The order after a status transition; a transition the state machine lacks is refused."""
        if status not in _NEXT_STATUSES[self.status]:
            raise InvalidOrderStatus(self.id, self.status.value, status.value)
        return replace(self, status=status, version=self.version + 1, update_time=now)


def plan_lines(requests: Sequence[LineRequest], products: Mapping[UUID, Product]) -> list[OrderLine]:
    """The lines of a new order, priced from `products` (current, locked rows).

    All or nothing: if any line cannot be served, `OrderNotServable` names every such line (missing,
    archived, not enough stock, priced in another currency than the first line) and nothing is planned.
    """
    violations: list[PreconditionViolation] = []
    lines: list[OrderLine] = []
    currency: str | None = None
    for request in requests:
        product = products.get(request.product_id)
        subject = product_subject(request.product_id)
        if product is None:
            violations.append(PreconditionViolation(LINE_NOT_FOUND, subject, "the product does not exist"))
            continue
        if product.archived:
            violations.append(PreconditionViolation(LINE_ARCHIVED, subject, "the product is archived"))
            continue
        if product.stock_on_hand < request.quantity:
            violations.append(
                PreconditionViolation(
                    LINE_INSUFFICIENT_STOCK,
                    subject,
                    f"{request.quantity} requested, {product.stock_on_hand} in stock",
                )
            )
        currency = currency or product.price.currency_code
        if product.price.currency_code != currency:
            violations.append(
                PreconditionViolation(
                    LINE_CURRENCY_MISMATCH,
                    subject,
                    f"priced in {product.price.currency_code}, other lines in {currency}; "
                    "an order has one currency",
                )
            )
        lines.append(OrderLine(product.id, product.sku, request.quantity, product.price))
    if violations:
        raise OrderNotServable(violations)
    if sum(line.unit_price.minor_units * line.quantity for line in lines) > INT64_MAX:
        raise OrderNotServable(
            [PreconditionViolation("TOTAL_TOO_LARGE", "orders", "the order total exceeds what Money holds")]
        )
    return lines
