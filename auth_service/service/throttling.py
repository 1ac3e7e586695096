"""Counting attempts against the brute-force limits, inside a use case's unit of work."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from auth_service.domain.errors import TooManyAttempts
from auth_service.domain.throttle import AttemptKind, ThrottlePolicy
from auth_service.service.ports import AuthUnitOfWork

# (what is counted, whose counter): ("account", "ann@example.com"), ("peer", "203.0.113.7"), ...
CounterKey = tuple[AttemptKind, str]


async def reserve_attempts(
    uow: AuthUnitOfWork, policy: ThrottlePolicy, keys: Iterable[CounterKey], now: datetime
) -> None:
    """Count this attempt on every counter before the credentials are checked.

    Counting first (and taking the count back on success) makes the limit hold under concurrency: of
    many simultaneous guesses, only as many as the limit allows get to a password check. Over the limit
    raises `TooManyAttempts` and, since the caller then does not commit, the blocked attempt is not
    counted.
    """
    blocked: list[tuple[float, AttemptKind]] = []
    for kind, key in keys:
        count = await uow.login_attempts.add_attempt(kind, key, now, policy.window)
        if count.attempts > policy.limit(kind):
            blocked.append((count.retry_after_seconds, kind))
    if blocked:
        retry_after, kind = max(blocked)
        raise TooManyAttempts(retry_after, limit=kind.value)


async def refuse_when_blocked(
    uow: AuthUnitOfWork, policy: ThrottlePolicy, kind: AttemptKind, key: str, now: datetime
) -> None:
    """Raise `TooManyAttempts` when the counter already reached its limit (a read, nothing counted)."""
    count = await uow.login_attempts.count(kind, key, now, policy.window)
    if count.attempts >= policy.limit(kind):
        raise TooManyAttempts(count.retry_after_seconds, limit=kind.value)


def peer_key(peer: str) -> CounterKey:
    return AttemptKind.PEER, peer
