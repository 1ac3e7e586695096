"""What the use cases need from the outside world, as Protocols; `app.py` passes the implementations.

Repositories talk to the database only and return domain objects; they flush, never commit. The unit of
work owns the transaction: it rolls back unless the use case calls `commit()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from auth_service.domain.throttle import AttemptCount, AttemptKind
from auth_service.domain.tokens import AccessTokenClaims, RefreshToken
from auth_service.domain.users import ServiceClient, User

Clock = Callable[[], datetime]


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Insert a user; `EmailTaken` when the (normalized) email is already registered."""

    async def get(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, or None."""

    async def get_by_email(self, normalized_email: str) -> User | None:
        """The user with this normalized email, or None."""

    async def replace_password_hash(
        self, user_id: uuid.UUID, expected_hash: str, new_hash: str, changed_at: datetime | None
    ) -> bool:
        """Swap the hash only if it is still `expected_hash`; False when a concurrent change won."""


class ClientRepository(Protocol):
    async def add(self, client: ServiceClient) -> None:
        """Insert a service client; `ClientNameTaken` when the name is taken."""

    async def get(self, client_id: uuid.UUID) -> ServiceClient | None:
        """The service client with this id, or None."""

    async def replace_secret_hash(self, client_id: uuid.UUID, expected_hash: str, new_hash: str) -> bool:
        """Swap the secret hash only if it is still `expected_hash` (rehash on new parameters)."""


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None:
        """Insert a refresh token (its hash, never the token)."""

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        """The refresh token with this hash, or None."""

    async def claim(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Mark the token used if it is still active, atomically; True for exactly one caller.

        One conditional UPDATE (`... WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > now`):
        of two concurrent claims of one token, the database lets exactly one change the row.
        """

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> int:
        """Revoke every not yet revoked token of a rotation family; the number revoked."""

    async def revoke_all_of_user(self, user_id: uuid.UUID, now: datetime) -> int:
        """Revoke every not yet revoked refresh token of a user; the number revoked."""

    async def delete_expired(self, now: datetime) -> int:
        """Delete tokens that expired before `now`; the number deleted."""


class RevokedAccessTokenRepository(Protocol):
    async def add(self, token_id: str, expires_at: datetime, now: datetime) -> None:
        """Remember a revoked access token id until it expires; revoking twice is fine."""

    async def is_revoked(self, token_id: str) -> bool:
        """Whether the access token with this id was revoked."""

    async def delete_expired(self, now: datetime) -> int:
        """Forget ids of tokens that expired before `now` (they are rejected by expiry anyway)."""


class LoginAttemptRepository(Protocol):
    async def add_attempt(
        self, kind: AttemptKind, key: str, now: datetime, window: timedelta
    ) -> AttemptCount:
        """Count one more attempt atomically and return the count of the current window.

        A window starts with the first attempt after the previous one ended. Concurrent callers each
        get a distinct count, so a limit cannot be overrun by attempts that race.
        """

    async def count(self, kind: AttemptKind, key: str, now: datetime, window: timedelta) -> AttemptCount:
        """The count of the current window without adding to it (0 when there is none)."""

    async def forget_attempt(self, kind: AttemptKind, key: str) -> None:
        """Take back one attempt (it succeeded, so it was no failure)."""

    async def reset(self, kind: AttemptKind, key: str) -> None:
        """Forget every counted failure of this key."""

    async def delete_expired(self, started_before: datetime) -> int:
        """Delete counters whose window started before `started_before`."""


class AuthUnitOfWork(Protocol):
    """One transaction over the auth database with its repositories."""

    # Read-only properties: an implementation may hold more specific repository types.
    @property
    def users(self) -> UserRepository: ...

    @property
    def clients(self) -> ClientRepository: ...

    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...

    @property
    def revoked_access_tokens(self) -> RevokedAccessTokenRepository: ...

    @property
    def login_attempts(self) -> LoginAttemptRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], AuthUnitOfWork]


@dataclass(frozen=True)
class PasswordCheck:
    matches: bool
    # The hash was made with other parameters than the current ones: store a new one.
    needs_rehash: bool = False


class PasswordHasher(Protocol):
    """Slow, salted password hashing that never blocks the event loop."""

    async def hash(self, password: str) -> str:
        """A new PHC-format hash of `password`."""

    async def verify(self, password_hash: str, password: str) -> PasswordCheck:
        """Whether `password` matches `password_hash`, and whether the hash should be renewed."""

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a verification without a user, so that an unknown user is not faster."""


class AccessTokenCodec(Protocol):
    """Signs access tokens and reads back ones that this service issued."""

    @property
    def ttl_seconds(self) -> int: ...

    def issue(self, *, subject: str, scope: frozenset[str], client_id: str, now: datetime) -> str:
        """A signed access token (RFC 9068)."""

    def read(self, token: str) -> AccessTokenClaims | None:
        """The claims of a valid, unexpired token that this service signed; None for anything else."""


@dataclass(frozen=True)
class Caller:
    """The verified identity behind the access token of the running RPC."""

    subject: str
    client_id: str
    token_id: str
