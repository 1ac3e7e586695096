"""SQLite databases and the development signing key are owner-only (0600) in an owner-only directory
(0700), whatever the umask, also when ./var/ was left world-readable by an older run (< 1 s)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from auth_service.service.keys import write_new_key_file
from shared.db import create_engine


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual default: files 0644, directories 0755
    try:
        yield
    finally:
        os.umask(previous)


async def test_a_new_sqlite_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "state" / "auth.db"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE secrets (hash TEXT)"))
            await connection.execute(text("INSERT INTO secrets VALUES ('$argon2id$...')"))
        companions = [database.with_name(database.name + suffix) for suffix in ("-wal", "-shm")]
        assert all(path.exists() for path in companions)
        assert {path.name: mode(path) for path in [database, *companions]} == {
            "auth.db": 0o600,
            "auth.db-wal": 0o600,
            "auth.db-shm": 0o600,
        }
        assert mode(database.parent) == 0o700
    finally:
        await engine.dispose()


async def test_var_left_world_readable_by_an_older_run_is_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    (var / "data.db").touch(mode=0o644)
    engine = create_engine("sqlite+aiosqlite:///./var/data.db")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert (mode(var), mode(var / "data.db")) == (0o700, 0o600)


def test_the_development_signing_key_is_owner_only(tmp_path: Path) -> None:
    key = tmp_path / "var" / "auth-signing-key.pem"
    assert write_new_key_file(key)
    assert (mode(key.parent), mode(key)) == (0o700, 0o600)
    # One left world-readable by an older run keeps its content and loses the permissions.
    content = key.read_bytes()
    key.chmod(0o644)
    assert not write_new_key_file(key)
    assert (mode(key), key.read_bytes()) == (0o600, content)


def test_an_existing_shared_directory_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)  # noqa: S103 - the permissive directory is the point of the test
    assert write_new_key_file(shared / "key.pem")
    assert (mode(shared), mode(shared / "key.pem")) == (0o755, 0o600)
