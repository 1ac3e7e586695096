from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from structlog.testing import capture_logs

from auth_service.service.keys import (
    SigningKeyError,
    load_key_ring,
    parse_key_ring,
    private_key_pem,
    signing_keys_for,
)
from shared.config import AuthSettings
from shared.jwk import public_key_from_jwk, thumbprint


def test_the_first_key_signs_and_every_key_is_published_by_its_thumbprint() -> None:
    first, second = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    retired = Ed25519PrivateKey.generate().public_key()
    pem = (
        private_key_pem(first)
        + private_key_pem(second)
        + retired.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )

    ring = parse_key_ring(pem)

    assert ring.signing_key.kid == thumbprint(first.public_key())
    assert [kid for kid, _ in ring.public_keys()] == [
        thumbprint(first.public_key()),
        thumbprint(second.public_key()),
        thumbprint(retired),
    ]
    for jwk in ring.jwks():
        assert set(jwk) == {"kid", "kty", "crv", "x", "alg", "use"}
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")


def test_the_rfc7638_thumbprint_of_the_rfc8037_example_key() -> None:
    # RFC 8037 Appendix A.3: the thumbprint of the example Ed25519 key.
    _, key = public_key_from_jwk(
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    )
    assert thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"not a key",
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        generate_private_key(SECP256R1()).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"x")
        ),
        generate_private_key(SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()),
    ],
    ids=["empty", "garbage", "public-key-first", "encrypted", "p256"],
)
def test_unusable_key_files_are_refused(pem: bytes) -> None:
    with pytest.raises(SigningKeyError):
        parse_key_ring(pem)


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="cannot read"):
        load_key_ring(tmp_path / "absent.pem")


def test_development_generates_one_private_pkcs8_key_with_a_loud_warning(tmp_path: Path) -> None:
    path = tmp_path / "var" / "auth-signing-key.pem"

    with capture_logs() as logs:
        first = signing_keys_for(None, development_key_file=path, production=False)
    second = signing_keys_for(None, development_key_file=path, production=False)

    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert isinstance(load_pem_private_key(path.read_bytes(), None), Ed25519PrivateKey)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.signing_key.kid == second.signing_key.kid
    assert any(entry["log_level"] == "warning" and "DEVELOPMENT" in entry["warning"] for entry in logs)


def test_production_without_a_key_file_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SigningKeyError):
        signing_keys_for(None, development_key_file=tmp_path / "k.pem", production=True)
    assert not (tmp_path / "k.pem").exists()
    monkeypatch.setenv("TESSERA_ENV", "production")
    with pytest.raises(ValueError, match="AUTH_SIGNING_KEY_FILE"):
        AuthSettings(database_url="postgresql+asyncpg://db/auth", tls_cert_file="c.pem", tls_key_file="k.pem")
