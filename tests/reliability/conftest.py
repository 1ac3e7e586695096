"""Real servers for the reliability cases, started per test with the settings each case needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from data_service.app import create_server as create_data_server
from data_service.migrations import SCRIPT_LOCATION as DATA_MIGRATIONS
from shared.config import DataSettings
from shared.migrations import upgrade_to_head
from shared.server import GrpcServer
from tests.support.data_server import RunningDataServer, running_data_server
from tests.support.databases import fresh_database
from tests.support.inventory import InventoryClient, client_for
from tests.support.link_servers import AuthServerHandle
from tests.support.servers import running
from tests.support.tokens import CUSTOMER_SCOPES, STAFF_SCOPES, TokenMinter


@dataclass
class DataRig:
    """A running data server, a channel to it, and clients with minted tokens the server trusts."""

    running: RunningDataServer
    channel: grpc.aio.Channel
    minter: TokenMinter

    @property
    def target(self) -> str:
        return self.running.target

    @property
    def engine(self) -> AsyncEngine:
        assert self.running.server.engine is not None
        return self.running.server.engine

    @property
    def staff(self) -> InventoryClient:
        """Catalog, stock and orders.admin: what the auth service's `staff` role gets."""
        return client_for(self.channel, self.minter, "staff-1", STAFF_SCOPES)

    def customer(self, name: str = "alice") -> InventoryClient:
        return client_for(self.channel, self.minter, name, CUSTOMER_SCOPES)


StartData = Callable[..., Awaitable[DataRig]]


@pytest.fixture
async def exit_stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


@pytest.fixture
def start_data(database_url: str, exit_stack: AsyncExitStack) -> StartData:
    """`await start_data(url=None, **DataSettings overrides)`: a data server (on the test's database
    unless `url` says otherwise) with a channel to it; both closed after the test."""

    async def start(url: str | None = None, **overrides: Any) -> DataRig:
        minter = TokenMinter()
        running = await exit_stack.enter_async_context(
            running_data_server(url or database_url, minter.key_set(), **overrides)
        )
        channel = await exit_stack.enter_async_context(grpc.aio.insecure_channel(running.target))
        return DataRig(running=running, channel=channel, minter=minter)

    return start


@pytest.fixture
async def auth_database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The auth service's own database (each service owns one; they never share tables)."""
    async with fresh_database(backend, tmp_path, "auth") as url:
        yield url


@dataclass
class LinkedServices:
    """The real auth service and a data service that verifies tokens with the keys it publishes."""

    auth: AuthServerHandle
    data_target: str
    data_server: GrpcServer


@pytest.fixture
async def linked(
    database_url: str, auth_database_url: str, tmp_path: Path, exit_stack: AsyncExitStack
) -> LinkedServices:
    auth = AuthServerHandle(auth_database_url, tmp_path / "auth")
    await auth.start()
    exit_stack.push_async_callback(auth.stop)
    await upgrade_to_head(DATA_MIGRATIONS, database_url)
    settings = DataSettings(
        listen="127.0.0.1:0", database_url=database_url, metrics_port=0, auth_target=auth.target
    )
    data = await create_data_server(settings)
    port = await exit_stack.enter_async_context(running(data))
    return LinkedServices(auth=auth, data_target=f"127.0.0.1:{port}", data_server=data)
