"""The inventory unit of work: one session, one transaction, the repositories over it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from data_service.repository.idempotency import SqlIdempotencyKeyRepository
from data_service.repository.orders import SqlOrderRepository
from data_service.repository.products import SqlProductRepository
from data_service.repository.stock import SqlStockMovementRepository
from shared.db import SqlAlchemyUnitOfWork


class InventoryUnitOfWork(SqlAlchemyUnitOfWork):
    """Rolls back unless the use case commits; repositories flush nothing and never commit."""

    products: SqlProductRepository
    movements: SqlStockMovementRepository
    orders: SqlOrderRepository
    idempotency_keys: SqlIdempotencyKeyRepository

    def _open_repositories(self, session: AsyncSession) -> None:
        self.products = SqlProductRepository(session)
        self.movements = SqlStockMovementRepository(session)
        self.orders = SqlOrderRepository(session)
        self.idempotency_keys = SqlIdempotencyKeyRepository(session)
