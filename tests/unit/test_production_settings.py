"""TESSERA_ENV=production refuses settings that are set but unsafe, naming the setting and the limit,
and the commands exit 2 before doing anything (< 5 s: two real CLI processes)."""

from __future__ import annotations

import datetime
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.config import AuthSettings, DataSettings, ServiceSettings

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def certificate(path: Path, not_before: datetime.datetime, not_after: datetime.datetime) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tessera-test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def private_file(path: Path, mode: int, content: bytes = b"x" * 64) -> Path:
    path.write_bytes(content)
    path.chmod(mode)
    return path


def production_env(tmp_path: Path) -> dict[str, str]:
    """A production configuration both services accept."""
    cert = certificate(tmp_path / "valid.pem", NOW - DAY, NOW + 30 * DAY)
    return {
        "TESSERA_ENV": "production",
        "AUTH_DATABASE_URL": "postgresql+asyncpg://auth@db.internal/auth?sslmode=require",
        "AUTH_TLS_CERT_FILE": str(cert),
        "AUTH_TLS_KEY_FILE": str(tmp_path / "key.pem"),
        "AUTH_SIGNING_KEY_FILE": str(private_file(tmp_path / "signing.pem", 0o600)),
        "DATA_DATABASE_URL": "postgresql+asyncpg://data@db.internal/data",
        "DATA_TLS_CERT_FILE": str(cert),
        "DATA_TLS_KEY_FILE": str(tmp_path / "key.pem"),
        "DATA_AUTH_TLS_CA_FILE": str(cert),
        "DATA_PAGE_TOKEN_KEY_FILE": str(private_file(tmp_path / "page-token-key", 0o600)),
    }


Case = Callable[[Path], dict[str, str]]
# (settings class, the change, words the refusal must contain: the setting and the limit)
CASES: dict[str, tuple[type[ServiceSettings], Case, tuple[str, ...]]] = {
    "signing key 0666": (
        AuthSettings,
        lambda d: {"AUTH_SIGNING_KEY_FILE": str(private_file(d / "open.pem", 0o666))},
        ("AUTH_SIGNING_KEY_FILE", "0666", "at most 0600"),
    ),
    "signing key 0640": (
        AuthSettings,
        lambda d: {"AUTH_SIGNING_KEY_FILE": str(private_file(d / "group.pem", 0o640))},
        ("AUTH_SIGNING_KEY_FILE", "0640", "at most 0600"),
    ),
    "page-token key 0644": (
        DataSettings,
        lambda d: {"DATA_PAGE_TOKEN_KEY_FILE": str(private_file(d / "open-key", 0o644))},
        ("DATA_PAGE_TOKEN_KEY_FILE", "0644", "at most 0600"),
    ),
    "expired certificate": (
        AuthSettings,
        lambda d: {"AUTH_TLS_CERT_FILE": str(certificate(d / "old.pem", NOW - 90 * DAY, NOW - DAY))},
        ("AUTH_TLS_CERT_FILE", "expired", "must be valid now"),
    ),
    "certificate not yet valid": (
        DataSettings,
        lambda d: {"DATA_TLS_CERT_FILE": str(certificate(d / "future.pem", NOW + DAY, NOW + 90 * DAY))},
        ("DATA_TLS_CERT_FILE", "not valid before", "must be valid now"),
    ),
    "100-year refresh tokens": (
        AuthSettings,
        lambda d: {"AUTH_REFRESH_TOKEN_TTL": str(100 * 365 * 86400)},
        ("AUTH_REFRESH_TOKEN_TTL", "maximum of 7776000"),
    ),
    "24 h access tokens": (
        AuthSettings,
        lambda d: {"AUTH_ACCESS_TOKEN_TTL": "86400"},
        ("AUTH_ACCESS_TOKEN_TTL", "maximum of 3600"),
    ),
    "database TLS off to another host": (
        DataSettings,
        lambda d: {"DATA_DATABASE_URL": "postgresql+asyncpg://data@10.0.0.7/data?sslmode=disable"},
        ("DATA_DATABASE_URL", "sslmode=disable", "10.0.0.7", "sslmode=require"),
    ),
    "database TLS off (asyncpg spelling)": (
        AuthSettings,
        lambda d: {"AUTH_DATABASE_URL": "postgresql+asyncpg://auth@db.internal/auth?ssl=false"},
        ("AUTH_DATABASE_URL", "db.internal", "sslmode=require"),
    ),
    "JWKS refreshed every 1000 days": (
        DataSettings,
        lambda d: {"DATA_JWKS_REFRESH_SECONDS": "86400000"},
        ("DATA_JWKS_REFRESH_SECONDS", "1 to 3600"),
    ),
    "JWKS refetched without pause": (
        DataSettings,
        lambda d: {"DATA_JWKS_MIN_REFETCH_SECONDS": "0"},
        ("DATA_JWKS_MIN_REFETCH_SECONDS", "1 to 300"),
    ),
}


def apply(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_the_baseline_production_configuration_is_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    apply(monkeypatch, production_env(tmp_path))
    assert AuthSettings().is_production
    assert DataSettings().is_production
    # Loopback needs no TLS: the connection never leaves the machine.
    monkeypatch.setenv("DATA_DATABASE_URL", "postgresql+asyncpg://data@127.0.0.1/data?sslmode=disable")
    assert DataSettings().is_production


@pytest.mark.parametrize("case", sorted(CASES))
def test_production_refuses_an_unsafe_value_naming_the_setting_and_the_limit(
    case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings_class, change, words = CASES[case]
    apply(monkeypatch, production_env(tmp_path))
    apply(monkeypatch, change(tmp_path))
    with pytest.raises(ValueError, match="refuses insecure") as refused:
        settings_class()
    for word in words:
        assert word in str(refused.value), (word, str(refused.value))


@pytest.mark.parametrize(
    ("command", "case"),
    [("tessera-auth", "signing key 0666"), ("tessera-data", "JWKS refetched without pause")],
)
def test_the_commands_exit_2_and_say_which_setting(command: str, case: str, tmp_path: Path) -> None:
    _, change, words = CASES[case]
    env = {**production_env(tmp_path), **change(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / command), "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.stderr


def test_production_needs_a_page_token_key_of_32_bytes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    apply(monkeypatch, production_env(tmp_path))
    monkeypatch.delenv("DATA_PAGE_TOKEN_KEY_FILE")
    with pytest.raises(ValueError, match="DATA_PAGE_TOKEN_KEY/DATA_PAGE_TOKEN_KEY_FILE are unset"):
        DataSettings()
    monkeypatch.setenv("DATA_PAGE_TOKEN_KEY", "too short")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        DataSettings()
    monkeypatch.setenv("DATA_PAGE_TOKEN_KEY", "k" * 32)
    assert DataSettings().page_token_secret() == b"k" * 32
