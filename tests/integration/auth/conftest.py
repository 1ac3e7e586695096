from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.migrations import SCRIPT_LOCATION
from auth_service.repository.unit_of_work import AuthSqlUnitOfWork
from shared.db import create_engine, session_factory
from shared.migrations import upgrade_to_head


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a freshly migrated auth database."""
    await upgrade_to_head(SCRIPT_LOCATION, database_url)
    engine = create_engine(database_url, pool_size=12, max_overflow=4)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def uow(engine: AsyncEngine) -> Callable[[], AuthSqlUnitOfWork]:
    sessions = session_factory(engine)
    return lambda: AuthSqlUnitOfWork(sessions)
