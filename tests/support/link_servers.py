"""Both sides of the link as in-process servers: the real auth service and the real data service.

The auth service runs from a signing-key file the test writes from `SigningKeys`, so the test holds the
private keys too: it can restart the service with a rotated key set on the same port, and mint the
tokens the service would never issue (expired, for another audience, signed by a stranger).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from shared.server import GrpcServer
from tests.support.auth_server import RunningAuthServer, running_auth_server
from tests.support.minimal_auth import SigningKeys, StandInAuth, stand_in_auth_server
from tests.support.ops import free_port

ADMIN_EMAIL, CUSTOMER_EMAIL, PASSWORD = "ada@example.com", "carl@example.com", "correct horse battery staple"


@dataclass
class AuthServerHandle:
    """The real auth service on a fixed port, which the test may stop and start again (new keys)."""

    database_url: str
    directory: Path
    keys: SigningKeys = field(default_factory=SigningKeys)
    port: int = 0
    # AuthSettings fields for every start (e.g. TLS files).
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    running: RunningAuthServer | None = None
    _stack: AsyncExitStack | None = None
    _starts: int = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def server(self) -> RunningAuthServer:
        assert self.running is not None, "the auth service is not running"
        return self.running

    async def start(self) -> None:
        """Serve with the current `keys` (the first signs); the same port after a restart."""
        assert self.running is None, "already running"
        self._starts += 1
        key_file = self.keys.write_pem(self.directory / f"signing-keys-{self._starts}.pem")
        stack = AsyncExitStack()
        self.running = await stack.enter_async_context(
            running_auth_server(
                self.database_url,
                self.directory,
                listen=f"127.0.0.1:{self.port}",
                signing_key_file=key_file,
                **self.settings_overrides,
            )
        )
        self._stack, self.port = stack, self.running.port

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack, self.running = None, None

    async def token(self, email: str = CUSTOMER_EMAIL, scope: str = "") -> str:
        """An access token from a real password grant."""
        return (await self.server.login(email, PASSWORD, scope=scope)).access_token

    async def create_users(self) -> None:
        """An admin (every scope) and a customer, both with `PASSWORD`."""
        await self.server.create_user(ADMIN_EMAIL, PASSWORD, role="admin")
        await self.server.create_user(CUSTOMER_EMAIL, PASSWORD, role="customer")


@dataclass
class StandInHandle:
    """The stand-in auth server (tests/support/minimal_auth.py), for what the real one cannot do on cue."""

    state: StandInAuth
    port: int = 0
    server: GrpcServer | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = stand_in_auth_server(self.state)
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

__all__ = [
    "ADMIN_EMAIL",
    "CUSTOMER_EMAIL",
    "PASSWORD",
    "AuthServerHandle",
    "DataServerHandle",
    "StandInHandle",
    "StartData",
    "free_port",
]
