"""What a server needs, besides a reachable database, before it may say SERVING.

A data service without the auth service's signing keys answers every call that carries a token with
UNAVAILABLE; reporting SERVING then would send it traffic it can only refuse. A `Prerequisite` is such a
need: the server stays NOT_SERVING until each one is met, and logs what it waits for.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Prerequisite:
    """One need, met once (keys that were loaded are kept through later outages)."""

    name: str
    # What the server waits for, in words an operator can act on.
    waiting_for: str
    _met: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def met(self) -> bool:
        return self._met.is_set()

    def mark_met(self) -> None:
        self._met.set()

    async def wait(self) -> None:
        await self._met.wait()
