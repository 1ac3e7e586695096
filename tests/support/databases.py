"""Fresh, uniquely named databases per test, on SQLite and PostgreSQL; dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

POSTGRES_ADMIN_DSN = os.environ.get(
    "TESSERA_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def enabled_backends() -> list[str]:
    """`TESSERA_TEST_DATABASES=sqlite,postgres` (the default) — CI runs both."""
    raw = os.environ.get("TESSERA_TEST_DATABASES", "sqlite,postgres")
    backends = [b.strip() for b in raw.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgres"}
    if unknown:
        raise ValueError(f"unknown TESSERA_TEST_DATABASES entries: {sorted(unknown)}")
    return backends


def _sqlalchemy_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path, label: str = "db") -> AsyncIterator[str]:
    """Yield the SQLAlchemy URL of an empty database that exists only for the caller."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / f'{label}-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"tessera_test_{label}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _sqlalchemy_url(POSTGRES_ADMIN_DSN, name)
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
