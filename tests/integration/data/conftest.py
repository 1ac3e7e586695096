"""A freshly migrated inventory database per test, with the real SQLAlchemy unit of work over it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from data_service.migrations import SCRIPT_LOCATION
from data_service.repository.unit_of_work import InventoryUnitOfWork
from shared.db import create_engine, session_factory
from shared.migrations import upgrade_to_head


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_to_head(SCRIPT_LOCATION, database_url)
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def unit_of_work(engine: AsyncEngine) -> Callable[[], InventoryUnitOfWork]:
    sessions, readers = session_factory(engine), session_factory(engine, read_only=True)

    def open_unit_of_work(*, read_only: bool = False, stale_ok: bool = False) -> InventoryUnitOfWork:
        return InventoryUnitOfWork(readers if read_only else sessions)

    return open_unit_of_work
