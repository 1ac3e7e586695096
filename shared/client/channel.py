"""grpc.aio channels for Tessera clients: TLS / mTLS, keepalive, and retries through a service config.

Retries of UNAVAILABLE are grpc's own (`retryPolicy` in the service config, gRFC A6), not a loop of
ours: grpc retries only attempts that never reached a handler or that the server marked as retryable,
replays the same request bytes (so the `request_id` of an idempotent create stays the same), and keeps
within the call's deadline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from shared import tls

ChannelOptions = list[tuple[str, Any]]


@dataclass(frozen=True)
class TlsOptions:
    """TLS for a channel: PEM files. Without `root_certificates` the system's trust store is used.

    Give `client_certificate` and `client_key` for mutual TLS.
    """

    root_certificates: str | Path | None = None
    client_certificate: str | Path | None = None
    client_key: str | Path | None = None
    # Only for tests and odd set-ups: the name the server certificate is checked against.
    server_name_override: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        return tls.channel_credentials(self.root_certificates, self.client_certificate, self.client_key)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently UNAVAILABLE is retried (gRFC A6 `retryPolicy`)."""

    max_attempts: int = 5
    initial_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0
    backoff_multiplier: float = 2.0
    retryable_status_codes: Sequence[str] = ("UNAVAILABLE",)

    def as_json(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff_seconds}s",
            "maxBackoff": f"{self.max_backoff_seconds}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": list(self.retryable_status_codes),
        }


def service_config(services: Sequence[str], retry: RetryPolicy | None) -> str:
    """The `grpc.service_config` JSON: a retry policy for every method of `services`."""
    method_config: dict[str, Any] = {"name": [{"service": name} for name in services]}
    if retry is not None:
        method_config["retryPolicy"] = retry.as_json()
    return json.dumps({"methodConfig": [method_config]})


@dataclass(frozen=True)
class Keepalive:
    """HTTP/2 pings that find a dead connection (a vanished load balancer) before a call hangs on it.

    The interval stays above the servers' `min_ping_interval_without_data` (10 s), and pings are sent only
    while calls are in flight: Tessera servers do not permit pings on an idle connection and would answer
    them with GOAWAY (too_many_pings).
    """

    time_seconds: float = 30.0
    timeout_seconds: float = 10.0

    def options(self) -> ChannelOptions:
        return [
            ("grpc.keepalive_time_ms", int(self.time_seconds * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.timeout_seconds * 1000)),
            ("grpc.keepalive_permit_without_calls", 0),
        ]


@dataclass(frozen=True)
class ChannelSettings:
    """Everything about a client channel except its target and interceptors."""

    tls: TlsOptions | None = None
    retry: RetryPolicy | None = field(default_factory=RetryPolicy)
    keepalive: Keepalive | None = field(default_factory=Keepalive)
    # A restarted server is found again within about this long, rather than after grpc's default
    # reconnect backoff of up to two minutes.
    max_reconnect_backoff_seconds: float = 5.0
    initial_reconnect_backoff_seconds: float = 0.1
    extra_options: ChannelOptions = field(default_factory=list)


def channel_options(services: Sequence[str], settings: ChannelSettings) -> ChannelOptions:
    options: ChannelOptions = [
        ("grpc.service_config", service_config(services, settings.retry)),
        ("grpc.enable_retries", 1 if settings.retry is not None else 0),
        ("grpc.initial_reconnect_backoff_ms", int(settings.initial_reconnect_backoff_seconds * 1000)),
        ("grpc.min_reconnect_backoff_ms", int(settings.initial_reconnect_backoff_seconds * 1000)),
        ("grpc.max_reconnect_backoff_ms", int(settings.max_reconnect_backoff_seconds * 1000)),
    ]
    if settings.tls is not None and settings.tls.server_name_override:
        options.append(("grpc.ssl_target_name_override", settings.tls.server_name_override))
    if settings.keepalive is not None:
        options.extend(settings.keepalive.options())
    options.extend(settings.extra_options)
    return options


def create_channel(
    target: str,
    *,
    services: Sequence[str],
    settings: ChannelSettings | None = None,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """A grpc.aio channel to `target` with the service config for `services` (full proto names)."""
    settings = settings or ChannelSettings()
    options = channel_options(services, settings)
    if settings.tls is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=list(interceptors))
    return grpc.aio.secure_channel(
        target, settings.tls.credentials(), options=options, interceptors=list(interceptors)
    )
