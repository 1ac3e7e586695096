"""In-memory stand-ins for the auth service's ports: the use cases run against them without I/O."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_service.domain.errors import ClientNameTaken, EmailTaken
from auth_service.domain.passwords import PasswordPolicy
from auth_service.domain.throttle import AttemptCount, AttemptKind
from auth_service.domain.tokens import RefreshToken
from auth_service.domain.users import ServiceClient, User
from auth_service.service.keys import KeyRing, SigningKey
from auth_service.service.ports import PasswordCheck
from auth_service.service.tokens import JwtAccessTokens
from shared.jwk import thumbprint
from shared.tokens import AccessTokenVerifier, KeySet

ISSUER, AUDIENCE = "tessera-auth", "tessera-inventory"


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class FakeDatabase:
    """What the fake repositories share; a unit of work works on a copy and publishes it on commit."""

    users: dict[uuid.UUID, User] = field(default_factory=dict)
    clients: dict[uuid.UUID, ServiceClient] = field(default_factory=dict)
    refresh_tokens: dict[uuid.UUID, RefreshToken] = field(default_factory=dict)
    revoked_access_tokens: dict[str, datetime] = field(default_factory=dict)
    attempts: dict[tuple[AttemptKind, str], tuple[int, datetime]] = field(default_factory=dict)
    commits: int = 0


class FakeUserRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    async def add(self, user: User) -> None:
        if any(u.email == user.email for u in self.db.users.values()):
            raise EmailTaken()
        self.db.users[user.id] = copy.deepcopy(user)

    async def get(self, user_id: uuid.UUID) -> User | None:
        return copy.deepcopy(self.db.users.get(user_id))

    async def get_by_email(self, normalized_email: str) -> User | None:
        return next((copy.deepcopy(u) for u in self.db.users.values() if u.email == normalized_email), None)

    async def replace_password_hash(
        self, user_id: uuid.UUID, expected_hash: str, new_hash: str, changed_at: datetime | None
    ) -> bool:
        user = self.db.users.get(user_id)
        if user is None or user.password_hash != expected_hash:
            return False
        user.password_hash = new_hash
        user.password_changed_at = changed_at or user.password_changed_at
        return True


class FakeClientRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    async def add(self, client: ServiceClient) -> None:
        if any(c.name == client.name for c in self.db.clients.values()):
            raise ClientNameTaken()
        self.db.clients[client.id] = copy.deepcopy(client)

    async def get(self, client_id: uuid.UUID) -> ServiceClient | None:
        return copy.deepcopy(self.db.clients.get(client_id))

    async def replace_secret_hash(self, client_id: uuid.UUID, expected_hash: str, new_hash: str) -> bool:
        client = self.db.clients.get(client_id)
        if client is None or client.secret_hash != expected_hash:
            return False
        client.secret_hash = new_hash
        return True


class FakeRefreshTokenRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    async def add(self, token: RefreshToken) -> None:
        assert all(t.token_hash != token.token_hash for t in self.db.refresh_tokens.values())
        self.db.refresh_tokens[token.id] = copy.deepcopy(token)

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        found = (t for t in self.db.refresh_tokens.values() if t.token_hash == token_hash)
        return copy.deepcopy(next(found, None))

    async def claim(self, token_id: uuid.UUID, now: datetime) -> bool:
        token = self.db.refresh_tokens.get(token_id)
        if token is None or not token.is_active(now):
            return False
        token.used_at = now
        return True

    async def _revoke(self, tokens: list[RefreshToken], now: datetime) -> int:
        count = 0
        for token in tokens:
            if token.revoked_at is None:
                token.revoked_at = now
                count += 1
        return count

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> int:
        return await self._revoke(
            [t for t in self.db.refresh_tokens.values() if t.family_id == family_id], now
        )

    async def revoke_all_of_user(self, user_id: uuid.UUID, now: datetime) -> int:
        return await self._revoke([t for t in self.db.refresh_tokens.values() if t.user_id == user_id], now)

    async def delete_expired(self, now: datetime) -> int:
        expired = [i for i, t in self.db.refresh_tokens.items() if t.expires_at < now]
        for token_id in expired:
            del self.db.refresh_tokens[token_id]
        return len(expired)


class FakeRevokedAccessTokenRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    async def add(self, token_id: str, expires_at: datetime, now: datetime) -> None:
        self.db.revoked_access_tokens.setdefault(token_id, expires_at)

    async def is_revoked(self, token_id: str) -> bool:
        return token_id in self.db.revoked_access_tokens

    async def delete_expired(self, now: datetime) -> int:
        expired = [i for i, exp in self.db.revoked_access_tokens.items() if exp < now]
        for token_id in expired:
            del self.db.revoked_access_tokens[token_id]
        return len(expired)


class FakeLoginAttemptRepository:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    async def add_attempt(
        self, kind: AttemptKind, key: str, now: datetime, window: timedelta
    ) -> AttemptCount:
        attempts, start = self.db.attempts.get((kind, key), (0, now))
        if start <= now - window:
            attempts, start = 0, now
        self.db.attempts[(kind, key)] = (attempts + 1, start)
        return AttemptCount(attempts + 1, (start + window - now).total_seconds())

    async def count(self, kind: AttemptKind, key: str, now: datetime, window: timedelta) -> AttemptCount:
        attempts, start = self.db.attempts.get((kind, key), (0, now))
        if start <= now - window:
            return AttemptCount(0, 0.0)
        return AttemptCount(attempts, (start + window - now).total_seconds())

    async def forget_attempt(self, kind: AttemptKind, key: str) -> None:
        if (kind, key) in self.db.attempts:
            attempts, start = self.db.attempts[(kind, key)]
            self.db.attempts[(kind, key)] = (max(0, attempts - 1), start)

    async def reset(self, kind: AttemptKind, key: str) -> None:
        self.db.attempts.pop((kind, key), None)

    async def delete_expired(self, started_before: datetime) -> int:
        expired = [k for k, (_, start) in self.db.attempts.items() if start < started_before]
        for key in expired:
            del self.db.attempts[key]
        return len(expired)


class FakeUnitOfWork:
    """Works on a private copy of the database; `commit()` publishes it, leaving without it discards it."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self.committed = False

    async def __aenter__(self) -> Self:
        self.committed = False
        self._work = copy.deepcopy(self._db)
        self.users = FakeUserRepository(self._work)
        self.clients = FakeClientRepository(self._work)
        self.refresh_tokens = FakeRefreshTokenRepository(self._work)
        self.revoked_access_tokens = FakeRevokedAccessTokenRepository(self._work)
        self.login_attempts = FakeLoginAttemptRepository(self._work)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        self._work.commits = self._db.commits + 1
        self._db.__dict__.update(copy.deepcopy(self._work).__dict__)
        self.committed = True


