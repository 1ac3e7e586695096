"""Ed25519 signing keys held by a test: written as the auth service's key file, used to mint tokens."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from shared.jwk import public_jwk
from shared.tokens import KeySet

ISSUER = "tessera-auth"
AUDIENCE = "tessera-inventory"


class SigningKeys:
    """Keys the test holds: the first signs, all are published; `key_set` mirrors them (for a verifier)."""

    def __init__(self) -> None:
        self.private_keys: list[Ed25519PrivateKey] = [Ed25519PrivateKey.generate()]
        self.key_set = KeySet()
        self._sync()

    def _sync(self) -> None:
        self.key_set.replace((self.kid_of(key), key.public_key()) for key in self.private_keys)

    @staticmethod
    def kid_of(key: Ed25519PrivateKey) -> str:
        return public_jwk(key.public_key())["kid"]

    @property
    def current_kid(self) -> str:
        return self.kid_of(self.private_keys[0])

    def rotate(self) -> Ed25519PrivateKey:
        """Add a new key that signs from now on; the old ones stay published."""
        key = Ed25519PrivateKey.generate()
        self.private_keys.insert(0, key)
        self._sync()
        return key

    def withdraw(self, key: Ed25519PrivateKey) -> None:
        self.private_keys.remove(key)
        self._sync()

    def write_pem(self, path: Path) -> Path:
        """The keys as an `AUTH_SIGNING_KEY_FILE`: PKCS#8 PEM blocks, the signing key first."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            b"".join(
                key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
                for key in self.private_keys
            )
        )
        return path

    def jwks(self) -> list[dict[str, str]]:
        return [public_jwk(key.public_key()) for key in self.private_keys]

    def mint(
        self,
        subject: str = "user-1",
        scope: Iterable[str] = ("catalog.read",),
        *,
        key: Ed25519PrivateKey | None = None,
        kid: str | None = None,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        ttl_seconds: int = 300,
        issued_at: int | None = None,
        client_id: str = "tessera",
    ) -> str:
        """An RFC 9068 access token, signed by `key` (default: the current signing key)."""
        signer = key or self.private_keys[0]
        now = int(time.time()) if issued_at is None else issued_at
        claims = {
            "iss": issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": str(uuid.uuid4()),
            "scope": " ".join(sorted(scope)),
            "client_id": client_id,
        }
        headers = {"typ": "at+jwt", "kid": kid or self.kid_of(signer)}
        return jwt.encode(claims, signer, algorithm="EdDSA", headers=headers)
