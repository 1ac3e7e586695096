"""Health tied to the database: NOT_SERVING while it is unreachable, SERVING again when it returns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import grpc
import pytest
from grpc_health.v1 import health_pb2
from sqlalchemy.engine import make_url

from shared.config import AuthSettings
from shared.db import create_engine
from tests.support.ops import AUTH_SERVICE, build_server, eventually, health_status
from tests.support.servers import running
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import TokenMinter

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Outage(Protocol):
    url: str

    async def cut(self) -> None: ...
    async def restore(self) -> None: ...


class NetworkOutage:
    """PostgreSQL stays up for everyone else; only this server's route to it is cut."""

    def __init__(self, proxy: TcpProxy, url: str) -> None:
        self._proxy = proxy
        self.url = url

    async def cut(self) -> None:
        await self._proxy.cut()

    async def restore(self) -> None:
        await self._proxy.restore()


class VolumeOutage:
    """The folder holding the SQLite file disappears, as an unmounted volume would: nothing can open it."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._aside = folder.with_name(folder.name + "-unmounted")
        self.url = f"sqlite+aiosqlite:///{folder / 'auth.db'}"

    async def cut(self) -> None:
        self._folder.rename(self._aside)

    async def restore(self) -> None:
        self._aside.rename(self._folder)


@pytest.fixture
async def outage(backend: str, database_url: str, tmp_path: Path) -> AsyncIterator[Outage]:
    if backend == "sqlite":
        folder = tmp_path / "volume"
        folder.mkdir()
        yield VolumeOutage(folder)
        return
    real = make_url(database_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.start()
    try:
        yield NetworkOutage(proxy, real.set(host="127.0.0.1", port=proxy.port).render_as_string(False))
    finally:
        await proxy.close()


async def test_health_follows_the_database_going_away_and_coming_back(outage: Outage) -> None:
    settings = AuthSettings(
        listen="127.0.0.1:0",
        database_url=outage.url,
        metrics_port=0,
        db_health_interval_seconds=0.1,
        db_health_timeout_seconds=2.0,
    )
    engine = create_engine(outage.url, pool_timeout=2.0)
    server = build_server(settings, TokenMinter(), engine=engine)
    names = ("", AUTH_SERVICE.full_name)
    # The database is gone before the server starts: it must not claim to be SERVING.
    await outage.cut()
    try:
        async with running(server) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:

            def health_is(expected: int):  # type: ignore[no-untyped-def]
                async def condition() -> bool:
                    return all([await health_status(channel, name) == expected for name in names])

                return condition

            assert await health_status(channel) == NOT_SERVING
            await outage.restore()
            await eventually(health_is(SERVING))
            await outage.cut()
            await eventually(health_is(NOT_SERVING))
            await outage.restore()
            await eventually(health_is(SERVING))
    finally:
        await engine.dispose()
