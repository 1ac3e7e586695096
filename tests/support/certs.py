"""A private CA and the server and client certificates signed by it, written as PEM files.

Tests use it to run real servers under TLS and mTLS; `scripts/dev-secrets` uses `write_dev_secrets` for
`make up`, so the compose stack runs on certificates made the way the tests prove work.
ECDSA P-256 keys: quick to generate and accepted by every gRPC implementation.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=825)


@dataclass(frozen=True)
class CertifiedKey:
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class CertificateAuthority:
    cert_file: Path
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def issue(
        self, directory: Path, name: str, *, hosts: tuple[str, ...] = (), client: bool = False
    ) -> CertifiedKey:
        """A leaf certificate for `hosts` (DNS names or IP addresses), for servers or clients."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        return CertifiedKey(
            cert_file=_write(directory / f"{name}.pem", certificate.public_bytes(serialization.Encoding.PEM)),
            key_file=_write(directory / f"{name}-key.pem", _private_pem(key), private=True),
        )


def create_ca(directory: Path, name: str = "Tessera test CA") -> CertificateAuthority:
    """A self-signed CA whose certificate is written to `directory/ca.pem`."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file = _write(directory / "ca.pem", certificate.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(cert_file=cert_file, certificate=certificate, key=key)


@dataclass(frozen=True)
class TlsFiles:
    """What a test needs for TLS and mTLS on localhost: the CA, a server and a client certificate."""

    ca_file: Path
    server: CertifiedKey
    client: CertifiedKey
    # A client certificate from a CA the server does not trust.
    stranger: CertifiedKey


def localhost_tls_files(directory: Path) -> TlsFiles:
    ca = create_ca(directory / "ca")
    other_ca = create_ca(directory / "other-ca", name="Someone else's CA")
    return TlsFiles(
        ca_file=ca.cert_file,
        server=ca.issue(directory, "server", hosts=("localhost", "127.0.0.1")),
        client=ca.issue(directory, "client", client=True),
        stranger=other_ca.issue(directory, "stranger", client=True),
    )


# What `write_dev_secrets` creates, by file name; docker-compose.yml mounts them under /run/secrets/tessera.
DEV_SECRET_FILES = (
    "ca.pem",
    "auth.pem",
    "auth-key.pem",
    "data.pem",
    "data-key.pem",
    "data-client.pem",
    "data-client-key.pem",
    "client.pem",
    "client-key.pem",
    "auth-signing-key.pem",
    "page-token-key",
)
# Keys production refuses to read when group or others can (the services run as their owner).
OWNER_ONLY_SECRET_FILES = ("auth-signing-key.pem", "page-token-key")


def write_dev_secrets(directory: Path) -> list[Path]:
    """A development CA, server certificates for the compose hosts `auth` and `data` (and localhost), a
    client certificate for the data service's link to auth, one for people and health checks, and an
    Ed25519 signing key. Never overwrites: an existing set is kept as it is."""
    paths = [directory / name for name in DEV_SECRET_FILES]
    if all(path.exists() for path in paths):
        return paths
    # The CA's key is never written: nothing can be signed with it once this function returns.
    ca = create_ca(directory, name="Tessera development CA")
    ca.issue(directory, "auth", hosts=("auth", "localhost", "127.0.0.1"))
    ca.issue(directory, "data", hosts=("data", "localhost", "127.0.0.1"))
    ca.issue(directory, "data-client", client=True)
    ca.issue(directory, "client", client=True)
    signing_key = Ed25519PrivateKey.generate()
    _write(directory / "auth-signing-key.pem", _private_pem(signing_key))
    _write(directory / "page-token-key", secrets.token_hex(32).encode())
    # The TLS files are world-readable (development secrets only, never to be reused elsewhere); the
    # token keys are owner-only, and the containers run as their owner (docker-compose.yml).
    for path in paths:
        path.chmod(0o600 if path.name in OWNER_ONLY_SECRET_FILES else 0o644)
    return paths


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _private_pem(key: ec.EllipticCurvePrivateKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if private:
        path.chmod(0o600)
    return path
