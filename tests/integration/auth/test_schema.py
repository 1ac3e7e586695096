"""The migration builds the schema the models describe, constraints included, and removes it again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth_service.migrations import SCRIPT_LOCATION
from auth_service.repository.models import Base
from shared.db import create_engine
from shared.migrations import downgrade_to_base, upgrade_to_head

TABLES = {
    "users",
    "user_roles",
    "service_clients",
    "refresh_tokens",
    "revoked_access_tokens",
    "login_attempts",
}


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(SCRIPT_LOCATION, database_url)
        assert await table_names(engine) >= TABLES
        await downgrade_to_base(SCRIPT_LOCATION, database_url)
        assert await table_names(engine) <= {"alembic_version"}
        await upgrade_to_head(SCRIPT_LOCATION, database_url)
        assert await table_names(engine) >= TABLES
    finally:
        await engine.dispose()


async def test_the_migration_matches_the_models(engine: AsyncEngine) -> None:
    def differences(sync_connection):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_every_lookup_has_an_index(engine: AsyncEngine) -> None:
    def indexed_columns(sync_connection):  # type: ignore[no-untyped-def]
        inspector = inspect(sync_connection)
        found: dict[str, set[tuple[str, ...]]] = {}
        for table in TABLES:
            columns = {tuple(i["column_names"]) for i in inspector.get_indexes(table)}
            columns |= {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
            columns.add(tuple(inspector.get_pk_constraint(table)["constrained_columns"]))
            found[table] = columns
        return found

    async with engine.connect() as connection:
        found = await connection.run_sync(indexed_columns)
    assert ("email",) in found["users"]
    assert ("token_hash",) in found["refresh_tokens"]
    for column in ("family_id", "user_id", "parent_id", "expires_at"):
        assert (column,) in found["refresh_tokens"]
    assert ("expires_at",) in found["revoked_access_tokens"]
    assert ("kind", "key") in found["login_attempts"]
    assert ("window_start",) in found["login_attempts"]


def _user_row(email: str) -> dict[str, object]:
    return {
        "id": uuid.uuid4().hex,
        "email": email,
        "name": "",
        "hash": "$argon2id$x",
        "at": datetime.now(UTC).replace(tzinfo=None),
    }


INSERT_USER = text(
    "INSERT INTO users (id, email, display_name, password_hash, created_at) "
    "VALUES (:id, :email, :name, :hash, :at)"
)


async def insert_user(engine: AsyncEngine, email: str, backend: str) -> str:
    row = _user_row(email)
    if backend == "postgres":
        row["id"] = str(uuid.UUID(str(row["id"])))
        row["at"] = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(INSERT_USER, row)
    return str(row["id"])


async def test_the_database_itself_refuses_a_duplicate_email(engine: AsyncEngine, backend: str) -> None:
    await insert_user(engine, "ann@example.com", backend)
    with pytest.raises(IntegrityError):
        await insert_user(engine, "ann@example.com", backend)


async def test_the_database_refuses_an_unnormalized_email(engine: AsyncEngine, backend: str) -> None:
    with pytest.raises(IntegrityError):
        await insert_user(engine, "Ann@Example.com", backend)


async def test_the_database_refuses_duplicate_refresh_token_hashes_and_unknown_roles(
    engine: AsyncEngine, backend: str
) -> None:
    user_id = await insert_user(engine, "ann@example.com", backend)
    now = datetime.now(UTC) if backend == "postgres" else datetime.now(UTC).replace(tzinfo=None)
    token = {
        "user": user_id,
        "hash": "a" * 64,
        "scope": "catalog.read",
        "issued": now,
        "expires": now + timedelta(days=1),
    }
    insert_token = text(
        "INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, scope, issued_at, expires_at) "
        "VALUES (:id, :hash, :id, :user, :scope, :issued, :expires)"
    )

    def new_id() -> str:
        return str(uuid.uuid4()) if backend == "postgres" else uuid.uuid4().hex

    async with engine.begin() as connection:
        await connection.execute(insert_token, {**token, "id": new_id()})
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(insert_token, {**token, "id": new_id()})
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(
                insert_token, {**token, "id": new_id(), "hash": "b" * 64, "expires": now - timedelta(days=1)}
            )
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO user_roles (user_id, role) VALUES (:user, 'root')"), {"user": user_id}
            )
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO user_roles (user_id, role) VALUES (:user, 'admin')"),
                {"user": new_id()},
            )
