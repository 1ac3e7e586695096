"""What the use cases need from storage, as Protocols; `data_service.repository` implements them.

Repositories only talk to the database: they never commit (the use case does, through the unit of
work) and they raise domain errors, never driver exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from data_service.domain.idempotency import FirstUse, IdempotencyKey
from data_service.domain.orders import Order
from data_service.domain.products import Product
from data_service.domain.queries import NewestFirstKey, OrderFilter, ProductFilter
from data_service.domain.reports import SalesReportRow
from data_service.domain.stock import StockMovement


class ProductRepository(Protocol):
    async def add(self, product: Product) -> None:
        """Insert a new product; `SkuTaken` when its SKU exists."""

    async def get(self, product_id: UUID) -> Product | None:
        """One product by id, archived or not."""

    async def lock_for_stock_change(self, product_ids: Collection[UUID]) -> dict[UUID, Product]:
        """The existing products among `product_ids`, locked until the transaction ends.

        Rows are locked in ascending id order, the one order every stock-changing transaction uses, so
        that two orders over the same products wait for each other instead of deadlocking.
        """

    async def change_stock(self, deltas: Mapping[UUID, int], now: datetime) -> None:
        """Add each delta to its product's `stock_on_hand` (in ascending id order)."""

    async def save_details(self, product: Product, *, expected_version: int) -> bool:
        """Write name, description, price, archived and version if the stored version is still
        `expected_version` (compare-and-set); False when it is not."""

    async def list_page(self, query: ProductFilter, *, after_sku: str | None, limit: int) -> list[Product]:
        """Up to `limit` products matching `query`, by SKU, after `after_sku`."""

    async def find_by_skus(self, skus: Collection[str]) -> dict[str, Product]:
        """The products (archived too) among `skus`, keyed by SKU."""

    async def add_new(self, new_products: Sequence[Product]) -> set[UUID]:
        """Insert, in one statement, the products whose SKU is not taken; returns the ids inserted."""


class StockMovementRepository(Protocol):
    async def add(self, movements: Sequence[StockMovement]) -> None:
        """Append movements to the ledger."""

    async def get(self, movement_id: UUID) -> StockMovement | None:
        """One movement by id."""

    async def list_page(
        self, product_id: UUID, *, after: NewestFirstKey | None, limit: int
    ) -> list[StockMovement]:
        """Up to `limit` movements of a product, newest first, after `after`."""


class OrderRepository(Protocol):
    async def add(self, order: Order) -> None:
        """Insert a new order with its lines."""

    async def get(self, order_id: UUID) -> Order | None:
        """One order with its lines, whoever owns it."""

    async def save_status(self, order: Order, *, expected_version: int) -> bool:
        """Write status, version and update time if the stored version is still `expected_version`
        (compare-and-set); False when it is not."""

    async def list_page(self, query: OrderFilter, *, after: NewestFirstKey | None, limit: int) -> list[Order]:
        """Up to `limit` orders matching `query` with their lines, newest first, after `after`."""

    async def sales_report(self, start: datetime, end: datetime, limit: int) -> list[SalesReportRow]:
        """Best sellers over placed and fulfilled orders created in `[start, end)`, one aggregate query."""


class IdempotencyKeyRepository(Protocol):
    async def claim(self, key: IdempotencyKey, result_id: UUID, now: datetime) -> FirstUse | None:
        """Record that `key` produces `result_id`, or return its first use when it was claimed before.

        Enforced by the table's unique key: a concurrent claim of the same key waits until the first
        transaction ends, then sees its committed use (or claims the key if the first rolled back).
        """


class UnitOfWork(Protocol):
    """One transaction: rolls back on leaving the `async with` block unless `commit()` was called."""

    @property
    def products(self) -> ProductRepository: ...

    @property
    def movements(self) -> StockMovementRepository: ...

    @property
    def orders(self) -> OrderRepository: ...

    @property
    def idempotency_keys(self) -> IdempotencyKeyRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Opens a new unit of work per call, so one use case can run again after a conflict."""

    def __call__(self, *, read_only: bool = False, stale_ok: bool = False) -> UnitOfWork:
        """`read_only`: the use case only reads, and its reads need not see one snapshot (each may run
        on its own, without a transaction); it never commits. `stale_ok` (with `read_only`): the reads
        may come from a read replica a few seconds behind, except for a caller's own recent writes."""
        ...


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
