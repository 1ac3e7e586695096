"""Each service's migrations build exactly its models' schema, and downgrade back to nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from auth_service.migrations import SCRIPT_LOCATION as AUTH_MIGRATIONS
from auth_service.repository.models import Base as AuthBase
from data_service.migrations import SCRIPT_LOCATION as DATA_MIGRATIONS
from data_service.repository.models import Base as DataBase
from shared.migrations import downgrade_to_base, upgrade_to_head

SERVICES = {
    "auth": (AUTH_MIGRATIONS, AuthBase.metadata),
    "data": (DATA_MIGRATIONS, DataBase.metadata),
}


async def _inspect(url: str, check: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(check)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_upgrade_matches_the_models_and_downgrade_removes_everything(
    service: str, database_url: str, tmp_path: Path
) -> None:
    script_location, metadata = SERVICES[service]
    await upgrade_to_head(script_location, database_url)

    def differences(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    assert await _inspect(database_url, differences) == []
    tables = await _inspect(database_url, lambda c: set(inspect(c).get_table_names()))
    assert set(metadata.tables) <= tables

    await downgrade_to_base(script_location, database_url)
    remaining = await _inspect(database_url, lambda c: set(inspect(c).get_table_names()))
    assert remaining <= {"alembic_version"}

    # And up again: a downgrade must leave nothing behind that blocks a new upgrade.
    await upgrade_to_head(script_location, database_url)
    assert set(metadata.tables) <= await _inspect(database_url, lambda c: set(inspect(c).get_table_names()))


def test_each_service_owns_its_tables() -> None:
    """No table is shared: the two services' databases have disjoint schemas."""
    assert not set(AuthBase.metadata.tables) & set(DataBase.metadata.tables)
    assert isinstance(AuthBase.metadata, MetaData)
