"""Tampered and forged access tokens: what an attacker can make from a real token and a public key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _parts(token: str) -> tuple[dict[str, object], bytes, bytes]:
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), _unb64(payload), _unb64(signature)


def flip_signature_byte(token: str) -> str:
    """The same token with one byte of its signature changed."""
    header, payload, signature = token.split(".")
    raw = bytearray(_unb64(signature))
    raw[len(raw) // 2] ^= 0x01
    return f"{header}.{payload}.{_b64(bytes(raw))}"


def change_payload_byte(token: str) -> str:
    """The same token with one byte of its claims changed (the last character of `sub`)."""
    header, payload, signature = token.split(".")
    claims = bytearray(_unb64(payload))
    subject_end = claims.index(b'"', claims.index(b'"sub":"') + len(b'"sub":"')) - 1
    claims[subject_end] ^= 0x01
    return f"{header}.{_b64(bytes(claims))}.{signature}"


def with_alg_none(token: str) -> str:
    """The token's claims under `alg: none` and an empty signature."""
    header, payload, _ = _parts(token)
    forged = {**header, "alg": "none"}
    return f"{_b64(json.dumps(forged).encode())}.{_b64(payload)}."


def hs256_with_public_key(token: str, public_key: Ed25519PublicKey, *, pem: bool = False) -> str:
    """The token's claims re-signed with HMAC-SHA256, the published public key as the secret."""
    header, payload, _ = _parts(token)
    forged = {**header, "alg": "HS256"}
    secret = (
        public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        if pem
        else public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    signing_input = f"{_b64(json.dumps(forged).encode())}.{_b64(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