class FakeHasher:
    """Reversible 'hashing' that records what it was asked: fast, and enough to test the use cases."""

    def __init__(self) -> None:
        self.dummy_verifications = 0
        self.verifications = 0
        self.hashes = 0

    async def hash(self, password: str) -> str:
        self.hashes += 1
        return f"fake${password[::-1]}"

    async def verify(self, password_hash: str, password: str) -> PasswordCheck:
        """Hashes of any 'scheme' verify; any scheme but `fake` is outdated and wants a rehash."""
        self.verifications += 1
        scheme, _, reversed_password = password_hash.partition("$")
        matches = reversed_password == password[::-1]
        return PasswordCheck(matches=matches, needs_rehash=matches and scheme != "fake")

    async def verify_dummy(self, password: str) -> None:
        self.dummy_verifications += 1


def small_policy() -> PasswordPolicy:
    return PasswordPolicy(common=frozenset({"password1234", "qwertyuiop123"}))


def key_ring() -> KeyRing:
    private_key = Ed25519PrivateKey.generate()
    public_key = private_key.public_key()
    return KeyRing([SigningKey(thumbprint(public_key), public_key, private_key)])


def access_tokens(clock: FakeClock, ring: KeyRing | None = None, ttl_seconds: int = 900) -> JwtAccessTokens:
    ring = ring or key_ring()
    key_set = KeySet()
    key_set.replace(ring.public_keys())
    verifier = AccessTokenVerifier(
        key_set, issuer=ISSUER, audience=AUDIENCE, clock=lambda: clock().timestamp()
    )
    return JwtAccessTokens(ring, verifier, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=ttl_seconds)
