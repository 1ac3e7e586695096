"""The running RPC's deadline, carried to the work done on its behalf.

The request-context interceptor records the deadline the caller sent; the database plumbing
(`shared.db`) turns what is left of it into a statement timeout (a busy timeout on SQLite), the retry
loop (`shared.retry`) stops before it, and outbound calls (`shared.client.interceptors`) inherit it.
Work that outlives its caller holds locks and connections for an answer nobody will read. No gRPC
here: the repository layer reads it too.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

# On the `time.monotonic()` clock; None outside an RPC or when the caller set no deadline.
_deadline: ContextVar[float | None] = ContextVar("tessera_deadline", default=None)


def start_deadline(time_remaining: float | None) -> None:
    """Record that the running RPC must be answered within `time_remaining` seconds (None: no limit)."""
    _deadline.set(None if time_remaining is None else time.monotonic() + time_remaining)


def remaining_time() -> float | None:
    """Seconds left until the running RPC's deadline (≤ 0 once it passed); None without one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
