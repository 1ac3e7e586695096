"""Idempotency keys in the database: the unique key on (caller, request_id) decides who was first."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from data_service.domain.idempotency import FirstUse, IdempotencyKey
from data_service.repository.errors import database_errors
from data_service.repository.models import idempotency_keys
from shared.errors import TransactionConflict


class SqlIdempotencyKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, key: IdempotencyKey, result_id: UUID, now: datetime) -> FirstUse | None:
        """Insert the key, or return its first use if it exists.

        `INSERT … ON CONFLICT DO NOTHING`: on PostgreSQL an insert that meets an uncommitted row with the
        same key waits for that transaction; if it commits, nothing is inserted and the following SELECT
        (a new snapshot under READ COMMITTED) sees the committed row. SQLite runs write transactions one
        at a time, so there is no race to begin with.
        """
        with database_errors():
            connection = await self._session.connection()
            insert: Any = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            claim = (
                insert(idempotency_keys)
                .values(
                    caller=key.caller,
                    request_id=key.request_id,
                    request_hash=key.request_hash,
                    result_id=result_id,
                    create_time=now,
                )
                .on_conflict_do_nothing(index_elements=["caller", "request_id"])
                .returning(idempotency_keys.c.request_id)
            )
            if (await connection.execute(claim)).first() is not None:
                return None
            row = (
                await connection.execute(
                    select(idempotency_keys.c.request_hash, idempotency_keys.c.result_id).where(
                        idempotency_keys.c.caller == key.caller,
                        idempotency_keys.c.request_id == key.request_id,
                    )
                )
            ).first()
        if row is None:
            # Cannot happen under READ COMMITTED; running the unit of work again is the safe answer.
            raise TransactionConflict("the idempotency key vanished while it was read")
        return FirstUse(request_hash=row.request_hash, result_id=row.result_id)
