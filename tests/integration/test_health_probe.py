"""Health tied to the database: NOT_SERVING while it is unreachable, SERVING again when it returns."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from sqlalchemy.engine import make_url

from shared.config import AuthSettings
from shared.db import create_engine
from tests.support.ops import AUTH_SERVICE, TokenMinter, build_server, eventually, health_status, running
from tests.support.tcp_proxy import TcpProxy

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_health_follows_the_database_going_away_and_coming_back(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    if backend == "sqlite":
        pytest.skip(
            "an embedded SQLite file cannot become unreachable while the server holds it open, and file "
            "permissions do not stop root: there is no honest outage to simulate"
        )
    real = make_url(database_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.start()
    # The database is down before the server starts: it must not claim to be SERVING.
    await proxy.cut()
    url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = AuthSettings(
        listen="127.0.0.1:0",
        database_url=url,
        metrics_port=0,
        db_health_interval_seconds=0.1,
        db_health_timeout_seconds=2.0,
    )
    engine = create_engine(url, pool_timeout=2.0)
    server = build_server(settings, TokenMinter(), engine=engine)
    names = ("", AUTH_SERVICE.full_name)
    try:
        async with running(server) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:

            def health_is(expected: int):  # type: ignore[no-untyped-def]
                async def condition() -> bool:
                    return all([await health_status(channel, name) == expected for name in names])

                return condition

            assert await health_status(channel) == NOT_SERVING
            await proxy.restore()
            await eventually(health_is(SERVING))
            await proxy.cut()
            await eventually(health_is(NOT_SERVING))
            await proxy.restore()
            await eventually(health_is(SERVING))
    finally:
        await proxy.close()
        await engine.dispose()
