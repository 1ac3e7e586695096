"""Both sides of the link as real in-process servers, each on its own fresh database of the backend.

The auth side is the real auth service (tests/support/auth_server.py) with an admin and a customer; a
few tests use the stand-in of tests/support/minimal_auth.py to make the auth side fail on cue. The data
side is the real `data_service.app.create_server` on a fresh, migrated database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from data_service.app import create_server as create_data_server
from data_service.migrations import SCRIPT_LOCATION as DATA_MIGRATIONS
from shared.config import DataSettings
from shared.migrations import upgrade_to_head
from tests.support.databases import fresh_database
from tests.support.link_servers import AuthServerHandle, DataServerHandle, StandInHandle, StartData
from tests.support.logs import captured_logs
from tests.support.minimal_auth import StandInAuth


@pytest.fixture
def logs() -> Any:
    with captured_logs() as events:
        yield events


@pytest.fixture
async def auth_database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(backend, tmp_path, label="auth") as url:
        yield url


@pytest.fixture
async def auth_server(auth_database_url: str, tmp_path: Path) -> AsyncIterator[AuthServerHandle]:
    """The real auth service, not started: tests that start it late or with TLS take this one."""
    handle = AuthServerHandle(auth_database_url, tmp_path / "auth")
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def auth(auth_server: AuthServerHandle) -> AuthServerHandle:
    """The real auth service, running, with `ADMIN_EMAIL` and `CUSTOMER_EMAIL` registered."""
    await auth_server.start()
    await auth_server.create_users()
    return auth_server


@pytest.fixture
async def stand_in() -> AsyncIterator[StandInHandle]:
    handle = StandInHandle(StandInAuth())
    await handle.start()
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def start_data_server(database_url: str) -> AsyncIterator[StartData]:
    """Start the data service's server against `auth_target`; every one started is stopped after."""
    await upgrade_to_head(DATA_MIGRATIONS, database_url)
    started: list[DataServerHandle] = []

    async def start(auth_target: str, **overrides: Any) -> DataServerHandle:
        values: dict[str, Any] = {
            "listen": "127.0.0.1:0",
            "database_url": database_url,
            "metrics_port": 0,
            "auth_target": auth_target,
            # Most tests rotate keys on purpose and want the very next request to see them; the rate
            # limit has its own test, which sets it.
            "jwks_min_refetch_seconds": 0,
            "jwks_startup_wait_seconds": 5,
            **overrides,
        }
        server = await create_data_server(DataSettings(**values))
        handle = DataServerHandle(server, await server.start())
        started.append(handle)
        return handle

    try:
        yield start
    finally:
        for handle in started:
            for channel in handle.channels:
                await channel.close()
            await handle.server.stop(grace=0)


@pytest.fixture
async def data_server(start_data_server: StartData, auth: AuthServerHandle) -> DataServerHandle:
    return await start_data_server(auth.target)
