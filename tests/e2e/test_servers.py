"""Both servers boot on port 0, in-process and as real processes, with health and reflection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from tessera.auth.v1 import auth_pb2
from tessera.inventory.v1 import inventory_pb2

from auth_service.app import create_server as create_auth_server
from data_service.app import create_server as create_data_server
from shared.config import AuthSettings, DataSettings
from shared.migrations import upgrade_to_head
from tests.support.databases import fresh_database
from tests.support.servers import running, start_process

AUTH = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
INVENTORY = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]


async def reflection_request(
    channel: grpc.aio.Channel, request: reflection_pb2.ServerReflectionRequest, version: str
) -> reflection_pb2.ServerReflectionResponse:
    """One request over the reflection stream of `version` (v1 and v1alpha share their messages)."""
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )()
    await call.write(request)
    response = await call.read()
    await call.done_writing()
    return response


@pytest.fixture
async def servers(backend: str, tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    """Both services in this process, each on its own fresh database."""
    async with (
        fresh_database(backend, tmp_path, "auth") as auth_url,
        fresh_database(backend, tmp_path, "data") as data_url,
    ):
        from auth_service.migrations import SCRIPT_LOCATION as AUTH_MIGRATIONS
        from data_service.migrations import SCRIPT_LOCATION as DATA_MIGRATIONS

        await upgrade_to_head(AUTH_MIGRATIONS, auth_url)
        await upgrade_to_head(DATA_MIGRATIONS, data_url)
        auth_settings = AuthSettings(
            database_url=auth_url, metrics_port=0, signing_key_file=None, listen="127.0.0.1:0"
        )
        auth = await create_auth_server(auth_settings)
        async with running(auth) as auth_port:
            data_settings = DataSettings(
                database_url=data_url, metrics_port=0, auth_target=f"127.0.0.1:{auth_port}"
            )
            data = await create_data_server(data_settings)
            async with running(data) as data_port:
                yield auth_port, data_port


async def test_both_servers_report_serving_for_every_service_name(servers: tuple[int, int]) -> None:
    for port, service in zip(servers, (AUTH, INVENTORY), strict=True):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in ("", service.full_name):
                response = await health.Check(health_pb2.HealthCheckRequest(service=name))
                assert response.status == health_pb2.HealthCheckResponse.SERVING, name


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_reflection_lists_the_services_and_describes_every_method(
    servers: tuple[int, int], version: str
) -> None:
    from google.protobuf import descriptor_pb2

    for port, service in zip(servers, (AUTH, INVENTORY), strict=True):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            listed = await reflection_request(
                channel, reflection_pb2.ServerReflectionRequest(list_services=""), version
            )
            names = {s.name for s in listed.list_services_response.service}
            assert {
                service.full_name,
                "grpc.health.v1.Health",
                f"grpc.reflection.{version}.ServerReflection",
            } <= names

            described = await reflection_request(
                channel,
                reflection_pb2.ServerReflectionRequest(file_containing_symbol=service.full_name),
                version,
            )
            files = [
                descriptor_pb2.FileDescriptorProto.FromString(raw)
                for raw in described.file_descriptor_response.file_descriptor_proto
            ]
            services = {f"{f.package}.{s.name}": s for f in files for s in f.service}
            methods = {m.name for m in services[service.full_name].method}
            assert methods == {m.name for m in service.methods}


async def test_sigterm_lets_an_in_flight_call_finish_and_exits_zero(backend: str, tmp_path: Path) -> None:
    """A real `tessera-data serve` process: SIGTERM → NOT_SERVING, the open call completes, exit 0."""
    async with fresh_database(backend, tmp_path, "data") as url:
        env = {
            "DATA_DATABASE_URL": url,
            "DATA_LISTEN": "127.0.0.1:0",
            "DATA_METRICS_PORT": "0",
            "DATA_LOG_FORMAT": "json",
            "DATA_AUTH_TARGET": "127.0.0.1:1",
            # No auth service here: start at once instead of waiting for its keys.
            "DATA_JWKS_STARTUP_WAIT_SECONDS": "0",
            "DATA_SHUTDOWN_GRACE_SECONDS": "10",
        }
        if backend == "postgres":
            from data_service.migrations import SCRIPT_LOCATION

            await upgrade_to_head(SCRIPT_LOCATION, url)
        server = await start_process("tessera-data", env, tmp_path / "data.log")
        try:
            async with grpc.aio.insecure_channel(server.target) as channel:
                # The reflection stream stays open until the client closes it: our in-flight call.
                call = channel.stream_stream(
                    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                    request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                    response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
                )()
                await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
                assert (await call.read()).list_services_response.service

                health = health_pb2_grpc.HealthStub(channel)
                server.process.terminate()  # SIGTERM
                await _wait_for_not_serving(health)

                # The call that was in flight before SIGTERM is still served...
                await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
                assert (await call.read()).list_services_response.service
                # ...and while it runs the server drains: health still answers, NOT_SERVING.
                response = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING
                await call.done_writing()
                assert await call.code() == grpc.StatusCode.OK
            exit_code = await asyncio.to_thread(server.process.wait, 15)
        finally:
            if server.process.poll() is None:
                server.process.kill()
        assert exit_code == 0, server.log_path.read_text()
        events = [line.get("event") for line in server.log_lines()]
        assert events.index("server_stopping") < events.index("server_stopped")


async def _wait_for_not_serving(health: health_pb2_grpc.HealthStub, timeout: float = 10.0) -> None:
    """Poll health until it says NOT_SERVING. A draining server keeps answering health (a load balancer
    must see NOT_SERVING), so an error here (UNAVAILABLE: the server already stopped) fails the test."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        response = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
        if response.status == health_pb2.HealthCheckResponse.NOT_SERVING:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("health never left SERVING after SIGTERM")


async def test_auth_process_starts_via_console_script_and_stops_cleanly(tmp_path: Path) -> None:
    env = {
        "AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}",
        "AUTH_LISTEN": "127.0.0.1:0",
        "AUTH_METRICS_PORT": "0",
        "AUTH_LOG_FORMAT": "json",
    }
    server = await start_process("tessera-auth", env, tmp_path / "auth.log")
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert response.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        exit_code = await asyncio.to_thread(server.terminate_and_wait)
    assert exit_code == 0
