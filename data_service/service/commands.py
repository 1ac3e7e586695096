"""Inputs and outputs of the use cases: plain values, already checked field by field by the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from data_service.domain.orders import LineRequest, OrderStatus
from data_service.domain.products import Product, ProductChanges
from data_service.domain.queries import ProductFilter
from data_service.domain.stock import MovementReason, StockMovement
from data_service.domain.values import Money, Sku
from data_service.service.pagination import PageToken


@dataclass(frozen=True, slots=True)
class CreateProduct:
    sku: Sku
    name: str
    description: str
    price: Money
    initial_stock: int
    request_id: UUID | None = None

    def fingerprint_fields(self) -> dict[str, object]:
        return {
            "sku": self.sku.value,
            "name": self.name,
            "description": self.description,
            "price": [self.price.currency_code, self.price.minor_units],
            "initial_stock": self.initial_stock,
        }


@dataclass(frozen=True, slots=True)
class UpdateProduct:
    product_id: UUID
    changes: ProductChanges
    # From the request's etag; None updates whatever the current version is.
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class ArchiveProduct:
    product_id: UUID
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class ListProducts:
    filter: ProductFilter
    page_size: int
    page_token: PageToken | None = None


@dataclass(frozen=True, slots=True)
class AdjustStock:
    product_id: UUID
    delta: int
    reason: MovementReason
    request_id: UUID | None = None

    def fingerprint_fields(self) -> dict[str, object]:
        return {"product_id": str(self.product_id), "delta": self.delta, "reason": self.reason.value}


@dataclass(frozen=True, slots=True)
class AdjustStockResult:
    product: Product
    movement: StockMovement


@dataclass(frozen=True, slots=True)
class ListStockMovements:
    product_id: UUID
    page_size: int
    page_token: PageToken | None = None


@dataclass(frozen=True, slots=True)
class CreateOrder:
    lines: tuple[LineRequest, ...]
    request_id: UUID | None = None

    def fingerprint_fields(self) -> dict[str, object]:
        return {"lines": [[str(line.product_id), line.quantity] for line in self.lines]}


@dataclass(frozen=True, slots=True)
class ListOrders:
    page_size: int
    status: OrderStatus | None = None
    # Needs orders.admin; None lists the caller's own orders (or everybody's for an admin).
    owner: str | None = None
    page_token: PageToken | None = None


@dataclass(frozen=True, slots=True)
class ChangeOrderStatus:
    """Cancel or fulfil an order; `expected_version` comes from the request's optional etag."""

    order_id: UUID
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class SalesReport:
    start_time: datetime
    end_time: datetime
    limit: int
