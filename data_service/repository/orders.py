"""Orders and their lines in the database, and the sales report's aggregate query."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Numeric,
    Row,
    cast,
    func,
    insert,
    literal,
    select,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from data_service.domain.errors import AmountOutOfRange
from data_service.domain.orders import Order, OrderLine, OrderStatus
from data_service.domain.queries import NewestFirstKey, OrderFilter
from data_service.domain.reports import SalesReportRow
from data_service.domain.values import INT64_MAX, Money, Sku
from data_service.repository.errors import database_errors
from data_service.repository.models import order_lines, orders

# Built once: see the note on hot statements in products.py.
_INSERT_ORDER = insert(orders)
_INSERT_LINES = insert(order_lines)

# What the sales report counts as sold.
_SOLD = (OrderStatus.PLACED.value, OrderStatus.FULFILLED.value)


def _line_from_row(row: Row[Any]) -> OrderLine:
    return OrderLine(
        product_id=row.product_id,
        sku=Sku(row.sku),
        quantity=row.quantity,
        unit_price=Money(row.unit_price_currency, row.unit_price_minor_units),
    )


def _order_from_row(row: Row[Any], lines: Sequence[OrderLine]) -> Order:
    return Order(
        id=row.id,
        owner=row.owner,
        status=OrderStatus(row.status),
        lines=tuple(lines),
        version=row.version,
        create_time=row.create_time,
        update_time=row.update_time,
    )


async def _lines_of(connection: AsyncConnection, order_ids: Sequence[UUID]) -> dict[UUID, list[OrderLine]]:
    """The lines of a bounded set of orders (one page at most), in request order."""
    result = await connection.execute(
        select(order_lines)
        .where(order_lines.c.order_id.in_(order_ids))
        .order_by(order_lines.c.order_id, order_lines.c.line_number)
    )
    lines: dict[UUID, list[OrderLine]] = defaultdict(list)
    for row in result:
        lines[row.order_id].append(_line_from_row(row))
    return lines


class SqlOrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, order: Order) -> None:
        """Insert an order and its lines (the lines in one multi-row insert)."""
        with database_errors():
            connection = await self._session.connection()
            await connection.execute(
                _INSERT_ORDER,
                {
                    "id": order.id,
                    "owner": order.owner,
                    "status": order.status.value,
                    "version": order.version,
                    "create_time": order.create_time,
                    "update_time": order.update_time,
                },
            )
            await connection.execute(
                _INSERT_LINES,
                [
                    {
                        "order_id": order.id,
                        "product_id": line.product_id,
                        "line_number": number,
                        "sku": line.sku.value,
                        "quantity": line.quantity,
                        "unit_price_currency": line.unit_price.currency_code,
                        "unit_price_minor_units": line.unit_price.minor_units,
                    }
                    for number, line in enumerate(order.lines)
                ],
            )

    async def get(self, order_id: UUID) -> Order | None:
        """One order with its lines, by primary key."""
        with database_errors():
            connection = await self._session.connection()
            row = (await connection.execute(select(orders).where(orders.c.id == order_id))).first()
            if row is None:
                return None
            lines = await _lines_of(connection, [order_id])
        return _order_from_row(row, lines[order_id])

    async def save_status(self, order: Order, *, expected_version: int) -> bool:
        """Compare-and-set of the status: writes only if the stored version is `expected_version`."""
        with database_errors():
            connection = await self._session.connection()
            result = await connection.execute(
                update(orders)
                .where(orders.c.id == order.id, orders.c.version == expected_version)
                .values(status=order.status.value, version=order.version, update_time=order.update_time)
            )
        return bool(result.rowcount == 1)

    async def list_page(self, query: OrderFilter, *, after: NewestFirstKey | None, limit: int) -> list[Order]:
        """Up to `limit` orders newest first after `after`, each with its lines (two queries)."""
        statement = select(orders)
        if query.owner is not None:
            statement = statement.where(orders.c.owner == query.owner)
        if query.status is not None:
            statement = statement.where(orders.c.status == query.status.value)
        if after is not None:
            statement = statement.where(
                tuple_(orders.c.create_time, orders.c.id)
                < tuple_(
                    literal(after.create_time, orders.c.create_time.type),
                    literal(after.id, orders.c.id.type),
                )
            )
        statement = statement.order_by(orders.c.create_time.desc(), orders.c.id.desc()).limit(limit)
        with database_errors():
            connection = await self._session.connection()
            rows = (await connection.execute(statement)).all()
            if not rows:
                return []
            lines = await _lines_of(connection, [row.id for row in rows])
        return [_order_from_row(row, lines[row.id]) for row in rows]

    async def sales_report(self, start: datetime, end: datetime, limit: int) -> list[SalesReportRow]:
        """Units and revenue per product (and currency) over sold orders created in `[start, end)`.

        One aggregate query: the orders' time range comes from `ix_orders_create_time_id`, their lines
        from the lines' primary key.
        """
        units_sold = func.sum(order_lines.c.quantity).label("units_sold")
        # Multiplied as NUMERIC: bigint x bigint would overflow on PostgreSQL before SUM (which sums
        # numeric anyway). SQLite has no wider integer; its SUM fails on overflow (AmountOutOfRange).
        # The result is read as it comes (Decimal, int or float): a Numeric result type would make
        # SQLAlchemy round SQLite's integers through float.
        revenue = type_coerce(
            func.sum(cast(order_lines.c.quantity, Numeric) * order_lines.c.unit_price_minor_units), BigInteger
        ).label("revenue")
        statement = (
            select(
                order_lines.c.product_id,
                order_lines.c.sku,
                order_lines.c.unit_price_currency,
                units_sold,
                revenue,
            )
            .select_from(orders.join(order_lines, order_lines.c.order_id == orders.c.id))
            .where(
                orders.c.create_time >= start,
                orders.c.create_time < end,
                orders.c.status.in_(_SOLD),
            )
            .group_by(order_lines.c.product_id, order_lines.c.sku, order_lines.c.unit_price_currency)
            .order_by(units_sold.desc(), order_lines.c.sku, order_lines.c.unit_price_currency)
            .limit(limit)
        )
        with database_errors():
            connection = await self._session.connection()
            result = await connection.execute(statement)
            return [
                SalesReportRow(
                    product_id=row.product_id,
                    sku=row.sku,
                    units_sold=int(row.units_sold),
                    revenue=Money(row.unit_price_currency, _whole_minor_units(row.revenue)),
                )
                for row in result
            ]


def _whole_minor_units(total: object) -> int:
    """A revenue sum as an int64 amount; `AmountOutOfRange` when it does not fit exactly."""
    # PostgreSQL returns NUMERIC (a Decimal); SQLite an int, or a float once a product overflowed.
    if isinstance(total, float) or not isinstance(total, (int, Decimal)):
        raise AmountOutOfRange()
    if not 0 <= total <= INT64_MAX:
        raise AmountOutOfRange()
    return int(total)
