"""EXPLAIN of every list, filter and report query, with the SQL the repositories really send.

Nothing here re-types a query: each case calls a method of the data service's SQLAlchemy repositories
over the seeded database, a cursor listener records the statements and parameters it executes, and each
recorded SELECT is explained with exactly those parameters on the same connection. A query whose plan
reads any table with a sequential scan fails.

At full size the planner chooses freely over a million rows (`EXPLAIN ANALYZE`, so the README can quote
real times). The quick run has a few thousand rows, where a sequential scan is the right plan; there the
planner is told to avoid them (`enable_seqscan = off`), which still fails any query that no index can
serve.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from bench import seed
from bench.stack import sqlalchemy_url
from data_service.domain.orders import OrderStatus
from data_service.domain.queries import NewestFirstKey, OrderFilter, ProductFilter
from data_service.repository.unit_of_work import InventoryUnitOfWork
from shared.db import create_engine, session_factory

Case = Callable[[InventoryUnitOfWork], Awaitable[object]]
# A month of a million orders over a year is 7.5 % of all order lines: one sequential pass over them is
# a plan PostgreSQL may rightly choose, so that case is shown but not judged.
INFORMATIONAL = "(info) "


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: Any


def _cases(products: int) -> list[tuple[str, Case]]:
    """(name, repository call) for every list, filter and report query, at positions a client reaches."""
    middle = products // 2
    middle_sku = seed.product_sku(middle)
    # The seeded orders: order i was placed i * 31 s before SEED_TIME.
    middle_order_time = seed.SEED_TIME - timedelta(seconds=middle * seed.ORDER_SPACING_SECONDS)
    middle_key = NewestFirstKey(create_time=middle_order_time, id=seed.order_id(middle))
    product = seed.product_id(middle)
    owner = f"bench-owner-{middle % seed.OWNERS}"
    end = seed.SEED_TIME
    cases: list[tuple[str, Case]] = [
        ("ListProducts page 1", lambda u: u.products.list_page(ProductFilter(), after_sku=None, limit=51)),
        (
            "ListProducts deep page",
            lambda u: u.products.list_page(ProductFilter(), after_sku=middle_sku, limit=51),
        ),
        (
            "ListProducts in_stock_only",
            lambda u: u.products.list_page(ProductFilter(in_stock_only=True), after_sku=middle_sku, limit=51),
        ),
        (
            "ListProducts include_archived",
            lambda u: u.products.list_page(
                ProductFilter(include_archived=True), after_sku=middle_sku, limit=51
            ),
        ),
        (
            "ListProducts sku_prefix",
            lambda u: u.products.list_page(
                ProductFilter(sku_prefix=middle_sku[:-2]), after_sku=None, limit=51
            ),
        ),
        (
            "ListStockMovements of a product",
            lambda u: u.movements.list_page(product, after=None, limit=51),
        ),
        (
            "ListOrders (orders.admin, everybody's)",
            lambda u: u.orders.list_page(OrderFilter(), after=middle_key, limit=51),
        ),
        (
            "ListOrders owner",
            lambda u: u.orders.list_page(OrderFilter(owner=owner), after=middle_key, limit=51),
        ),
        (
            "ListOrders status",
            lambda u: u.orders.list_page(
                OrderFilter(status=OrderStatus.CANCELLED), after=middle_key, limit=51
            ),
        ),
        (
            "ListOrders owner + status",
            lambda u: u.orders.list_page(
                OrderFilter(owner=owner, status=OrderStatus.PLACED), after=None, limit=51
            ),
        ),
        ("GetSalesReport, one day", lambda u: u.orders.sales_report(end - timedelta(days=1), end, 10)),
        (
            INFORMATIONAL + "GetSalesReport, 30 days",
            lambda u: u.orders.sales_report(end - timedelta(days=30), end, 10),
        ),
    ]
    return cases


def _plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += _plan_nodes(child)
    return nodes


def _describe(node: dict[str, Any]) -> str:
    kind = str(node["Node Type"])
    if "Index Name" in node:
        return f"{kind} using {node['Index Name']}"
    if "Relation Name" in node:
        return f"{kind} on {node['Relation Name']}"
    return kind


async def _explain(connection: AsyncConnection, statement: Statement, analyze: bool) -> dict[str, Any]:
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    result = await connection.exec_driver_sql(f"EXPLAIN ({options}) {statement.sql}", statement.parameters)
    raw = result.scalar_one()
    document = json.loads(raw) if isinstance(raw, str) else raw
    return dict(document[0])


async def explain_all(data_dsn: str, *, products: int, quick: bool) -> list[dict[str, Any]]:
    """One entry per executed SELECT of each case: its plan summary and whether any table is seq-scanned."""
    engine = create_engine(sqlalchemy_url(data_dsn), pool_size=1, max_overflow=0)
    captured: list[Statement] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, _many: bool) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            captured.append(Statement(sql, parameters))

    entries: list[dict[str, Any]] = []
    sessions = session_factory(engine)
    try:
        for name, case in _cases(products):
            captured.clear()
            async with InventoryUnitOfWork(sessions) as uow:
                await case(uow)
            statements = list(captured)
            if not statements:
                raise RuntimeError(f"{name} executed no SELECT; the repository changed?")
            async with engine.connect() as connection:
                if quick:
                    await connection.exec_driver_sql("SET enable_seqscan = off")
                for number, statement in enumerate(statements, start=1):
                    plan = await _explain(connection, statement, analyze=not quick)
                    nodes = _plan_nodes(plan["Plan"])
                    seq_scans = [n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"]
                    label = name.removeprefix(INFORMATIONAL)
                    if len(statements) > 1:
                        label += f" ({number}/{len(statements)})"
                    entries.append(
                        {
                            "name": label,
                            "sql": " ".join(statement.sql.split()),
                            "summary": " → ".join(
                                _describe(n) for n in nodes if "Relation Name" in n or "Index Name" in n
                            )
                            or _describe(nodes[0]),
                            "seq_scans": seq_scans,
                            "index_only_access": not seq_scans,
                            "judged": not name.startswith(INFORMATIONAL),
                            "execution_ms": plan.get("Execution Time"),
                            "plan": plan,
                        }
                    )
    finally:
        await engine.dispose()
    return entries
