"""Reads from a standby (read replica), with a bound on how stale they may be, and read-your-writes.

A standby replays what the primary wrote with some delay. Reads may go to one only while that delay is
known to be small: `ReplicaLagProbe` asks the standby every `PROBE_INTERVAL_SECONDS` how far its replay
is behind, and the replica counts as fresh only while the last answer is recent and within the limit.
A read served by the replica is therefore at most `max_lag + 2 * PROBE_INTERVAL_SECONDS` behind the
primary (replay falls behind at most one second per second between two probes); otherwise reads go to
the primary. A caller's own writes are another matter: `RecentWriters` sends a caller who wrote within
the read-your-writes window to the primary, so a read right after a write sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import REPLICA_LAG_PROBE_INTERVAL_SECONDS

log = structlog.get_logger(__name__)

PROBE_INTERVAL_SECONDS = REPLICA_LAG_PROBE_INTERVAL_SECONDS

# How far replay is behind, in seconds. A primary (the URL may lead to one when no standby is up) is 0
# behind. A standby that replayed all it received is 0 behind only while it is receiving (streaming): one
# cut off from the primary looks "caught up" while it falls behind. Otherwise: the age of the last
# transaction replayed.
LAG_SQL = text(
    """
    SELECT CASE
      WHEN NOT pg_is_in_recovery() THEN 0.0
      WHEN NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN NULL
      WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
      ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8
    END
    """
)


class ReplicaLagProbe:
    """Measures the read replica's replay lag in the background; `fresh` says whether reads may use it."""

    def __init__(self, engine: AsyncEngine, max_lag_seconds: float) -> None:
        self._engine = engine
        self._max_lag = max_lag_seconds
        self._lag: float | None = None
        self._measured_at = float("-inf")
        self._task: asyncio.Task[None] | None = None

    @property
    def fresh(self) -> bool:
        recent = time.monotonic() - self._measured_at <= 2 * PROBE_INTERVAL_SECONDS
        return recent and self._lag is not None and self._lag <= self._max_lag

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="replica-lag-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def measure(self) -> float | None:
        try:
            async with asyncio.timeout(PROBE_INTERVAL_SECONDS * 2):
                async with self._engine.connect() as connection:
                    lag = (await connection.execute(LAG_SQL)).scalar_one()
        except Exception as exc:  # an unreachable replica is a stale one: reads go to the primary
            log.info("replica_unreachable", error=str(exc))
            lag = None
        was_fresh = self.fresh
        self._lag, self._measured_at = (None if lag is None else float(lag)), time.monotonic()
        if self.fresh != was_fresh:
            log.info("replica_fresh" if self.fresh else "replica_stale", lag_seconds=self._lag)
        return self._lag

    async def _run(self) -> None:
        while True:
            await self.measure()
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)


class RecentWriters:
    """Who wrote within the last `window_seconds` (in this process): their reads go to the primary."""

    def __init__(self, window_seconds: float, capacity: int = 100_000) -> None:
        self._window = window_seconds
        self._capacity = capacity
        self._last_write: OrderedDict[str, float] = OrderedDict()

    def wrote(self, caller: str) -> None:
        self._last_write[caller] = time.monotonic()
        self._last_write.move_to_end(caller)
        # Oldest first: entries past the window (or beyond the capacity) are dropped from the front.
        horizon = time.monotonic() - self._window
        while self._last_write and (
            len(self._last_write) > self._capacity or next(iter(self._last_write.values())) < horizon
        ):
            self._last_write.popitem(last=False)

    def wrote_recently(self, caller: str) -> bool:
        at = self._last_write.get(caller)
        return at is not None and time.monotonic() - at <= self._window
