"""Ed25519 public keys as JSON Web Keys (RFC 8037) and their RFC 7638 thumbprints."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order, no white space."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The public members only: a private `d` can never slip into a published key set."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "kid": thumbprint(public_key),
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(raw),
        "alg": "EdDSA",
        "use": "sig",
    }


class InvalidJwk(ValueError):
    """A published key is not an Ed25519 signing key we can use."""


def public_key_from_jwk(jwk: Mapping[str, str]) -> tuple[str, Ed25519PublicKey]:
    """Parse a published key into (kid, key), refusing anything but an Ed25519 signing key."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise InvalidJwk("only OKP/Ed25519 keys are accepted")
    if jwk.get("alg", "EdDSA") != "EdDSA" or jwk.get("use", "sig") != "sig":
        raise InvalidJwk("the key is not an EdDSA signing key")
    try:
        raw = b64url_decode(jwk["x"])
        key = Ed25519PublicKey.from_public_bytes(raw)
    except (KeyError, ValueError) as exc:
        raise InvalidJwk("the key's x member is not a 32-byte Ed25519 public key") from exc
    kid = jwk.get("kid") or thumbprint(key)
    return kid, key
