"""The inventory schema's migration: indexes, the append-only ledger, and a clean way down and up."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from data_service.migrations import SCRIPT_LOCATION
from shared.migrations import downgrade_to_base, upgrade_to_head

EXPECTED_INDEXES = {
    "products": {"ix_products_active_sku", "ix_products_in_stock_sku"},
    "orders": {
        "ix_orders_owner_create_time_id",
        "ix_orders_status_create_time_id",
        "ix_orders_create_time_id",
    },
    "order_lines": {"ix_order_lines_order_id_report"},
    "stock_movements": {"ix_stock_movements_product_id_create_time_id"},
}


async def _run(url: str, work: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def _indexes(connection: Any) -> dict[str, set[str]]:
    inspector = inspect(connection)
    return {table: {ix["name"] for ix in inspector.get_indexes(table)} for table in EXPECTED_INDEXES}


def _ledger_guards(connection: Any) -> set[str]:
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            text(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal UNION "
                "SELECT proname FROM pg_proc WHERE proname = 'stock_movements_append_only'"
            )
        )
    else:
        rows = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    return {row[0] for row in rows}


async def test_upgrade_creates_every_index_and_the_ledger_guard_and_downgrade_removes_them(
    database_url: str,
) -> None:
    await upgrade_to_head(SCRIPT_LOCATION, database_url)
    indexes = await _run(database_url, _indexes)
    for table, names in EXPECTED_INDEXES.items():
        assert names <= indexes[table], (table, names - indexes[table])
    assert await _run(database_url, _ledger_guards)

    await downgrade_to_base(SCRIPT_LOCATION, database_url)
    assert await _run(database_url, _ledger_guards) == set()

    await upgrade_to_head(SCRIPT_LOCATION, database_url)
    assert await _run(database_url, _ledger_guards)
