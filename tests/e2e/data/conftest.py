"""A real data server per test (port 0, fresh migrated database) and clients with minted tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from tests.support.data_server import RunningDataServer, running_data_server
from tests.support.inventory import InventoryClient, client_for
from tests.support.tokens import CUSTOMER_SCOPES, STAFF_SCOPES, TokenMinter


@pytest.fixture
def minter() -> TokenMinter:
    return TokenMinter()


@pytest.fixture
async def data_server(database_url: str, minter: TokenMinter) -> AsyncIterator[RunningDataServer]:
    async with running_data_server(database_url, minter.key_set()) as server:
        yield server


@pytest.fixture
async def channel(data_server: RunningDataServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(data_server.target) as channel:
        yield channel


@pytest.fixture
def staff(channel: grpc.aio.Channel, minter: TokenMinter) -> InventoryClient:
    """Catalog, stock and orders.admin: what the auth service's `staff` role gets."""
    return client_for(channel, minter, "staff-1", STAFF_SCOPES)


@pytest.fixture
def alice(channel: grpc.aio.Channel, minter: TokenMinter) -> InventoryClient:
    return client_for(channel, minter, "alice", CUSTOMER_SCOPES)


@pytest.fixture
def bob(channel: grpc.aio.Channel, minter: TokenMinter) -> InventoryClient:
    return client_for(channel, minter, "bob", CUSTOMER_SCOPES)
