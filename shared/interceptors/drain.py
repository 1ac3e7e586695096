"""Draining on shutdown: refuse new calls with UNAVAILABLE while the calls already running finish.

grpcio's `server.stop(grace)` cancels every call that has reached the server but not yet been picked up
(the client sees CANCELLED, which it must not retry blindly) and refuses new connections. So the
server first drains: health says NOT_SERVING, this gate answers every new call of the application's
services with UNAVAILABLE + RetryInfo (retryable, on another instance), and only when the calls in
progress are done (or the grace period is over) is the gRPC server stopped.
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


class DrainGate(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Counts the calls of `services` in progress; once `close()` ran, refuses new ones."""

    def __init__(self, services: Collection[str]) -> None:
        self._services = frozenset(services)
        self._closed = False
        self._in_progress = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_progress(self) -> int:
        return self._in_progress

    def close(self) -> None:
        """From now on every new call is refused."""
        self._closed = True

    async def drained(self) -> None:
        """Returns once no call admitted before `close()` is still running."""
        await self._idle.wait()

    def _admit(self) -> None:
        if self._closed:
            raise Unavailable("the server is shutting down; retry", retry_after_seconds=RETRY_AFTER_SECONDS)
        self._in_progress += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._in_progress -= 1
        if self._in_progress == 0:
            self._idle.set()

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
            try:
                return await call()
            finally:
                self._leave()

        async def stream(
            call: Callable[[], AsyncIterator[Any]], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            self._admit()
            try:
                async for item in call():
                    yield item
            finally:
                self._leave()

        return wrap_handler(handler, unary, stream)
