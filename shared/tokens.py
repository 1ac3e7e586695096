"""Verifying RFC 9068 access tokens locally: EdDSA only, every claim checked, results cached.

Both services use it: the auth service with its own public keys, the data service with the keys it
fetched from `GetJwks`. Verification costs ~150 µs of CPU; the cache of verified tokens turns a repeat
into a dictionary lookup, which is what keeps a hot RPC path cheap (see BENCHMARKING.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.errors import Unauthenticated
from shared.principal import Principal

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type (RFC 9068), not a secret
# RFC 9068 §4: `typ` is "at+jwt" or "application/at+jwt"; media types compare case-insensitively.
_ACCEPTED_TYPES = frozenset({ACCESS_TOKEN_TYPE, f"application/{ACCESS_TOKEN_TYPE}"})
ALGORITHM = "EdDSA"
# A real token is ~500 bytes; anything far larger is refused before base64 or JSON decoding runs.
MAX_TOKEN_BYTES = 4096
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
# An access token nobody may hold longer than this, whatever its signature says (one hour).
DEFAULT_MAX_LIFETIME_SECONDS = 3600


class InvalidToken(Unauthenticated):
    """The token cannot be accepted. The message is deliberately the same for every cause."""

    def __init__(self, why: str = "invalid") -> None:
        super().__init__("the access token is invalid or expired", reason="invalid_token")
        # For our logs only; never sent to the client.
        self.why = why


class UnknownKeyId(InvalidToken):
    """Signed with a key we do not have (yet): the caller may refresh its key set and try once more."""

    def __init__(self, kid: str) -> None:
        super().__init__("unknown kid")
        self.kid = kid


@dataclass
class KeySet:
    """The public keys tokens may be signed with, by kid. Replaced wholesale when keys rotate."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    version: int = 0

    def replace(self, keys: Iterable[tuple[str, Ed25519PublicKey]]) -> None:
        self.keys = dict(keys)
        self.version += 1


class AccessTokenVerifier:
    """Verifies access tokens against a key set, issuer and audience, with a cache of results."""

    def __init__(
        self,
        key_set: KeySet,
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = 5,
        max_lifetime_seconds: int = DEFAULT_MAX_LIFETIME_SECONDS,
        cache_size: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key_set = key_set
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._max_lifetime = max_lifetime_seconds
        self._cache_size = cache_size
        self._clock = clock
        self._cache: dict[str, Principal] = {}
        self._cache_key_version = key_set.version

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; `InvalidToken` (or `UnknownKeyId`) otherwise."""
        if self._cache_key_version != self._key_set.version:
            # Keys changed: a token cached under a withdrawn key must be checked again.
            self._cache.clear()
            self._cache_key_version = self._key_set.version
        now = self._clock()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at + self._leeway > now:
                return cached
            del self._cache[token]
            raise InvalidToken("expired")
        principal = self._verify_uncached(token, now)
        if len(self._cache) >= self._cache_size:
            # Drop the oldest entry (dicts keep insertion order): bounded memory under a token flood.
            del self._cache[next(iter(self._cache))]
        self._cache[token] = principal
        return principal

    def _verify_uncached(self, token: str, now: float) -> Principal:
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("oversized")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed header") from exc
        # PyJWT would also refuse other algorithms; checking first keeps key confusion impossible even if
        # a key of another type ever entered the key set.
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("algorithm not allowed")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES:
            raise InvalidToken("not an access token (typ)")
        if "crit" in header:
            raise InvalidToken("critical header extensions are not supported")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("missing kid")
        key = self._key_set.keys.get(kid)
        if key is None:
            raise UnknownKeyId(kid)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS, "verify_signature": True},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from exc
        principal = _principal_from_claims(claims)
        # A signed token is only as good as its issuer's clock and settings: a token made to live for
        # years (a leaked key, a misconfigured issuer) or dated in the future is refused here too.
        if principal.issued_at > now + self._leeway:
            raise InvalidToken("issued in the future")
        if principal.expires_at - principal.issued_at > self._max_lifetime + self._leeway:
            raise InvalidToken("lifetime exceeds the maximum")
        return principal


def _principal_from_claims(claims: dict[str, object]) -> Principal:
    subject, token_id, scope = claims.get("sub"), claims.get("jti"), claims.get("scope", "")
    client_id = claims.get("client_id", "")
    expires_at, issued_at = _integer(claims.get("exp")), _integer(claims.get("iat"))
    if not (isinstance(subject, str) and subject and isinstance(token_id, str) and token_id):
        raise InvalidToken("sub and jti must be non-empty strings")
    if not isinstance(scope, str) or not isinstance(client_id, str):
        raise InvalidToken("malformed claims")
    if expires_at is None or issued_at is None:
        raise InvalidToken("exp and iat must be integers")
    return Principal(
        subject=subject,
        scopes=frozenset(scope.split()),
        client_id=client_id,
        token_id=token_id,
        expires_at=expires_at,
        issued_at=issued_at,
    )


def _integer(value: object) -> int | None:
    # bool is an int subclass: `"exp": true` must not pass as a time.
    return value if isinstance(value, int) and not isinstance(value, bool) else None
