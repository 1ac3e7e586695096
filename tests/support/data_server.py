"""The data server in this process, on port 0, over a freshly migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from data_service.app import create_server
from data_service.migrations import SCRIPT_LOCATION
from shared.config import DataSettings
from shared.migrations import upgrade_to_head
from shared.server import GrpcServer
from shared.tokens import KeySet


@dataclass
class RunningDataServer:
    server: GrpcServer
    port: int
    settings: DataSettings

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@asynccontextmanager
async def running_data_server(
    database_url: str, key_set: KeySet, **settings_overrides: Any
) -> AsyncIterator[RunningDataServer]:
    """Migrate `database_url`, start the data server trusting `key_set`, stop it afterwards."""
    await upgrade_to_head(SCRIPT_LOCATION, database_url)
    settings = DataSettings(
        **{
            "listen": "127.0.0.1:0",
            "metrics_port": 0,
            # Keys come from `key_set`; nothing is fetched from an auth service.
            "auth_target": "127.0.0.1:1",
            **settings_overrides,
            "database_url": database_url,
        }
    )
    server = await create_server(settings, key_set=key_set)
    port = await server.start()
    try:
        yield RunningDataServer(server=server, port=port, settings=settings)
    finally:
        await server.stop(1.0)
