"""Access tokens per RFC 9068: signed here with the first key of the ring, read back with the shared
verifier (the same code, keys, issuer and audience checks that the data service uses)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import jwt

from auth_service.domain.scopes import format_scope
from auth_service.domain.tokens import AccessTokenClaims
from auth_service.service.keys import KeyRing
from shared.tokens import ACCESS_TOKEN_TYPE, ALGORITHM, AccessTokenVerifier, InvalidToken


class JwtAccessTokens:
    """`AccessTokenCodec` with EdDSA JWTs."""

    def __init__(
        self,
        key_ring: KeyRing,
        verifier: AccessTokenVerifier,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int,
    ) -> None:
        self._key_ring = key_ring
        self._verifier = verifier
        self._issuer = issuer
        self._audience = audience
        self._ttl_seconds = ttl_seconds

    @property
    def ttl_seconds(self) -> int:
        return self._ttl_seconds

    def issue(self, *, subject: str, scope: frozenset[str], client_id: str, now: datetime) -> str:
        """A token with header `{alg: EdDSA, typ: at+jwt, kid}` and the claims RFC 9068 requires."""
        issued_at = int(now.timestamp())
        claims = {
            "iss": self._issuer,
            "sub": subject,
            "aud": self._audience,
            "exp": issued_at + self._ttl_seconds,
            "iat": issued_at,
            "jti": str(uuid.uuid4()),
            "scope": format_scope(scope),
            "client_id": client_id,
        }
        headers = {"typ": ACCESS_TOKEN_TYPE, "kid": self._key_ring.signing_key.kid}
        return jwt.encode(claims, self._key_ring.signing_private_key, algorithm=ALGORITHM, headers=headers)

    def read(self, token: str) -> AccessTokenClaims | None:
        """The claims of a valid token of ours; None when it is invalid, expired or not ours at all."""
        try:
            principal = self._verifier.verify(token)
        except InvalidToken:
            return None
        return AccessTokenClaims(
            subject=principal.subject,
            scope=principal.scopes,
            client_id=principal.client_id,
            token_id=principal.token_id,
            issued_at=datetime.fromtimestamp(principal.issued_at, UTC),
            expires_at=datetime.fromtimestamp(principal.expires_at, UTC),
        )
