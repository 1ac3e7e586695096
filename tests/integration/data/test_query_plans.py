"""Every query the repositories send is served by the index meant for it (PostgreSQL).

A table of a few rows would be read whole by any planner, so sequential scans, bitmap scans and sorts
are priced out: the plan then shows whether the intended index can serve the query in its order, as it
must at millions of rows. Each plan must name its index and scan no table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from data_service.domain.idempotency import IdempotencyKey
from data_service.domain.orders import OrderStatus
from data_service.domain.queries import NewestFirstKey, OrderFilter, ProductFilter
from data_service.domain.values import new_id
from data_service.repository.unit_of_work import InventoryUnitOfWork
from tests.integration.data.builders import T0, minutes, order, product, restock

Call = Callable[[InventoryUnitOfWork], Awaitable[Any]]
KEY = NewestFirstKey(T0 + minutes(1), new_id())
PRODUCT = product("P-1")
ORDER = order("alice", (PRODUCT, 1))
REPLAYED_KEY = IdempotencyKey("alice", new_id(), "h")

# (what, the call, indexes of which one must appear in the plan of each SELECT it sends)
QUERIES: list[tuple[str, Call, set[str]]] = [
    ("GetProduct", lambda uow: uow.products.get(PRODUCT.id), {"pk_products"}),
    (
        "lock for order",
        lambda uow: uow.products.lock_for_stock_change([PRODUCT.id, new_id()]),
        {"pk_products"},
    ),
    (
        "ListProducts",
        lambda uow: uow.products.list_page(ProductFilter(), after_sku="A", limit=51),
        {"ix_products_active_sku"},
    ),
    (
        "ListProducts prefix",
        lambda uow: uow.products.list_page(ProductFilter(sku_prefix="P-"), after_sku="P-0", limit=51),
        {"ix_products_active_sku"},
    ),
    (
        "ListProducts in stock",
        lambda uow: uow.products.list_page(ProductFilter(in_stock_only=True), after_sku="A", limit=51),
        {"ix_products_in_stock_sku"},
    ),
    (
        "ListProducts archived too",
        lambda uow: uow.products.list_page(ProductFilter(include_archived=True), after_sku="A", limit=51),
        {"uq_products_sku"},
    ),
    (
        "ListStockMovements",
        lambda uow: uow.movements.list_page(PRODUCT.id, after=KEY, limit=51),
        {"ix_stock_movements_product_id_create_time_id"},
    ),
    ("replayed movement", lambda uow: uow.movements.get(new_id()), {"pk_stock_movements"}),
    (
        "GetOrder",
        lambda uow: uow.orders.get(ORDER.id),
        {"pk_orders", "pk_order_lines", "ix_order_lines_order_id_report"},
    ),
    (
        "ListOrders (admin)",
        lambda uow: uow.orders.list_page(OrderFilter(), after=KEY, limit=51),
        {"ix_orders_create_time_id", "pk_order_lines", "ix_order_lines_order_id_report"},
    ),
    (
        "ListOrders (customer)",
        lambda uow: uow.orders.list_page(OrderFilter(owner="alice"), after=KEY, limit=51),
        {"ix_orders_owner_create_time_id", "pk_order_lines", "ix_order_lines_order_id_report"},
    ),
    (
        "ListOrders by status",
        lambda uow: uow.orders.list_page(OrderFilter(status=OrderStatus.PLACED), after=KEY, limit=51),
        {"ix_orders_status_create_time_id", "pk_order_lines", "ix_order_lines_order_id_report"},
    ),
    (
        "GetSalesReport",
        lambda uow: uow.orders.sales_report(T0 - minutes(60), T0 + minutes(60), 10),
        {"ix_orders_create_time_id", "ix_orders_status_create_time_id"},
    ),
    (
        "idempotent replay",
        lambda uow: uow.idempotency_keys.claim(REPLAYED_KEY, new_id(), T0),
        {"pk_idempotency_keys"},
    ),
]


async def test_every_query_uses_its_index(
    backend: str,
    engine: AsyncEngine,
    unit_of_work: Callable[[], InventoryUnitOfWork],
    subtests: pytest.Subtests,
) -> None:
    if backend != "postgres":
        pytest.skip("query plans are a PostgreSQL matter")
    async with unit_of_work() as uow:
        await uow.products.add(PRODUCT)
        await uow.movements.add([restock(PRODUCT, 4)])
        await uow.orders.add(ORDER)
        await uow.idempotency_keys.claim(REPLAYED_KEY, ORDER.id, T0)
        await uow.commit()
    for what, call, indexes in QUERIES:
        with subtests.test(what):
            await _assert_index_scans(engine, unit_of_work, what, call, indexes)


async def _assert_index_scans(
    engine: AsyncEngine,
    unit_of_work: Callable[[], InventoryUnitOfWork],
    what: str,
    call: Call,
    indexes: set[str],
) -> None:
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with unit_of_work() as uow:
            await call(uow)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert captured, what

    async with engine.connect() as connection:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            await connection.exec_driver_sql(f"SET {setting} = off")
        for statement, parameters in captured:
            result = await connection.exec_driver_sql("EXPLAIN " + statement, parameters)
            plan = "\n".join(row[0] for row in result)
            assert "Seq Scan" not in plan, f"{statement}\n{plan}"
            assert any(index in plan for index in indexes), f"{statement}\n{plan}"
