"""Readiness that tells the truth: the data service says SERVING only once it can verify tokens.

A data service started before the auth service is up serves health and reflection at once, but reports
NOT_SERVING (and logs what it waits for) until the auth service's keys arrive; then SERVING, and a health
Watch sees the change. ~3 s per database.
"""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tessera.inventory.v1 import inventory_pb2

from tests.support.calls import bearer, outcome
from tests.support.link_servers import AuthServerHandle, StartData, free_port
from tests.support.logs import CapturedLogs

SERVICE = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
INVENTORY = SERVICE.full_name
LIST_PRODUCTS = SERVICE.methods_by_name["ListProducts"]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _status(health: health_pb2_grpc.HealthStub, service: str) -> int:
    response = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(response.status)


async def test_not_serving_until_the_auth_services_keys_arrive_then_serving(
    auth_server: AuthServerHandle, start_data_server: StartData, logs: CapturedLogs
) -> None:
    auth_server.port = free_port()  # nothing listens there yet
    data = await start_data_server(auth_server.target, jwks_startup_wait_seconds=0)
    channel = data.channel()
    health = health_pb2_grpc.HealthStub(channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=INVENTORY))
    try:
        for service in ("", INVENTORY):
            assert await _status(health, service) == NOT_SERVING
        assert (await asyncio.wait_for(watch.read(), 10)).status == NOT_SERVING
        waiting = await logs.wait_for("not_ready", waiting_for="auth_service_keys")
        assert auth_server.target in waiting["detail"]
        token = bearer(auth_server.keys.mint(scope=["catalog.read"]))
        assert (await outcome(channel, LIST_PRODUCTS, token))[0] == grpc.StatusCode.UNAVAILABLE

        await auth_server.start()

        assert (await asyncio.wait_for(watch.read(), 15)).status == SERVING
        for service in ("", INVENTORY):
            assert await _status(health, service) == SERVING
        await logs.wait_for("ready", met=["auth_service_keys"])
        assert (await outcome(channel, LIST_PRODUCTS, token))[0] == grpc.StatusCode.OK

        # The server ends the watch itself when it stops (a stream left hanging into the test's
        # teardown would be finalized after its call is gone).
        await data.server.stop(grace=5)
        assert (await asyncio.wait_for(watch.read(), 10)).status == NOT_SERVING
        assert await asyncio.wait_for(watch.read(), 10) is grpc.aio.EOF
    finally:
        if not watch.done():
            watch.cancel()


async def test_serving_from_the_start_when_the_keys_load_during_start_up(
    auth: AuthServerHandle, start_data_server: StartData, logs: CapturedLogs
) -> None:
    data = await start_data_server(auth.target)
    health = health_pb2_grpc.HealthStub(data.channel())
    assert await _status(health, "") == SERVING
    assert not logs.named("not_ready")
