"""`python -m shared.healthcheck ADDRESS`: exit 0 when the server's gRPC health says SERVING, else 1.

Meant for container health checks (docker compose, Kubernetes exec probes), which need a command rather
than a gRPC client. TLS and mTLS work with the same files the services use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.tls import TlsConfigurationError, channel_credentials


def parser() -> argparse.ArgumentParser:
    """The command line, also used by tests to check the compose file's health-check commands."""
    arguments = argparse.ArgumentParser(
        prog="python -m shared.healthcheck", description="Ask a gRPC server whether it is SERVING."
    )
    arguments.add_argument("address", help="host:port of the server")
    arguments.add_argument("--service", default="", help='service name to ask about ("" = the whole server)')
    arguments.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for an answer")
    arguments.add_argument(
        "--tls-ca-file", type=Path, help="CA that signed the server's certificate (enables TLS)"
    )
    arguments.add_argument(
        "--tls-cert-file", type=Path, help="client certificate, for servers requiring mTLS"
    )
    arguments.add_argument("--tls-key-file", type=Path, help="key of the client certificate")
    arguments.add_argument(
        "--tls-server-name", help="name to expect in the server's certificate, when it differs from ADDRESS"
    )
    return arguments


def check(args: argparse.Namespace) -> int:
    """Exit status: 0 SERVING, 1 anything else (NOT_SERVING, unreachable, TLS refused, timeout)."""
    if args.tls_ca_file is None:
        if args.tls_cert_file is not None:
            print("unhealthy: --tls-cert-file needs --tls-ca-file", file=sys.stderr)
            return 1
        channel = grpc.insecure_channel(args.address)
    else:
        options = []
        if args.tls_server_name:
            options.append(("grpc.ssl_target_name_override", args.tls_server_name))
        try:
            credentials = channel_credentials(args.tls_ca_file, args.tls_cert_file, args.tls_key_file)
        except (OSError, TlsConfigurationError) as exc:
            print(f"unhealthy: {exc}", file=sys.stderr)
            return 1
        channel = grpc.secure_channel(args.address, credentials, options=options)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
        except grpc.RpcError as exc:
            print(f"unhealthy: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        print(f"unhealthy: {status}", file=sys.stderr)
        return 1
    print(status)
    return 0


def main(argv: list[str] | None = None) -> int:
    return check(parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
