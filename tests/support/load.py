"""A bounded load of real gRPC calls, recording every outcome, that a fault can hit in the middle.

    async with Load(workers=8, call=one_call) as load:
        await load.wait_for(lambda: load.count("OK") >= 20)
        ...cause a fault...
    load.report.codes  # Counter of status code names over the whole run

Workers behave like well-mannered clients: after UNAVAILABLE or RESOURCE_EXHAUSTED they back off for a
moment (the RetryInfo delay, capped) instead of spinning, as the client library does.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import grpc

from tests.support.logs import wait_until

# `make soak-reliability` multiplies the loads of the reliability cases by this.
SCALE = int(os.environ.get("TESSERA_RELIABILITY_SCALE", "1"))
# A call: gets a sequence number, returns the response (or raises AioRpcError).
Call = Callable[[int], Awaitable[Any]]
_BACK_OFF = {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}
_MAX_BACK_OFF_SECONDS = 0.1


@dataclass(frozen=True)
class Outcome:
    number: int
    code: str
    started: float
    ended: float
    error: grpc.aio.AioRpcError | None = None


@dataclass
class LoadReport:
    outcomes: list[Outcome] = field(default_factory=list)
    # Anything but a gRPC status (a bug in the test or the client): must stay empty.
    crashes: list[BaseException] = field(default_factory=list)

    @property
    def codes(self) -> Counter[str]:
        return Counter(o.code for o in self.outcomes)

    def between(self, start: float, end: float) -> list[Outcome]:
        """Calls that started at or after `start` and ended by `end` (time.monotonic())."""
        return [o for o in self.outcomes if o.started >= start and o.ended <= end]


class Load:
    def __init__(self, *, workers: int, call: Call, max_calls: int = 100_000) -> None:
        self._workers = workers
        self._call = call
        self._max_calls = max_calls
        self._numbers = itertools.count()
        self._stopped = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.report = LoadReport()

    def count(self, code: str, since: float = 0.0) -> int:
        return sum(1 for o in self.report.outcomes if o.code == code and o.started >= since)

    async def wait_for(self, condition: Callable[[], bool], *, within: float | None = None) -> None:
        async def check() -> bool:
            if self.report.crashes:
                raise self.report.crashes[0]
            return condition()

        await wait_until(check, within=within if within is not None else 30.0 * SCALE)

    async def _work(self) -> None:
        while not self._stopped.is_set():
            number = next(self._numbers)
            if number >= self._max_calls:
                return
            started = time.monotonic()
            try:
                await self._call(number)
            except grpc.aio.AioRpcError as error:
                self.report.outcomes.append(
                    Outcome(number, error.code().name, started, time.monotonic(), error)
                )
                if error.code().name in _BACK_OFF:
                    await asyncio.sleep(_MAX_BACK_OFF_SECONDS)
            except Exception as exc:
                self.report.crashes.append(exc)
                return
            else:
                self.report.outcomes.append(Outcome(number, "OK", started, time.monotonic()))

    async def __aenter__(self) -> Load:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        return self

    def stop_issuing(self) -> None:
        """Start no new call; those in flight go on (`stop()` waits for them)."""
        self._stopped.set()

    async def stop(self) -> LoadReport:
        """Let every call in flight finish, then stop."""
        self._stopped.set()
        await asyncio.gather(*self._tasks)
        assert not self.report.crashes, self.report.crashes
        return self.report

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            return
        await self.stop()
