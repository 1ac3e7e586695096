"""Settings from the environment (SPEC §1), one class per service.

Development defaults make `make run` work on a fresh machine; `TESSERA_ENV=production` refuses every
default that is only safe on a developer's laptop and names each one.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import production_checks as checks


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class InsecureSettingsError(ValueError):
    """Production was asked to start with defaults that are only safe in development."""


VAR_DIR = Path("var")
# How often the data service asks its read replica how far behind it is (shared/replicas.py).
REPLICA_LAG_PROBE_INTERVAL_SECONDS = 0.5
# An HMAC-SHA256 key shorter than its output would weaken it (RFC 2104 section 3).
PAGE_TOKEN_KEY_MIN_BYTES = 32

# OWASP Password Storage Cheat Sheet: argon2id configurations of equal strength, as
# (memory in KiB, iterations) at parallelism 1. A configuration is OWASP-grade when it reaches one row.
OWASP_ARGON2ID_MINIMUMS: tuple[tuple[int, int], ...] = (
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
)


def argon2_meets_owasp_minimum(memory_kib: int, time_cost: int) -> bool:
    return any(
        memory_kib >= memory and time_cost >= iterations for memory, iterations in OWASP_ARGON2ID_MINIMUMS
    )


def _env_field(default: object, *names: str) -> object:
    """A field read from exactly the env names the SPEC gives, whatever the class prefix."""
    return Field(default=default, validation_alias=AliasChoices(*names))


class ServiceSettings(BaseSettings):
    """What every Tessera server needs; subclasses set the env prefix (`AUTH_` / `DATA_`)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)
    # Stamped on every log line.
    service_name: ClassVar[str] = "tessera"

    environment: Environment = Field(
        default=Environment.DEVELOPMENT, validation_alias=AliasChoices("TESSERA_ENV")
    )
    listen: str
    database_url: str
    metrics_port: int = Field(ge=0, le=65535)
    log_format: Literal["console", "json"] | None = None
    log_level: str = "INFO"
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    # In-flight RPCs get this long to finish after SIGTERM.
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)
    # After SIGTERM, health says NOT_SERVING (and new calls are refused) at least this long, so that
    # load balancers polling health see it before the server goes away (bounded by the grace period).
    shutdown_drain_seconds: float = Field(default=1.0, ge=0)
    # Beyond this many concurrent RPCs the server answers RESOURCE_EXHAUSTED instead of queueing.
    max_concurrent_rpcs: int = Field(default=1000, ge=1)
    # Long-lived streams (health Watch, reflection, streaming RPCs) have a budget of their own: they
    # cannot take the capacity of unary calls (`max_concurrent_rpcs`), nor exceed this.
    max_concurrent_streams: int = Field(default=100, ge=1)
    # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: what one connection may have open at once (any call).
    max_streams_per_connection: int = Field(default=100, ge=1)
    # A connection is closed gracefully (GOAWAY) after this long (±10 %), and what still runs on it gets
    # the grace period: clients reconnect, so no stream lives longer, and connections spread over
    # replicas that were added since.
    max_connection_age_seconds: float = Field(default=1800.0, gt=0)
    max_connection_age_grace_seconds: float = Field(default=30.0, gt=0)
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    # How long an RPC may wait for a pooled connection before it answers UNAVAILABLE.
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    # The health probe asks the database `SELECT 1` this often, and gives it this long to answer.
    db_health_interval_seconds: float = Field(default=5.0, gt=0)
    db_health_timeout_seconds: float = Field(default=2.0, gt=0)

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def effective_log_format(self) -> Literal["console", "json"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.is_production else "console"

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None

    def insecure_defaults(self) -> list[str]:
        """Names and reasons of every setting that production must not run with."""
        prefix = self.model_config.get("env_prefix", "")
        problems = []
        if self.database_url.startswith("sqlite"):
            problems.append(f"{prefix}DATABASE_URL is the embedded SQLite default; use postgresql+asyncpg://")
        if not self.tls_enabled:
            problems.append(
                f"{prefix}TLS_CERT_FILE/{prefix}TLS_KEY_FILE are unset: the server would be plaintext"
            )
        return problems + self.unsafe_production_values()

    def unsafe_production_values(self) -> list[str]:
        """Values that are set but beyond what production accepts (README, "Production settings")."""
        prefix = self.model_config.get("env_prefix", "")
        found = [
            checks.certificate_validity_problem(f"{prefix}TLS_CERT_FILE", self.tls_cert_file),
            checks.database_tls_problem(f"{prefix}DATABASE_URL", self.database_url),
        ]
        return [problem for problem in found if problem is not None]

    @model_validator(mode="after")
    def _tls_files_fit_together(self) -> ServiceSettings:
        # Checked in every environment: a half-configured TLS must not silently serve plaintext.
        prefix = self.model_config.get("env_prefix", "")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(f"{prefix}TLS_CERT_FILE and {prefix}TLS_KEY_FILE must be set together")
        if self.tls_client_ca_file is not None and not self.tls_enabled:
            raise ValueError(
                f"{prefix}TLS_CLIENT_CA_FILE needs {prefix}TLS_CERT_FILE and {prefix}TLS_KEY_FILE"
            )
        return self

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> ServiceSettings:
        if self.is_production:
            problems = self.insecure_defaults()
            if problems:
                raise InsecureSettingsError(
                    "TESSERA_ENV=production refuses insecure defaults: " + "; ".join(problems)
                )
        return self


def _cores_but_one() -> int:
    return max(1, min(64, (os.cpu_count() or 2) - 1))


class AuthSettings(ServiceSettings):
    """Settings of the auth service (`AUTH_*`)."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "auth"

    listen: str = "127.0.0.1:50051"
    database_url: str = f"sqlite+aiosqlite:///./{VAR_DIR}/auth.db"
    metrics_port: int = Field(default=9101, ge=0, le=65535)
    issuer: str = "tessera-auth"
    audience: str = "tessera-inventory"
    # One or more PEM keys in one file: the first signs, all are published. Unset in development means a
    # key generated under ./var/.
    signing_key_file: Path | None = None
    access_token_ttl: int = Field(default=900, ge=30, le=86400)
    refresh_token_ttl: int = Field(default=2_592_000, ge=60)
    # argon2id cost (OWASP's 19 MiB, 2 iterations, 1 lane by default). Tests lower them; production
    # refuses anything below the OWASP minimum.
    argon2_memory_kib: int = Field(default=19_456, ge=8)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1, le=16)
    # At most this many argon2 computations run at once (each holds argon2_memory_kib); the rest queue,
    # so a login storm can neither exhaust memory nor starve the event loop. One core fewer than the
    # machine has: the event loop keeps a core of its own (bench/README.md, login storm).
    password_hash_concurrency: int = Field(default_factory=_cores_but_one, ge=1, le=64)
    # Registrations hash in a pool of their own, so that a burst of them never delays a login.
    registration_hash_concurrency: int = Field(default=1, ge=1, le=64)
    # Register calls per client address in 15 minutes (counted in the database, shared by replicas).
    registrations_per_address: int = Field(default=10, ge=1)

    def insecure_defaults(self) -> list[str]:
        problems = super().insecure_defaults()
        if self.signing_key_file is None:
            problems.append("AUTH_SIGNING_KEY_FILE is unset: a development key would sign tokens")
        if not argon2_meets_owasp_minimum(self.argon2_memory_kib, self.argon2_time_cost):
            problems.append(
                "AUTH_ARGON2_MEMORY_KIB/AUTH_ARGON2_TIME_COST are below the OWASP minimum for argon2id"
            )
        found = [
            checks.private_key_file_problem("AUTH_SIGNING_KEY_FILE", self.signing_key_file),
            checks.at_most(
                "AUTH_ACCESS_TOKEN_TTL", self.access_token_ttl, checks.MAX_ACCESS_TOKEN_TTL_SECONDS
            ),
            checks.at_most(
                "AUTH_REFRESH_TOKEN_TTL", self.refresh_token_ttl, checks.MAX_REFRESH_TOKEN_TTL_SECONDS
            ),
        ]
        return problems + [problem for problem in found if problem is not None]

    @property
    def dev_signing_key_path(self) -> Path:
        return VAR_DIR / "auth-signing-key.pem"


class DataSettings(ServiceSettings):
    """Settings of the data service (`DATA_*`, plus the token issuer and audience it trusts)."""

    model_config = SettingsConfigDict(env_prefix="DATA_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "data"

    listen: str = "127.0.0.1:50052"
    database_url: str = f"sqlite+aiosqlite:///./{VAR_DIR}/data.db"
    metrics_port: int = Field(default=9102, ge=0, le=65535)
    auth_target: str = "127.0.0.1:50051"
    auth_tls_ca_file: Path | None = None
    # The client certificate presented to the auth service when it requires mTLS.
    auth_tls_cert_file: Path | None = None
    auth_tls_key_file: Path | None = None
    issuer: str = _env_field("tessera-auth", "AUTH_ISSUER")  # type: ignore[assignment]
    audience: str = _env_field("tessera-inventory", "AUTH_AUDIENCE")  # type: ignore[assignment]
    # How often the public keys are fetched again, and the least time between two refetches that an
    # unknown `kid` may trigger.
    jwks_refresh_seconds: float = Field(default=300.0, gt=0)
    jwks_min_refetch_seconds: float = Field(default=5.0, ge=0)
    # How long start-up waits for the first key set before serving without it (see shared/jwks.py).
    jwks_startup_wait_seconds: float = Field(default=5.0, ge=0)
    # Optional standby for GetProduct/ListProducts (shared/replicas.py): used only while its replay lag is
    # at most read_replica_max_lag_seconds; a caller who wrote within read_your_writes_seconds reads
    # from the primary.
    read_replica_url: str | None = None
    read_replica_max_lag_seconds: float = Field(default=5.0, gt=0)
    read_your_writes_seconds: float = Field(default=10.0, ge=0)
    # The longest lifetime (exp - iat, seconds) an access token may claim; longer ones are refused even
    # with a valid signature. Keep it at least AUTH_ACCESS_TOKEN_TTL.
    access_token_max_ttl: int = Field(default=3600, ge=30, le=86400)
    # The HMAC key that makes page tokens tamper-evident; every replica needs the same one. At least 32
    # bytes, given inline or as a file. Unset in development means a random key per process.
    page_token_key: SecretStr | None = None
    page_token_key_file: Path | None = None

    def page_token_secret(self) -> bytes | None:
        """The configured page-token key, or None when neither setting is given."""
        if self.page_token_key is not None:
            return self.page_token_key.get_secret_value().encode("utf-8")
        if self.page_token_key_file is not None:
            return self.page_token_key_file.read_bytes().strip()
        return None

    def insecure_defaults(self) -> list[str]:
        problems = super().insecure_defaults()
        if self.auth_tls_ca_file is None:
            problems.append("DATA_AUTH_TLS_CA_FILE is unset: keys would be fetched over plaintext")
        if self.page_token_key is None and self.page_token_key_file is None:
            problems.append(
                "DATA_PAGE_TOKEN_KEY/DATA_PAGE_TOKEN_KEY_FILE are unset: replicas would not accept each"
                " other's page tokens"
            )
        found = [
            checks.private_key_file_problem("DATA_PAGE_TOKEN_KEY_FILE", self.page_token_key_file),
            checks.certificate_validity_problem("DATA_AUTH_TLS_CERT_FILE", self.auth_tls_cert_file),
            checks.within(
                "DATA_JWKS_REFRESH_SECONDS", self.jwks_refresh_seconds, checks.JWKS_REFRESH_BOUNDS_SECONDS
            ),
            checks.within(
                "DATA_JWKS_MIN_REFETCH_SECONDS",
                self.jwks_min_refetch_seconds,
                checks.JWKS_MIN_REFETCH_BOUNDS_SECONDS,
            ),
        ]
        return problems + [problem for problem in found if problem is not None]

    @model_validator(mode="after")
    def _page_token_key_is_usable(self) -> DataSettings:
        if self.page_token_key is not None and self.page_token_key_file is not None:
            raise ValueError("set DATA_PAGE_TOKEN_KEY or DATA_PAGE_TOKEN_KEY_FILE, not both")
        # The file is read when the server starts (it may be mounted only where the server runs).
        secret = self.page_token_key.get_secret_value().encode("utf-8") if self.page_token_key else None
        if secret is not None and len(secret) < PAGE_TOKEN_KEY_MIN_BYTES:
            raise ValueError(f"DATA_PAGE_TOKEN_KEY must be at least {PAGE_TOKEN_KEY_MIN_BYTES} bytes")
        return self

    @model_validator(mode="after")
    def _reads_see_own_writes(self) -> DataSettings:
        # A replica may be this far behind; a caller's reads must stay on the primary at least as long.
        staleness_bound = self.read_replica_max_lag_seconds + 2 * REPLICA_LAG_PROBE_INTERVAL_SECONDS
        if self.read_replica_url is not None and self.read_your_writes_seconds < staleness_bound:
            raise ValueError(
                f"DATA_READ_YOUR_WRITES_SECONDS must be at least {staleness_bound:g} "
                "(DATA_READ_REPLICA_MAX_LAG_SECONDS plus two lag probes), or reads could miss own writes"
            )
        return self

    @model_validator(mode="after")
    def _auth_client_certificate_complete(self) -> DataSettings:
        if (self.auth_tls_cert_file is None) != (self.auth_tls_key_file is None):
            raise ValueError("DATA_AUTH_TLS_CERT_FILE and DATA_AUTH_TLS_KEY_FILE must be set together")
        if self.auth_tls_cert_file is not None and self.auth_tls_ca_file is None:
            raise ValueError(
                "DATA_AUTH_TLS_CERT_FILE needs DATA_AUTH_TLS_CA_FILE (a client certificate needs TLS)"
            )
        return self
