"""A real auth server in the test's event loop: fresh migrated database, generated key, port 0.

    async with running_auth_server(database_url, tmp_path) as auth:
        stub = auth.stub            # AuthServiceStub on auth.channel
        await auth.create_user("ann@example.com", "a long passphrase", role="admin")

Other helpers (the data service's e2e tests, the client library's tests) reuse it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_service.app import build_core, create_server
from auth_service.domain.scopes import Role
from auth_service.migrations import SCRIPT_LOCATION
from auth_service.service.keys import write_new_key_file
from shared.config import AuthSettings
from shared.migrations import upgrade_to_head
from shared.server import GrpcServer

# argon2id at ~1 MiB and 1 pass: the same code path at a fraction of the cost. Tests that are about the
# production parameters pass their own.
CHEAP_ARGON2: dict[str, Any] = {"argon2_memory_kib": 1024, "argon2_time_cost": 1}


@dataclass
class RunningAuthServer:
    port: int
    target: str
    settings: AuthSettings
    key_file: Path
    server: GrpcServer
    channel: grpc.aio.Channel
    stub: auth_pb2_grpc.AuthServiceStub

    async def create_user(
        self, email: str, password: str, *, role: str = "customer", display_name: str = ""
    ) -> str:
        """A user with any role (Register only makes customers); returns the user id."""
        core = build_core(self.settings)
        try:
            user = await core.registration.register(
                email=email, password=password, display_name=display_name, roles=[Role(role)]
            )
        finally:
            await core.close()
        return str(user.id)

    async def create_client(self, name: str, scopes: str) -> tuple[str, str]:
        """A service account, as `tessera-auth create-client` makes it: (client_id, client_secret)."""
        core = build_core(self.settings)
        try:
            created = await core.service_clients.create(name=name, scopes=scopes)
        finally:
            await core.close()
        return str(created.client.id), created.secret

    async def login(self, email: str, password: str, scope: str = "") -> auth_pb2.TokenResponse:
        """The password grant over gRPC."""
        response: auth_pb2.TokenResponse = await self.stub.Token(
            auth_pb2.TokenRequest(
                password=auth_pb2.PasswordGrant(username=email, password=password), scope=scope
            )
        )
        return response


@asynccontextmanager
async def running_auth_server(
    database_url: str, tmp_path: Path, **settings_overrides: Any
) -> AsyncIterator[RunningAuthServer]:
    """Migrate `database_url`, generate a signing key in `tmp_path`, serve on 127.0.0.1:0 until exit."""
    await upgrade_to_head(SCRIPT_LOCATION, database_url)
    key_file = tmp_path / "auth-signing-key.pem"
    write_new_key_file(key_file)
    values: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "database_url": database_url,
        "signing_key_file": key_file,
        "metrics_port": 0,
        **CHEAP_ARGON2,
        **settings_overrides,
    }
    settings = AuthSettings(**values)
    server = await create_server(settings)
    port = await server.start()
    target = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(target)
    try:
        yield RunningAuthServer(
            port=port,
            target=target,
            settings=settings,
            key_file=key_file,
            server=server,
            channel=channel,
            stub=auth_pb2_grpc.AuthServiceStub(channel),
        )
    finally:
        await channel.close()
        await server.stop(grace=1.0)
