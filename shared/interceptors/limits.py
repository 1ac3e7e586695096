"""Concurrency budgets: unary calls and long-lived streams each have their own.

grpc.aio's `maximum_concurrent_rpcs` counts every call alike. A stream (health `Watch`, reflection, any
streaming RPC) costs nothing to open and may stay open for hours, so a few dozen of them, even
unauthenticated and on one connection, would take the whole capacity and every login would answer
RESOURCE_EXHAUSTED. Here calls with a request or a response stream count against
`*_MAX_CONCURRENT_STREAMS`, the others against `*_MAX_CONCURRENT_RPCS`; over its budget a call is
refused with RESOURCE_EXHAUSTED and RetryInfo (this interceptor sits inside the error interceptor).

Health `Check` is exempt: it is cheap, and an orchestrator that cannot get an answer restarts the
instance exactly when it is busiest. Streams are also bounded per connection (HTTP/2
SETTINGS_MAX_CONCURRENT_STREAMS) and in time (maximum connection age): see `shared.server`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

import grpc

from shared.errors import ResourceExhausted
from shared.interceptors._handlers import wrap_handler

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
# A refused caller may try again soon: unary calls are short.
RETRY_AFTER_SECONDS = 0.2


class Budget:
    """At most `limit` calls at once; `take()` refuses the one beyond."""

    def __init__(self, limit: int, kind: str) -> None:
        self.limit = limit
        self.in_use = 0
        self._kind = kind

    def take(self) -> None:
        if self.in_use >= self.limit:
            raise ResourceExhausted(
                f"too many concurrent {self._kind} on this server; retry later",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        self.in_use += 1

    def give_back(self) -> None:
        self.in_use -= 1


class ConcurrencyLimits(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self, *, max_unary: int, max_streams: int, exempt: Collection[str] = (HEALTH_CHECK,)
    ) -> None:
        self.unary = Budget(max_unary, "calls")
        self.streams = Budget(max_streams, "streams")
        self._exempt = frozenset(exempt)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method in self._exempt:
            return handler
        budget = self.streams if handler.request_streaming or handler.response_streaming else self.unary

        def take() -> None:
            budget.take()
            # grpc.aio runs the handler inside the call's own task: its end gives the slot back however
            # the call ends, also a stream abandoned at a `yield` when its client went away.
            task = asyncio.current_task()
            if task is None:  # pragma: no cover - grpc.aio always runs handlers in a task
                budget.give_back()
                return
            task.add_done_callback(lambda _task: budget.give_back())

        async def unary(call: Callable[[], Awaitable[Any]], context: grpc.aio.ServicerContext) -> Any:
            take()
            return await call()

        async def stream(
            call: Callable[[], AsyncIterator[Any]], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            take()
            async for item in call():
                yield item

        return wrap_handler(handler, unary, stream)
