"""Health tied to reality: a background probe that asks the database `SELECT 1` every few seconds.

The server reports NOT_SERVING while the probe fails and SERVING again once it succeeds, so a load
balancer or orchestrator stops sending traffic to an instance whose every RPC would fail anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.db import connect_args_for

log = structlog.get_logger("tessera.health")

OnChange = Callable[[bool], Awaitable[None]]


class DatabaseProbe:
    """Runs `SELECT 1` with a timeout every `interval` seconds; calls `on_change` when the answer flips.

    The probe opens its own connection each time instead of borrowing one from the service's pool: under
    load the pool may have nothing to lend for a while, and a busy server is not an unhealthy one (going
    NOT_SERVING then would drain it exactly when it is needed).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        on_change: OnChange,
        *,
        interval: float = 5.0,
        timeout: float = 2.0,
        application_name: str | None = None,
    ) -> None:
        self._engine = create_async_engine(
            engine.url,
            poolclass=pool.NullPool,
            connect_args=connect_args_for(engine.url, application_name),
        )
        self._on_change = on_change
        self._interval = interval
        self._timeout = timeout
        self._task: asyncio.Task[None] | None = None
        self.reachable: bool | None = None

    async def check(self) -> bool:
        """Whether the database answers now. Never raises: any failure means unreachable."""
        try:
            async with asyncio.timeout(self._timeout):
                async with self._engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except Exception as exc:
            if self.reachable is not False:
                log.warning("database_unreachable", error=type(exc).__name__, detail=str(exc)[:200])
            return False
        return True

    async def probe_once(self) -> bool:
        """Check, and report a change of answer (the first answer always counts as a change)."""
        reachable = await self.check()
        if reachable != self.reachable:
            if reachable and self.reachable is False:
                log.info("database_reachable_again")
            self.reachable = reachable
            await self._on_change(reachable)
        return reachable

    def start(self) -> None:
        """Probe every `interval` seconds in the background until `stop()` (after `probe_once()`)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="database-health-probe")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.probe_once()
            except Exception:
                # The probe must outlive a failing health update, or health would freeze.
                log.exception("health_probe_failed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._engine.dispose()


class HealthService(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """`grpc.health.v1.Health` whose Watch streams end once the server shuts down.

    grpcio's own servicer keeps every Watch open until the server's grace period runs out, so one
    client watching health would hold up every shutdown for the full grace. Here a watcher is told
    NOT_SERVING and then its stream completes: nothing will change any more.
    """

    def __init__(self) -> None:
        self._statuses: dict[str, int] = {"": health_pb2.HealthCheckResponse.SERVING}
        self._changed = asyncio.Condition()
        self._shutting_down = False

    async def Check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        status = self._statuses.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        unknown = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        last: int | None = None
        while True:
            # The lock is not held while writing: a watcher that does not read must not block updates.
            async with self._changed:
                await self._changed.wait_for(partial(self._news_for, request.service, last))
                status = self._statuses.get(request.service, unknown)
                ending = self._shutting_down
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            if ending:
                return

    def _news_for(self, service: str, last: int | None) -> bool:
        unknown = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        return self._shutting_down or self._statuses.get(service, unknown) != last

    async def set(self, service: str, status: int) -> None:
        """Set one service's status (ignored once shutdown began: it stays NOT_SERVING)."""
        async with self._changed:
            if self._shutting_down:
                return
            self._statuses[service] = status
            self._changed.notify_all()

    async def enter_graceful_shutdown(self) -> None:
        """NOT_SERVING for every service, for good; watchers get it and their streams end."""
        async with self._changed:
            self._shutting_down = True
            for service in self._statuses:
                self._statuses[service] = health_pb2.HealthCheckResponse.NOT_SERVING
            self._changed.notify_all()
