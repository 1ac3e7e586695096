"""The auth service's Ed25519 signing keys: loaded from PEM, or generated once for development.

`AUTH_SIGNING_KEY_FILE` holds one or more PEM keys. The first is a private key and signs new tokens;
every key in the file is published in the JWKS (later ones may be private or public keys), so tokens
signed by a key that is being retired keep verifying until they expire. A key's id is its RFC 7638
thumbprint, so it is the same wherever it is computed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from shared.jwk import public_jwk, thumbprint
from shared.private_files import PRIVATE_FILE_MODE, private_directory

log = structlog.get_logger("tessera.auth.keys")

_PEM_BLOCK = re.compile(rb"-----BEGIN (?P<label>[A-Z0-9 ]+)-----\r?\n.*?-----END (?P=label)-----", re.DOTALL)


class SigningKeyError(RuntimeError):
    """The signing key file is missing, unreadable or holds something other than Ed25519 keys."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public_key: Ed25519PublicKey
    private_key: Ed25519PrivateKey | None = None


class KeyRing:
    """The published keys, first one signing."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        if not keys or keys[0].private_key is None:
            raise SigningKeyError("the first key must be an Ed25519 private key: it signs new tokens")
        self._keys = tuple(keys)

    @property
    def signing_key(self) -> SigningKey:
        return self._keys[0]

    @property
    def signing_private_key(self) -> Ed25519PrivateKey:
        private_key = self._keys[0].private_key
        assert private_key is not None  # checked in __init__
        return private_key

    def public_keys(self) -> list[tuple[str, Ed25519PublicKey]]:
        """(kid, public key) of every published key, for a verifier's key set."""
        return [(key.kid, key.public_key) for key in self._keys]

    def jwks(self) -> list[dict[str, str]]:
        """Every published key as a public JWK (never a private member)."""
        return [public_jwk(key.public_key) for key in self._keys]


def parse_key_ring(pem: bytes, *, source: str = "the key file") -> KeyRing:
    """A key ring from PEM text holding one or more Ed25519 keys (PKCS#8 private or SPKI public)."""
    keys: list[SigningKey] = []
    seen: set[str] = set()
    for number, match in enumerate(_PEM_BLOCK.finditer(pem), start=1):
        block, label = match.group(0), match.group("label").decode()
        try:
            loaded = (
                load_pem_public_key(block) if label == "PUBLIC KEY" else load_pem_private_key(block, None)
            )
        except (ValueError, TypeError) as exc:
            # No key material in the message: only which block failed and why in general terms.
            raise SigningKeyError(
                f"key {number} in {source} ({label}) cannot be loaded; encrypted keys are not supported"
            ) from exc
        if isinstance(loaded, Ed25519PrivateKey):
            key = SigningKey(thumbprint(loaded.public_key()), loaded.public_key(), loaded)
        elif isinstance(loaded, Ed25519PublicKey):
            key = SigningKey(thumbprint(loaded), loaded)
        else:
            raise SigningKeyError(f"key {number} in {source} is not an Ed25519 key")
        if key.kid not in seen:
            seen.add(key.kid)
            keys.append(key)
    if not keys:
        raise SigningKeyError(f"{source} holds no PEM key")
    return KeyRing(keys)


def load_key_ring(path: Path) -> KeyRing:
    """The key ring in the PEM file at `path`."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing key file {path}: {exc.strerror}") from exc
    return parse_key_ring(pem, source=str(path))


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (protected by file permissions, as a server's key file is)."""
    return private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def write_new_key_file(path: Path) -> bool:
    """Create `path` with a new Ed25519 key, readable by its owner only; False if it already exists."""
    private_directory(path.parent)
    try:
        # O_EXCL: two processes starting at once cannot overwrite each other's key.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # A key left readable by an older version is made owner-only; its content stays.
        os.chmod(path, PRIVATE_FILE_MODE)
        return False
    with os.fdopen(descriptor, "wb") as file:
        file.write(private_key_pem(Ed25519PrivateKey.generate()))
    return True


def signing_keys_for(key_file: Path | None, *, development_key_file: Path, production: bool) -> KeyRing:
    """The configured keys, or in development a generated key under ./var/ with a loud warning."""
    if key_file is not None:
        return load_key_ring(key_file)
    if production:
        # AuthSettings already refuses this; a second lock on the same door costs nothing.
        raise SigningKeyError("AUTH_SIGNING_KEY_FILE is required in production")
    created = write_new_key_file(development_key_file)
    log.warning(
        "development_signing_key_in_use",
        path=str(development_key_file),
        generated=created,
        warning=(
            "AUTH_SIGNING_KEY_FILE is unset: tokens are signed with a DEVELOPMENT key that is not a "
            "secret anyone manages. Never run this in production; set AUTH_SIGNING_KEY_FILE."
        ),
    )
    return load_key_ring(development_key_file)
