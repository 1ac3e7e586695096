"""Alembic glue: each service keeps its own `migrations/` folder and database; this runs them.

`env.py` of each service calls `run_env(context, metadata)`; the CLI and the embedded default call
`upgrade_to_head(...)`. Migrations run in a worker thread so they never block an event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import ensure_sqlite_directory, is_sqlite


def alembic_config(script_location: Path, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    # `%` is ConfigParser interpolation; URLs may contain it (encoded passwords).
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config


async def upgrade_to_head(script_location: Path, database_url: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(script_location, database_url), "head")


async def downgrade_to_base(script_location: Path, database_url: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(script_location, database_url), "base")


def run_env(context: Any, metadata: MetaData) -> None:
    """The body of a service's `env.py`: run migrations online over an async engine."""
    url = context.config.attributes.get("database_url") or context.config.get_main_option("sqlalchemy.url")

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
            render_as_batch=is_sqlite(url),
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        ensure_sqlite_directory(url)
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(do_run)
                await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(run_async())
