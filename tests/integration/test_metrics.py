"""Prometheus metrics as a scraper sees them on `*_METRICS_PORT`: Go's gRPC series, pool gauges."""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from shared.config import AuthSettings
from shared.db import create_engine
from shared.metrics import GO_DEFAULT_BUCKETS, AuthMetrics
from tests.support.ops import COLLECT, build_server, eventually, free_port, scrape
from tests.support.servers import running
from tests.support.tokens import TokenMinter

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
AUTH = "tessera.auth.v1.AuthService"
HEALTH = "grpc.health.v1.Health"


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def series(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def rpc(kind: str, service: str, method: str) -> dict[str, str]:
    return {"grpc_type": kind, "grpc_service": service, "grpc_method": method}


def settings(tmp_path: Path, **overrides: object) -> AuthSettings:
    values: dict[str, object] = {
        "listen": "127.0.0.1:0",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
        "metrics_port": free_port(),
    }
    values.update(overrides)
    return AuthSettings(**values)  # type: ignore[arg-type]


async def test_every_kind_of_rpc_is_counted_under_the_names_go_services_use(tmp_path: Path) -> None:
    minter = TokenMinter()
    server = build_server(settings(tmp_path), minter)
    async with running(server) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        for _ in range(2):
            await health.Check(health_pb2.HealthCheckRequest())
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await auth.GetCurrentUser(auth_pb2.GetCurrentUserRequest())
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        token = minter.mint("user-1", [])
        await auth.GetCurrentUser(
            auth_pb2.GetCurrentUserRequest(), metadata=(("authorization", f"Bearer {token}"),)
        )
        # client_stream: three messages in, one answer out.
        assert await channel.stream_unary(COLLECT)(iter([b"a", b"b", b"c"])) == b"3"
        # bidi_stream: reflection answers one request, then the client half-closes and the stream ends OK.
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = [
            answer
            async for answer in reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
        ]
        assert len(answers) == 1
        # server_stream: Watch never ends by itself; the client cancels it after the first answer.
        watch = health.Watch(health_pb2.HealthCheckRequest())
        await watch.read()
        watch.cancel()
        # An unknown method has no handler: it answers UNIMPLEMENTED and must not create a series.
        with pytest.raises(grpc.aio.AioRpcError):
            await channel.unary_unary("/no.such.Service/Nope")(b"")

        async def watch_counted() -> bool:
            samples = parse(await scrape(server.metrics_port))
            watch_series = series(
                "grpc_server_handled_total",
                **rpc("server_stream", HEALTH, "Watch"),
                grpc_code="CANCELLED",
            )
            return samples.get(watch_series) == 1

        await eventually(watch_counted)
        text = await scrape(server.metrics_port)

    samples = parse(text)
    check = rpc("unary", HEALTH, "Check")
    assert samples[series("grpc_server_started_total", **check)] == 2
    assert samples[series("grpc_server_handled_total", **check, grpc_code="OK")] == 2
    assert samples[series("grpc_server_handling_seconds_count", **check)] == 2
    current_user = rpc("unary", AUTH, "GetCurrentUser")
    assert samples[series("grpc_server_started_total", **current_user)] == 2
    assert samples[series("grpc_server_handled_total", **current_user, grpc_code="OK")] == 1
    assert samples[series("grpc_server_handled_total", **current_user, grpc_code="UNAUTHENTICATED")] == 1
    collect = rpc("client_stream", "tessera.test.v1.ProbeService", "Collect")
    assert samples[series("grpc_server_handled_total", **collect, grpc_code="OK")] == 1
    reflect = rpc("bidi_stream", "grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo")
    assert samples[series("grpc_server_handled_total", **reflect, grpc_code="OK")] == 1
    assert samples[series("grpc_server_started_total", **rpc("server_stream", HEALTH, "Watch"))] == 1
    # Methods of the served services exist from the start, at zero, so dashboards and rate() see them.
    assert samples[series("grpc_server_started_total", **rpc("unary", AUTH, "Register"))] == 0
    assert not any("no.such.Service" in str(labels) for _, labels in samples)
    # Go's DefBuckets, and no `_created` series, which Go's client does not emit either.
    buckets = {
        float(dict(labels)["le"])
        for name, labels in samples
        if name == "grpc_server_handling_seconds_bucket" and dict(labels)["grpc_method"] == "Check"
    }
    assert buckets == {*GO_DEFAULT_BUCKETS, float("inf")}
    assert "_created" not in text


async def test_two_servers_in_one_process_keep_separate_series(tmp_path: Path) -> None:
    minter = TokenMinter()
    busy, idle = build_server(settings(tmp_path), minter), build_server(settings(tmp_path), minter)
    async with running(busy) as port, running(idle):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        check = series("grpc_server_started_total", **rpc("unary", HEALTH, "Check"))
        assert parse(await scrape(busy.metrics_port))[check] == 1
        assert parse(await scrape(idle.metrics_port))[check] == 0


async def test_pool_gauges_follow_connections_lent_out(database_url: str, tmp_path: Path) -> None:
    engine = create_engine(database_url, pool_size=3, max_overflow=2)
    server = build_server(settings(tmp_path, database_url=database_url), TokenMinter(), engine=engine)
    try:
        async with running(server):
            async with engine.connect() as held:
                await held.exec_driver_sql("SELECT 1")
                samples = parse(await scrape(server.metrics_port))
                assert samples[series("tessera_db_pool_checked_out")] == 1
            samples = parse(await scrape(server.metrics_port))
            assert samples[series("tessera_db_pool_checked_out")] == 0
            assert samples[series("tessera_db_pool_checked_in")] == 1
            assert samples[series("tessera_db_pool_size")] == 3
            assert samples[series("tessera_db_pool_overflow")] == 0
            assert samples[series("tessera_dependency_up", dependency="database")] == 1
    finally:
        await engine.dispose()


async def test_metrics_port_zero_serves_no_metrics(tmp_path: Path) -> None:
    server = build_server(settings(tmp_path, metrics_port=0), TokenMinter())
    async with running(server):
        assert server.metrics_port == 0


async def test_a_taken_metrics_port_does_not_stop_the_server_from_serving(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        server = build_server(settings(tmp_path, metrics_port=taken), TokenMinter())
        async with running(server) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert response.status == health_pb2.HealthCheckResponse.SERVING
            assert server.metrics_port == 0


def test_auth_counters_export_grants_by_type_and_result_and_throttled_attempts() -> None:
    registry = CollectorRegistry()
    metrics = AuthMetrics(registry)
    metrics.grant("password", "success")
    metrics.grant("password", "invalid_grant")
    metrics.grant("password", "invalid_grant")
    metrics.throttled("account")
    samples = parse(generate_latest(registry).decode())
    assert samples[series("tessera_auth_grants_total", grant_type="password", result="invalid_grant")] == 2
    assert samples[series("tessera_auth_grants_total", grant_type="password", result="success")] == 1
    assert samples[series("tessera_auth_throttled_attempts_total", limit="account")] == 1
