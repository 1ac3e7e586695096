"""Brute-force limits: failed grants per account, per service client and per peer (SPEC §2), and
registrations per peer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class AttemptKind(StrEnum):
    """What a counter counts failures of."""

    ACCOUNT = "account"
    CLIENT = "client"
    PEER = "peer"
    # Every Register call that gets to hashing, per peer address: each costs a password hash.
    REGISTRATION = "registration"


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures each kind of counter tolerates within one window."""

    account_limit: int = 5
    client_limit: int = 5
    peer_limit: int = 20
    registration_limit: int = 10
    window: timedelta = timedelta(minutes=15)

    def limit(self, kind: AttemptKind) -> int:
        return {
            AttemptKind.ACCOUNT: self.account_limit,
            AttemptKind.CLIENT: self.client_limit,
            AttemptKind.PEER: self.peer_limit,
            AttemptKind.REGISTRATION: self.registration_limit,
        }[kind]


# SPEC §2: 5 per account, 5 per client, 20 per peer, within 15 minutes.
DEFAULT_THROTTLE = ThrottlePolicy()


@dataclass(frozen=True)
class AttemptCount:
    """A counter right after an attempt was added to it."""

    attempts: int
    retry_after_seconds: float
