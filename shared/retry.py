"""Running a whole transaction again when the database says it lost a race."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shared.deadlines import remaining_time
from shared.errors import TransactionConflict

T = TypeVar("T")


async def retry_on_conflict(operation: Callable[[], Awaitable[T]], *, attempts: int = 4) -> T:
    """Run `operation` (one complete unit of work) again after a serialization failure or deadlock.

    Bounded twice: by `attempts`, and by the running RPC's deadline (no attempt starts that could not
    finish in time). The last conflict propagates (ABORTED), so a hot row never becomes an endless loop.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except TransactionConflict:
            # Jittered backoff lets the winner of the conflict commit before we run again.
            backoff = random.uniform(0.002, 0.01) * attempt  # noqa: S311 - jitter, not crypto
            left = remaining_time()
            if attempt == attempts or (left is not None and left <= backoff):
                raise
            await asyncio.sleep(backoff)
    raise AssertionError("unreachable")
