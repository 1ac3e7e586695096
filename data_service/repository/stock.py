"""The stock ledger in the database: append-only (a trigger refuses UPDATE and DELETE)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Row, insert, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from data_service.domain.queries import NewestFirstKey
from data_service.domain.stock import MovementReason, StockMovement
from data_service.repository.errors import database_errors
from data_service.repository.models import stock_movements

# Built once: see the note on hot statements in products.py.
_INSERT_MOVEMENTS = insert(stock_movements)


def _movement_from_row(row: Row[Any]) -> StockMovement:
    return StockMovement(
        id=row.id,
        product_id=row.product_id,
        delta=row.delta,
        reason=MovementReason(row.reason),
        order_id=row.order_id,
        create_time=row.create_time,
    )


class SqlStockMovementRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, movements: Sequence[StockMovement]) -> None:
        """Append movements (one multi-row insert)."""
        if not movements:
            return
        with database_errors():
            connection = await self._session.connection()
            await connection.execute(
                _INSERT_MOVEMENTS,
                [
                    {
                        "id": movement.id,
                        "product_id": movement.product_id,
                        "delta": movement.delta,
                        "reason": movement.reason.value,
                        "order_id": movement.order_id,
                        "create_time": movement.create_time,
                    }
                    for movement in movements
                ],
            )

    async def get(self, movement_id: UUID) -> StockMovement | None:
        """One movement by primary key."""
        with database_errors():
            connection = await self._session.connection()
            result = await connection.execute(
                select(stock_movements).where(stock_movements.c.id == movement_id)
            )
            row = result.first()
        return None if row is None else _movement_from_row(row)

    async def list_page(
        self, product_id: UUID, *, after: NewestFirstKey | None, limit: int
    ) -> list[StockMovement]:
        """Up to `limit` movements of one product, newest first: a backward scan of
        `(product_id, create_time, id)` starting after `after`."""
        statement = select(stock_movements).where(stock_movements.c.product_id == product_id)
        if after is not None:
            statement = statement.where(
                tuple_(stock_movements.c.create_time, stock_movements.c.id)
                < tuple_(
                    literal(after.create_time, stock_movements.c.create_time.type),
                    literal(after.id, stock_movements.c.id.type),
                )
            )
        statement = statement.order_by(
            stock_movements.c.create_time.desc(), stock_movements.c.id.desc()
        ).limit(limit)
        with database_errors():
            connection = await self._session.connection()
            result = await connection.execute(statement)
            return [_movement_from_row(row) for row in result]
