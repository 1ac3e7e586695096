"""Capturing structlog events of in-process servers, with their request context merged in."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog

LogEvent = dict[str, Any]


class CapturedLogs(list[LogEvent]):
    def named(self, event: str, **fields: Any) -> list[LogEvent]:
        """Events called `event` whose fields include `fields`."""
        return [e for e in self if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())]

    async def wait_for(self, event: str, *, within: float = 10.0, **fields: Any) -> LogEvent:
        """The first matching event, waiting for it (at most `within` seconds) if it has not happened."""
        return await wait_until(lambda: (self.named(event, **fields) or [None])[0], within=within)


@contextmanager
def captured_logs() -> Iterator[CapturedLogs]:
    """Every event logged inside the block, as the JSON renderer would see its fields.

    Like `structlog.testing.capture_logs`, the processor list is changed in place (so loggers cached on
    first use see it too), but contextvars are merged first: the request id and method that the request
    context interceptor binds are part of each event.
    """
    events = CapturedLogs()

    def capture(_logger: Any, method: str, event_dict: LogEvent) -> LogEvent:
        events.append({**event_dict, "log_level": method})
        raise structlog.DropEvent

    processors = structlog.get_config()["processors"]
    saved = list(processors)
    processors[:] = [structlog.contextvars.merge_contextvars, capture]
    try:
        yield events
    finally:
        processors[:] = saved


async def wait_until(predicate: Callable[[], Any], *, within: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `predicate` (plain or async) until it returns something truthy; TimeoutError after `within` s."""
    async with asyncio.timeout(within):
        while True:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(interval)
