"""Settings: SPEC defaults in development; production refuses every insecure default, by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import AuthSettings, DataSettings


def test_development_defaults_match_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTH_LISTEN", "DATA_LISTEN", "TESSERA_ENV", "AUTH_ISSUER", "AUTH_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    auth, data = AuthSettings(), DataSettings()
    assert (auth.listen, data.listen) == ("127.0.0.1:50051", "127.0.0.1:50052")
    assert (auth.metrics_port, data.metrics_port) == (9101, 9102)
    assert auth.database_url == "sqlite+aiosqlite:///./var/auth.db"
    assert data.database_url == "sqlite+aiosqlite:///./var/data.db"
    assert (auth.access_token_ttl, auth.refresh_token_ttl) == (900, 2_592_000)
    assert data.auth_target == "127.0.0.1:50051"
    assert (data.issuer, data.audience) == ("tessera-auth", "tessera-inventory")
    assert auth.effective_log_format == "console"


def test_data_service_trusts_the_issuer_and_audience_named_by_auth_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTH_ISSUER", "https://issuer.example")
    monkeypatch.setenv("AUTH_AUDIENCE", "inventory-prod")
    settings = DataSettings()
    assert (settings.issuer, settings.audience) == ("https://issuer.example", "inventory-prod")


def test_production_refuses_each_insecure_default_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_ENV", "production")
    with pytest.raises(ValueError, match="refuses insecure defaults") as auth_error:
        AuthSettings()
    message = str(auth_error.value)
    for name in ("AUTH_DATABASE_URL", "AUTH_TLS_CERT_FILE", "AUTH_SIGNING_KEY_FILE"):
        assert name in message
    with pytest.raises(ValueError, match="refuses insecure defaults") as data_error:
        DataSettings()
    for name in ("DATA_DATABASE_URL", "DATA_TLS_CERT_FILE", "DATA_AUTH_TLS_CA_FILE"):
        assert name in str(data_error.value)


def test_production_starts_when_everything_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TESSERA_ENV", "production")
    monkeypatch.setenv("AUTH_DATABASE_URL", "postgresql+asyncpg://auth@db/auth")
    monkeypatch.setenv("AUTH_TLS_CERT_FILE", str(tmp_path / "cert.pem"))
    monkeypatch.setenv("AUTH_TLS_KEY_FILE", str(tmp_path / "key.pem"))
    monkeypatch.setenv("AUTH_SIGNING_KEY_FILE", str(tmp_path / "signing.pem"))
    settings = AuthSettings()
    assert settings.is_production
    assert settings.effective_log_format == "json"


def test_the_cli_says_what_is_insecure_and_exits_2(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "tessera-auth"
    result = subprocess.run(
        [str(script), "serve"],
        env={"TESSERA_ENV": "production", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "AUTH_SIGNING_KEY_FILE" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var").exists(), "nothing may be created before the settings are accepted"
