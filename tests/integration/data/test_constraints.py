"""Integrity lives in the database: direct writes that break a rule fail there, not only in Python."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, insert, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from data_service.repository.models import (
    Base,
    idempotency_keys,
    order_lines,
    orders,
    products,
    stock_movements,
)
from tests.integration.data.builders import T0

PRODUCT_ID = uuid.uuid4()
ORDER_ID = uuid.uuid4()


def product_row(**overrides: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "sku": f"S-{uuid.uuid4().hex[:8].upper()}",
        "name": "n",
        "description": "",
        "price_currency": "EUR",
        "price_minor_units": 1,
        "stock_on_hand": 0,
        "archived": False,
        "version": 1,
        "create_time": T0,
        "update_time": T0,
        **overrides,
    }


def line_row(**overrides: Any) -> dict[str, Any]:
    return {
        "order_id": ORDER_ID,
        "product_id": PRODUCT_ID,
        "line_number": 0,
        "sku": "BASE",
        "quantity": 1,
        "unit_price_currency": "EUR",
        "unit_price_minor_units": 1,
        **overrides,
    }


def movement_row(**overrides: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "product_id": PRODUCT_ID,
        "delta": 1,
        "reason": "RESTOCK",
        "order_id": None,
        "create_time": T0,
        **overrides,
    }


@pytest.fixture
async def seeded(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as connection:
        await connection.execute(insert(products).values(product_row(id=PRODUCT_ID, sku="BASE")))
        await connection.execute(
            insert(orders).values(
                id=ORDER_ID, owner="alice", status="PLACED", version=1, create_time=T0, update_time=T0
            )
        )
        await connection.execute(insert(stock_movements).values(movement_row()))
        await connection.execute(
            insert(idempotency_keys).values(
                caller="alice", request_id=ORDER_ID, request_hash="h", result_id=ORDER_ID, create_time=T0
            )
        )
    return engine


VIOLATIONS: dict[str, Callable[[], Any]] = {
    "duplicate sku": lambda: insert(products).values(product_row(sku="BASE")),
    "negative price": lambda: insert(products).values(product_row(price_minor_units=-1)),
    "negative stock": lambda: insert(products).values(product_row(stock_on_hand=-1)),
    "stock update below zero": lambda: update(products).values(stock_on_hand=products.c.stock_on_hand - 1),
    "zero quantity": lambda: insert(order_lines).values(line_row(quantity=0)),
    "negative unit price": lambda: insert(order_lines).values(line_row(unit_price_minor_units=-5)),
    "line of a missing product": lambda: insert(order_lines).values(line_row(product_id=uuid.uuid4())),
    "line of a missing order": lambda: insert(order_lines).values(line_row(order_id=uuid.uuid4())),
    "unknown order status": lambda: update(orders).values(status="SHIPPED"),
    "zero movement": lambda: insert(stock_movements).values(movement_row(delta=0)),
    "movement of a missing product": lambda: insert(stock_movements).values(
        movement_row(product_id=uuid.uuid4())
    ),
    "order movement without order": lambda: insert(stock_movements).values(movement_row(reason="ORDER")),
    "manual movement naming an order": lambda: insert(stock_movements).values(
        movement_row(order_id=ORDER_ID)
    ),
    "reused idempotency key": lambda: insert(idempotency_keys).values(
        caller="alice", request_id=ORDER_ID, request_hash="other", result_id=uuid.uuid4(), create_time=T0
    ),
}


async def test_the_database_refuses_every_write_that_breaks_a_rule(
    seeded: AsyncEngine, subtests: pytest.Subtests
) -> None:
    for case, statement in VIOLATIONS.items():
        with subtests.test(case):
            # Each in its own transaction: a failed statement aborts a PostgreSQL transaction.
            async with seeded.connect() as connection:
                with pytest.raises(IntegrityError):
                    await connection.execute(statement())


async def test_a_second_line_for_the_same_product_in_one_order_is_refused(seeded: AsyncEngine) -> None:
    async with seeded.connect() as connection:
        await connection.execute(insert(order_lines).values(line_row()))
        with pytest.raises(IntegrityError):
            await connection.execute(insert(order_lines).values(line_row(line_number=1)))


async def test_the_ledger_is_append_only(seeded: AsyncEngine) -> None:
    for statement in (update(stock_movements).values(delta=5), delete(stock_movements)):
        async with seeded.connect() as connection:
            with pytest.raises(DBAPIError, match="append-only"):
                await connection.execute(statement)


async def test_constraint_names_in_the_database_are_the_models_names(
    engine: AsyncEngine, backend: str
) -> None:
    """Repositories recognise violations by name, so the migration must create exactly these names."""
    expected = {
        constraint.name
        for table in Base.metadata.tables.values()
        for constraint in table.constraints
        if constraint.name and not str(constraint.name).startswith("fk_")
    }
    async with engine.connect() as connection:
        if backend == "postgres":
            rows = await connection.execute(
                text("SELECT conname FROM pg_constraint WHERE contype IN ('c','u','p')")
            )
            actual = {row.conname for row in rows}
        else:
            rows = await connection.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table'"))
            ddl = "\n".join(row.sql for row in rows)
            actual = {name for name in expected if f"CONSTRAINT {name} " in ddl}
    assert expected <= actual, expected - actual
