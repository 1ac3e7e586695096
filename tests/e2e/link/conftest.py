"""Both sides of the link as real in-process servers: an auth server and the data service's server.

The auth side is the stand-in of tests/support/minimal_auth.py until the real auth service is on main.
The data side is the real `data_service.app.create_server` on a fresh, migrated database of each backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from data_service.app import create_server as create_data_server
from data_service.migrations import SCRIPT_LOCATION as DATA_MIGRATIONS
from shared.config import DataSettings
from shared.migrations import upgrade_to_head
from tests.support.link_servers import AuthServerHandle, DataServerHandle, StartData
from tests.support.logs import captured_logs
from tests.support.minimal_auth import StandInAuth


@pytest.fixture
def logs() -> Any:
    with captured_logs() as events:
        yield events


@pytest.fixture
async def stand_in() -> StandInAuth:
    return StandInAuth()


@pytest.fixture
async def auth_server(stand_in: StandInAuth) -> AsyncIterator[AuthServerHandle]:
    handle = AuthServerHandle(stand_in)
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
            # limit has its own tests, which set it.
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
async def data_server(start_data_server: StartData, auth_server: AuthServerHandle) -> DataServerHandle:
    return await start_data_server(auth_server.target)
