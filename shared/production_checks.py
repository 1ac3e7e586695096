"""Checks of settings that production refuses beyond the development defaults: a key file others can
read, a certificate outside its validity, lifetimes and intervals beyond sane bounds, a database
connection that refuses TLS. Each problem names the setting and the limit (the README lists them).
"""

from __future__ import annotations

import ipaddress
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509

# Production bounds (README, "Production settings").
MAX_ACCESS_TOKEN_TTL_SECONDS = 3600
MAX_REFRESH_TOKEN_TTL_SECONDS = 90 * 86400
JWKS_REFRESH_BOUNDS_SECONDS = (1.0, 3600.0)
JWKS_MIN_REFETCH_BOUNDS_SECONDS = (1.0, 300.0)
# libpq's sslmode values (and asyncpg's `ssl=` spellings) that send the connection in clear text.
_PLAINTEXT_SSL_MODES = frozenset({"disable", "allow", "false", "0", "off", "no"})
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def private_key_file_problem(setting: str, path: Path | None) -> str | None:
    """A key file that group or others may read or write (it must be at most 0600)."""
    if path is None:
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None  # A missing file is reported where it is read, with the reason.
    if mode & 0o077:
        return f"{setting} {path} has mode {mode:04o}: group/others may access it (at most 0600)"
    return None


def certificate_validity_problem(setting: str, path: Path | None, now: datetime | None = None) -> str | None:
    """A certificate (or any certificate of a chain) that is expired or not yet valid."""
    if path is None:
        return None
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError):
        return None  # Unreadable or not PEM: the TLS set-up reports it when the server starts.
    moment = now or datetime.now(UTC)
    for certificate in certificates:
        subject = certificate.subject.rfc4514_string() or "(no subject)"
        if certificate.not_valid_after_utc < moment:
            return (
                f"{setting} {path}: certificate {subject} expired on "
                f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC (it must be valid now)"
            )
        if certificate.not_valid_before_utc > moment:
            return (
                f"{setting} {path}: certificate {subject} is not valid before "
                f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (it must be valid now)"
            )
    return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def at_most(setting: str, value: float, limit: float, unit: str = "s") -> str | None:
    if value > limit:
        return f"{setting}={_number(value)} is above the production maximum of {_number(limit)} {unit}"
    return None


def within(setting: str, value: float, bounds: tuple[float, float], unit: str = "s") -> str | None:
    low, high = bounds
    if not low <= value <= high:
        return (
            f"{setting}={_number(value)} is outside the production bounds "
            f"{_number(low)} to {_number(high)} {unit}"
        )
    return None


def _is_loopback(host: str) -> bool:
    if not host or host.startswith("/") or host.lower() in _LOOPBACK_NAMES:
        return True  # A Unix socket or the local machine: nothing crosses a network.
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _hosts(url_hosts: Iterable[str]) -> list[str]:
    # A multi-host URL (`?host=a:5432&host=b:5432`) names its hosts in the query, with ports.
    hosts = []
    for entry in url_hosts:
        for part in entry.split(","):
            host = part.rsplit(":", 1)[0] if part.count(":") == 1 else part
            hosts.append(host)
    return hosts


def database_tls_problem(setting: str, url: str) -> str | None:
    """A PostgreSQL URL that turns TLS off towards a host that is not this machine."""
    try:
        parsed = urlsplit(url)
        hostname = parsed.hostname or ""
    except ValueError:
        return None
    if not parsed.scheme.startswith("postgresql"):
        return None
    query = {key.lower(): values for key, values in parse_qs(parsed.query).items()}
    modes = {value.lower() for key in ("sslmode", "ssl") for value in query.get(key, [])}
    plaintext = modes & _PLAINTEXT_SSL_MODES
    if not plaintext:
        return None
    remote = [host for host in _hosts([hostname, *query.get("host", [])]) if not _is_loopback(host)]
    if not remote:
        return None
    return (
        f"{setting} turns TLS off (sslmode={sorted(plaintext)[0]}) towards {', '.join(remote)}: "
        "production needs sslmode=require (or stronger) for a host that is not loopback"
    )
