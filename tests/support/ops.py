"""A real GrpcServer with the production interceptor chain and a minimal servicer, for operability tests.

Operability (metrics, health, TLS, logs) belongs to `shared.server`, not to either service's use cases,
so these tests run the shared server with a servicer that only answers `GetCurrentUser` from the verified
token, plus one test-only client-streaming method (Tessera's own API has no streaming RPC).
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from shared.access import PUBLIC, access_rules
from shared.config import ServiceSettings
from shared.interceptors.auth import AuthInterceptor
from shared.principal import current_principal
from shared.server import GrpcServer
from shared.tokens import AccessTokenVerifier
from tests.support.tokens import AUDIENCE, ISSUER, TokenMinter

AUTH_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
GET_CURRENT_USER = f"/{AUTH_SERVICE.full_name}/GetCurrentUser"
# A test-only client-streaming method (raw bytes in, the number of messages out).
COLLECT = "/tessera.test.v1.ProbeService/Collect"


class CurrentUserServicer(auth_pb2_grpc.AuthServiceServicer):  # type: ignore[misc]
    """Answers GetCurrentUser with the token's subject: proof that a call got through the whole chain."""

    async def GetCurrentUser(self, request: Any, context: grpc.aio.ServicerContext) -> auth_pb2.User:
        principal = current_principal()
        assert principal is not None
        return auth_pb2.User(id=principal.subject)


async def _collect(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    count = 0
    async for _ in requests:
        count += 1
    return str(count).encode()


def _register(server: grpc.aio.Server) -> None:
    auth_pb2_grpc.add_AuthServiceServicer_to_server(CurrentUserServicer(), server)
    service, method = COLLECT[1:].split("/")
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                service, {method: grpc.stream_unary_rpc_method_handler(_collect)}
            ),
        )
    )


def build_server(
    settings: ServiceSettings, minter: TokenMinter, *, engine: AsyncEngine | None = None
) -> GrpcServer:
    """The shared server, production interceptor chain included, around the minimal servicer."""
    verifier = AccessTokenVerifier(minter.key_set(), issuer=ISSUER, audience=AUDIENCE)
    rules = {**access_rules(AUTH_SERVICE), COLLECT: PUBLIC}
    return GrpcServer(
        settings=settings,
        domain="auth.tessera",
        service_names=[AUTH_SERVICE.full_name],
        register=_register,
        inner_interceptors=[AuthInterceptor(rules, verifier)],
        engine=engine,
    )


def free_port() -> int:
    """A port nobody listens on right now (for settings that take a fixed port, like metrics)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def scrape(port: int) -> str:
    """The Prometheus text a scraper would get from `http://127.0.0.1:PORT/metrics`."""

    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert response.status == 200
            return str(response.read().decode())

    return await asyncio.to_thread(get)


async def health_status(channel: grpc.aio.Channel, service: str = "") -> int:
    response = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    return int(response.status)


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, within: float = 15.0, every: float = 0.05
) -> None:
    """Poll `condition` until true; fail the test after `within` seconds (a bound, not a sleep)."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(every)
