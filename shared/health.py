"""Health tied to reality: a background probe that asks the database `SELECT 1` every few seconds.

The server reports NOT_SERVING while the probe fails and SERVING again once it succeeds, so a load
balancer or orchestrator stops sending traffic to an instance whose every RPC would fail anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = structlog.get_logger("tessera.health")

OnChange = Callable[[bool], Awaitable[None]]


class DatabaseProbe:
    """Runs `SELECT 1` with a timeout every `interval` seconds; calls `on_change` when the answer flips.

    The probe opens its own connection each time instead of borrowing one from the service's pool: under
    load the pool may have nothing to lend for a while, and a busy server is not an unhealthy one (going
    NOT_SERVING then would drain it exactly when it is needed).
    """

    def __init__(
        self, engine: AsyncEngine, on_change: OnChange, *, interval: float = 5.0, timeout: float = 2.0
    ) -> None:
        self._engine = create_async_engine(engine.url, poolclass=pool.NullPool)
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
