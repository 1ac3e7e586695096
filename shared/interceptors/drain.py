"""Draining on shutdown: refuse new calls with UNAVAILABLE while the calls already running finish.

grpcio's `server.stop(grace)` cancels every call that has reached the server but not yet been picked up
(the client sees CANCELLED, which it must not retry blindly) and refuses new connections. So the
server first drains: health says NOT_SERVING, this gate answers every new call of the application's
services with UNAVAILABLE + RetryInfo (retryable, on another instance), and only when the calls in
progress are done (or the grace period is over) is the gRPC server stopped.

What is "in progress" is counted where a call first reaches Python: `CallsInProgress` is the outermost
interceptor, and a call counts until its RPC task has ended (its status sent, or it was cancelled),
whatever the interceptors after it do. Counting at the gate itself would miss the calls that are still
in the interceptors before it when SIGTERM comes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

import grpc

from shared.errors import Unavailable
from shared.interceptors._handlers import wrap_handler

# How soon a refused client may try again (somewhere else: this instance is going away).
RETRY_AFTER_SECONDS = 0.5


class CallsInProgress(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Counts every call (of any service, streams too) from its arrival until its RPC task ends."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def idle(self) -> None:
        """Returns once no call is in progress (at once if none is)."""
        await self._idle.wait()

    def _ended(self, _task: object) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        # grpc.aio runs the interceptors inside the call's own task: its end is the call's end, however
        # the call ends (answered, refused, cancelled by the client), even if no handler ever runs.
        task = asyncio.current_task()
        if task is not None:
            self.count += 1
            self._idle.clear()
            task.add_done_callback(self._ended)
        return await continuation(handler_call_details)


class DrainGate(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Once `close()` ran, refuses every new call of `services`; `calls` counts what is in progress.

    `calls` must be installed as the server's outermost interceptor, the gate itself after the error
    interceptor (which turns its refusal into a status with RetryInfo).
    """

    def __init__(self, services: Collection[str]) -> None:
        self._services = frozenset(services)
        self._closed = False
        self.calls = CallsInProgress()

    @property
    def in_progress(self) -> int:
        """Calls that reached the server and have not ended yet."""
        return self.calls.count

    def close(self) -> None:
        """From now on every new call is refused."""
        self._closed = True

    async def drained(self) -> None:
        """Returns once no call is in progress: those admitted before `close()` have ended, and the
        ones refused since have been answered."""
        await self.calls.idle()

    def _admit(self) -> None:
        if self._closed:
            raise Unavailable("the server is shutting down; retry", retry_after_seconds=RETRY_AFTER_SECONDS)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method[1:].split("/", 1)[0] not in self._services:
            return handler

        async def unary(call: Callable[[], Awaitable[Any]], context: grpc.aio.ServicerContext) -> Any:
            self._admit()
            return await call()

        async def stream(
            call: Callable[[], AsyncIterator[Any]], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            self._admit()
            async for item in call():
                yield item

        return wrap_handler(handler, unary, stream)
