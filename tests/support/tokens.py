"""Minting RFC 9068 access tokens in tests, with a key the data server under test trusts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.jwk import thumbprint
from shared.tokens import KeySet

ISSUER = "tessera-auth"
AUDIENCE = "tessera-inventory"
CUSTOMER_SCOPES = ("catalog.read", "orders.read", "orders.write")
STAFF_SCOPES = (*CUSTOMER_SCOPES, "catalog.write", "stock.write", "orders.admin")


@dataclass
class TokenMinter:
    """Signs access tokens like the auth service does: EdDSA, `typ: at+jwt`, a `kid`, every claim."""

    issuer: str = ISSUER
    audience: str = AUDIENCE
    private_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def kid(self) -> str:
        return thumbprint(self.private_key.public_key())

    def key_set(self) -> KeySet:
        """A key set holding this minter's public key, for `create_server(..., key_set=...)`."""
        keys = KeySet()
        keys.replace([(self.kid, self.private_key.public_key())])
        return keys

    def mint(
        self,
        subject: str,
        scopes: Iterable[str],
        *,
        client_id: str = "tessera",
        ttl_seconds: int = 300,
        **claim_overrides: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "exp": now + ttl_seconds,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "scope": " ".join(scopes),
            "client_id": client_id,
            **claim_overrides,
        }
        return jwt.encode(
            claims, self.private_key, algorithm="EdDSA", headers={"typ": "at+jwt", "kid": self.kid}
        )


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying `token`."""
    return (("authorization", f"Bearer {token}"),)
