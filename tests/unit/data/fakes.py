"""In-memory repositories and a unit of work with real transaction semantics, for service unit tests.

Each unit of work works on a copy of the shared `FakeDatabase` and publishes it only on `commit()`, so
a use case that fails half-way leaves the database exactly as it was, like a rollback would.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self
from uuid import UUID

from data_service.domain.errors import SkuTaken
from data_service.domain.idempotency import FirstUse, IdempotencyKey
from data_service.domain.orders import Order, OrderStatus
from data_service.domain.products import Product
from data_service.domain.queries import NewestFirstKey, OrderFilter, ProductFilter
from data_service.domain.reports import SalesReportRow
from data_service.domain.stock import StockMovement
from data_service.domain.values import Money
from shared.errors import FailedPrecondition, TransactionConflict


@dataclass
class FakeDatabase:
    products: dict[UUID, Product] = field(default_factory=dict)
    movements: dict[UUID, StockMovement] = field(default_factory=dict)
    orders: dict[UUID, Order] = field(default_factory=dict)
    idempotency: dict[tuple[str, UUID], FirstUse] = field(default_factory=dict)

    def ledger_sum(self, product_id: UUID) -> int:
        return sum(m.delta for m in self.movements.values() if m.product_id == product_id)


class FakeProducts:
    def __init__(self, data: FakeDatabase, uow: FakeUnitOfWork) -> None:
        self._data = data
        self._uow = uow

    async def add(self, product: Product) -> None:
        if any(p.sku == product.sku for p in self._data.products.values()):
            raise SkuTaken(product.sku.value)
        self._data.products[product.id] = product

    async def get(self, product_id: UUID) -> Product | None:
        return self._data.products.get(product_id)

    async def lock_for_stock_change(self, product_ids: Collection[UUID]) -> dict[UUID, Product]:
        self._uow.lock_orders.append(sorted(set(product_ids)))
        return {
            pid: self._data.products[pid] for pid in sorted(set(product_ids)) if pid in self._data.products
        }

    async def change_stock(self, deltas: Mapping[UUID, int], now: datetime) -> None:
        for product_id, delta in sorted(deltas.items()):
            product = self._data.products[product_id]
            if product.stock_on_hand + delta < 0:
                # What the database's CHECK constraint does.
                raise FailedPrecondition("stock never goes below zero", reason="INSUFFICIENT_STOCK")
            self._data.products[product_id] = replace(
                product, stock_on_hand=product.stock_on_hand + delta, update_time=now
            )

    async def save_details(self, product: Product, *, expected_version: int) -> bool:
        if self._uow.lose_next_compare_and_set:
            self._uow.lose_next_compare_and_set -= 1
            return False
        stored = self._data.products[product.id]
        if stored.version != expected_version:
            return False
        self._data.products[product.id] = replace(
            stored,
            **{
                "name": product.name,
                "description": product.description,
                "price": product.price,
                "archived": product.archived,
                "version": product.version,
                "update_time": product.update_time,
            },
        )
        return True

    async def list_page(self, query: ProductFilter, *, after_sku: str | None, limit: int) -> list[Product]:
        rows = sorted(self._data.products.values(), key=lambda p: p.sku.value)
        return [
            p
            for p in rows
            if (query.include_archived or not p.archived)
            and (not query.in_stock_only or p.stock_on_hand > 0)
            and p.sku.value.startswith(query.sku_prefix)
            and (after_sku is None or p.sku.value > after_sku)
        ][:limit]


class FakeMovements:
    def __init__(self, data: FakeDatabase) -> None:
        self._data = data

    async def add(self, movements: Sequence[StockMovement]) -> None:
        for movement in movements:
            self._data.movements[movement.id] = movement

    async def get(self, movement_id: UUID) -> StockMovement | None:
        return self._data.movements.get(movement_id)

    async def list_page(
        self, product_id: UUID, *, after: NewestFirstKey | None, limit: int
    ) -> list[StockMovement]:
        rows = sorted(
            (m for m in self._data.movements.values() if m.product_id == product_id),
            key=lambda m: (m.create_time, m.id),
            reverse=True,
        )
        if after is not None:
            rows = [m for m in rows if (m.create_time, m.id) < (after.create_time, after.id)]
        return rows[:limit]


class FakeOrders:
    def __init__(self, data: FakeDatabase, uow: FakeUnitOfWork) -> None:
        self._data = data
        self._uow = uow

    async def add(self, order: Order) -> None:
        self._data.orders[order.id] = order

    async def get(self, order_id: UUID) -> Order | None:
        return self._data.orders.get(order_id)

    async def save_status(self, order: Order, *, expected_version: int) -> bool:
        if self._uow.lose_next_compare_and_set:
            self._uow.lose_next_compare_and_set -= 1
            return False
        if self._data.orders[order.id].version != expected_version:
            return False
        self._data.orders[order.id] = order
        return True

    async def list_page(self, query: OrderFilter, *, after: NewestFirstKey | None, limit: int) -> list[Order]:
        rows = sorted(self._data.orders.values(), key=lambda o: (o.create_time, o.id), reverse=True)
        return [
            o
            for o in rows
            if (query.owner is None or o.owner == query.owner)
            and (query.status is None or o.status == query.status)
            and (after is None or (o.create_time, o.id) < (after.create_time, after.id))
        ][:limit]

    async def sales_report(self, start: datetime, end: datetime, limit: int) -> list[SalesReportRow]:
        units: dict[tuple[UUID, str, str], list[int]] = defaultdict(lambda: [0, 0])
        for order in self._data.orders.values():
            if order.status is OrderStatus.CANCELLED or not start <= order.create_time < end:
                continue
            for line in order.lines:
                key = (line.product_id, line.sku.value, line.unit_price.currency_code)
                units[key][0] += line.quantity
                units[key][1] += line.quantity * line.unit_price.minor_units
        rows = [
            SalesReportRow(pid, sku, sold, Money(currency, revenue))
            for (pid, sku, currency), (sold, revenue) in units.items()
        ]
        return sorted(rows, key=lambda r: (-r.units_sold, r.sku))[:limit]


class FakeIdempotencyKeys:
    def __init__(self, data: FakeDatabase) -> None:
        self._data = data

    async def claim(self, key: IdempotencyKey, result_id: UUID, now: datetime) -> FirstUse | None:
        stored = self._data.idempotency.get((key.caller, key.request_id))
        if stored is not None:
            return stored
        self._data.idempotency[(key.caller, key.request_id)] = FirstUse(key.request_hash, result_id)
        return None


class FakeUnitOfWork:
    """A transaction over a copy of `database`; `commit()` publishes the copy, leaving without it drops it."""

    def __init__(self, database: FakeDatabase, events: list[str], *, read_only: bool = False) -> None:
        self.database = database
        self.events = events
        # A read-only unit of work runs without a transaction on PostgreSQL: it must never write.
        self.read_only = read_only
        self.committed = False
        self.lock_orders: list[list[UUID]] = []
        # Test knobs: how many compare-and-set writes lose to a "concurrent" writer, and how many
        # commits fail as a serialization conflict.
        self.lose_next_compare_and_set = 0
        self.conflicts_on_commit = 0

    async def __aenter__(self) -> Self:
        self._working = copy.deepcopy(self.database)
        self.products = FakeProducts(self._working, self)
        self.movements = FakeMovements(self._working)
        self.orders = FakeOrders(self._working, self)
        self.idempotency_keys = FakeIdempotencyKeys(self._working)
        self.committed = False
        self.events.append("begin")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.committed:
            self.events.append("rollback")

    async def commit(self) -> None:
        assert not self.read_only, "a use case committed a read-only unit of work"
        if self.conflicts_on_commit:
            self.conflicts_on_commit -= 1
            raise TransactionConflict("fake serialization failure")
        for name in ("products", "movements", "orders", "idempotency"):
            setattr(self.database, name, getattr(self._working, name))
        self.committed = True
        self.events.append("commit")


class FakeClock:
    """Time that moves forward one millisecond per reading, so every row has its own time."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@dataclass
class FakeStore:
    """One fake database and the units of work opened over it (shared knobs and event log)."""

    database: FakeDatabase = field(default_factory=FakeDatabase)
    events: list[str] = field(default_factory=list)
    opened: list[FakeUnitOfWork] = field(default_factory=list)
    lose_compare_and_set: int = 0
    conflicts_on_commit: int = 0

    def unit_of_work(self, *, read_only: bool = False, stale_ok: bool = False) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(self.database, self.events, read_only=read_only)
        # Knobs are consumed across attempts, as a retry would see them.
        uow.lose_next_compare_and_set, self.lose_compare_and_set = self.lose_compare_and_set, 0
        uow.conflicts_on_commit, self.conflicts_on_commit = (
            min(self.conflicts_on_commit, 1),
            max(self.conflicts_on_commit - 1, 0),
        )
        self.opened.append(uow)
        return uow
