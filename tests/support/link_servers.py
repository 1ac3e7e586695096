"""Handles on the in-process servers of the link tests (auth side and data side)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from shared.server import GrpcServer
from tests.support.minimal_auth import StandInAuth, stand_in_auth_server
from tests.support.ops import free_port


@dataclass
class AuthServerHandle:
    """The auth server on a fixed port, which the test may stop and start again."""

    state: StandInAuth
    port: int = 0
    server: GrpcServer | None = None
    # AuthSettings fields for every start (e.g. TLS files).
    settings_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        assert self.server is None, "already running"
        self.server = stand_in_auth_server(self.state, **self.settings_overrides)
        # Port 0 the first time; the same port after a restart, where the data service expects it.
        self.port = await self.server.start(f"127.0.0.1:{self.port}")

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=0)
            self.server = None


@dataclass
class DataServerHandle:
    server: GrpcServer
    port: int
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self) -> grpc.aio.Channel:
        """A plain channel (no client-library interceptors) that is closed after the test."""
        channel = grpc.aio.insecure_channel(self.target)
        self.channels.append(channel)
        return channel


# start_data_server(auth_target, **DataSettings overrides) -> DataServerHandle
StartData = Callable[..., Awaitable[DataServerHandle]]

__all__ = ["AuthServerHandle", "DataServerHandle", "StartData", "free_port"]
