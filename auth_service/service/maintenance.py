"""Forgetting what no longer matters: expired refresh tokens, revocations and attempt counters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from auth_service.domain.throttle import DEFAULT_THROTTLE, ThrottlePolicy
from auth_service.service.ports import Clock, UnitOfWorkFactory
from shared.errors import TesseraError

log = structlog.get_logger("tessera.auth.maintenance")


@dataclass(frozen=True)
class Purged:
    refresh_tokens: int
    revoked_access_tokens: int
    attempt_counters: int


class Maintenance:
    """Keeps the auth tables from growing without bound."""

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, throttle: ThrottlePolicy = DEFAULT_THROTTLE
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._throttle = throttle

    async def purge_expired(self) -> Purged:
        """Delete rows that can no longer change any answer: every one of them has expired."""
        now = self._clock()
        async with self._uow() as uow:
            purged = Purged(
                refresh_tokens=await uow.refresh_tokens.delete_expired(now),
                revoked_access_tokens=await uow.revoked_access_tokens.delete_expired(now),
                attempt_counters=await uow.login_attempts.delete_expired(now - self._throttle.window),
            )
            await uow.commit()
        return purged

    async def run_periodically(self, interval_seconds: float) -> None:
        """Purge every `interval_seconds` until cancelled; a failed round (database down) is retried."""
        while True:
            try:
                purged = await self.purge_expired()
                log.debug("purged_expired", **purged.__dict__)
            except TesseraError as exc:
                log.warning("purge_failed", error=exc.message)
            except Exception:
                # A background loop that dies silently would let the tables grow forever: log, go on.
                log.exception("purge_crashed")
            await asyncio.sleep(interval_seconds)
