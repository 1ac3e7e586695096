"""Long-lived streams (health Watch, reflection) cannot starve unary calls, and are bounded themselves.

A stream costs a client nothing to open and may stay open for hours, unauthenticated. So streams have
a concurrency budget of their own (`*_MAX_CONCURRENT_STREAMS`), separate from the unary calls'
(`*_MAX_CONCURRENT_RPCS`); one connection may hold at most `*_MAX_STREAMS_PER_CONNECTION` streams at
once (HTTP/2), and no connection, so no stream, outlives `*_MAX_CONNECTION_AGE_SECONDS` plus its grace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from tests.reliability.conftest import StartData
from tests.support.auth_server import running_auth_server
from tests.support.inventory import create_product, expect_error, pb
from tests.support.logs import wait_until

SERVING = health_pb2.HealthCheckResponse.SERVING
PASSWORD = "correct horse battery staple"


@asynccontextmanager
async def open_streams(channel: grpc.aio.Channel, watches: int, reflections: int) -> AsyncIterator[None]:
    """`watches` health Watch and `reflections` reflection streams on `channel` (one connection), each
    answered once by the server, so each is open there; cancelled afterwards."""
    calls: list[Any] = []
    try:
        for _ in range(watches):
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
            calls.append(watch)
            assert (await watch.read()).status == SERVING
        for _ in range(reflections):
            reflection = channel.stream_stream(
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )()
            calls.append(reflection)
            await reflection.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            assert (await reflection.read()).list_services_response.service
        yield
    finally:
        for call in calls:
            call.cancel()


async def health_of(target: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return int(response.status)


async def test_forty_open_streams_leave_unary_calls_of_both_services_their_capacity(
    auth_database_url: str, tmp_path: Path, start_data: StartData
) -> None:
    data = await start_data(max_concurrent_rpcs=30)
    product = await create_product(data.staff, stock=5)
    async with running_auth_server(auth_database_url, tmp_path, max_concurrent_rpcs=30) as auth:
        emails = [f"user-{i}@example.com" for i in range(10)]
        for email in emails:
            await auth.create_user(email, PASSWORD)
        async with AsyncExitStack() as streams:
            # More streams than the unary budget, on each service (unauthenticated: health, reflection).
            for target in (auth.target, data.target):
                channel = await streams.enter_async_context(grpc.aio.insecure_channel(target))
                await streams.enter_async_context(open_streams(channel, watches=40, reflections=10))

            # Unary calls still go through, up to their own budget, all at once.
            # (One login per account: concurrent guesses at one account are the login throttle's business.)
            logins = [auth.login(email, PASSWORD) for email in emails]
            reads = [data.customer().GetProduct(pb.GetProductRequest(id=product.id)) for _ in range(10)]
            checks = [health_of(target) for target in (auth.target, data.target) for _ in range(5)]
            answers = await asyncio.gather(*logins, *reads, *checks)
            assert all(login.access_token for login in answers[:10])
            assert all(read.stock_on_hand == 5 for read in answers[10:20])
            assert answers[20:] == [SERVING] * 10


async def test_streams_beyond_their_own_budget_are_refused_with_retry_info(start_data: StartData) -> None:
    data = await start_data(max_concurrent_streams=5)
    async with grpc.aio.insecure_channel(data.target) as channel:
        async with open_streams(channel, watches=3, reflections=2):
            extra = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
            details = await expect_error(
                extra.read(), grpc.StatusCode.RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"
            )
            assert details.retry_info is not None
            # Unary calls are not affected.
            assert await health_of(data.target) == SERVING
        # The slots come back when the streams end.
        await wait_until(lambda: _can_open(channel, 5))


async def _can_open(channel: grpc.aio.Channel, streams: int) -> bool:
    try:
        async with open_streams(channel, watches=streams, reflections=0):
            return True
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise
        return False


async def test_one_connection_cannot_open_more_streams_than_its_limit(start_data: StartData) -> None:
    data = await start_data(max_streams_per_connection=10)
    # Channels to one target share their connection unless told not to.
    own_connection = [("grpc.use_local_subchannel_pool", 1)]
    async with (
        grpc.aio.insecure_channel(data.target, options=own_connection) as channel,
        open_streams(channel, watches=10, reflections=0),
    ):
        # The eleventh stream on the same connection waits for a free slot (HTTP/2
        # MAX_CONCURRENT_STREAMS): it does not reach the server within its deadline...
        queued = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=1
        )
        with pytest.raises(grpc.aio.AioRpcError) as waited:
            await queued.read()
        assert waited.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # ...while a stream on another connection is served at once.
        async with grpc.aio.insecure_channel(data.target, options=own_connection) as other:
            watch = health_pb2_grpc.HealthStub(other).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
            assert (await watch.read()).status == SERVING
            watch.cancel()


async def test_no_stream_outlives_the_maximum_connection_age_and_its_grace(start_data: StartData) -> None:
    data = await start_data(max_connection_age_seconds=0.5, max_connection_age_grace_seconds=0.5)
    async with grpc.aio.insecure_channel(data.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == SERVING
        # Health does not change, so only the connection's end can end this stream: UNAVAILABLE, which a
        # watcher answers by watching again (on a new connection).
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await asyncio.wait_for(watch.read(), timeout=15)
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
        # The channel reconnects by itself: the next calls are served.
        assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == SERVING
