"""A real gRPC client, for what h2load cannot tell: did the call succeed, and how big is its answer."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from tessera.auth.v1 import auth_pb2

from bench.h2load import Target, VerificationFailed

TOKEN_METHOD = "/tessera.auth.v1.AuthService/Token"  # noqa: S105 - a method path, not a secret
GET_JWKS_METHOD = "/tessera.auth.v1.AuthService/GetJwks"
REGISTER_METHOD = "/tessera.auth.v1.AuthService/Register"


def _identity(payload: bytes) -> bytes:
    return payload


async def call_raw(target: Target, *, timeout_s: float = 30.0) -> bytes:
    """Send `target`'s request exactly as h2load will and return the serialized response.

    Raises `VerificationFailed` with the status and message when the call fails.
    """
    metadata = (("authorization", f"Bearer {target.token}"),) if target.token else None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{target.port}") as channel:
        method = channel.unary_unary(
            target.method, request_serializer=_identity, response_deserializer=_identity
        )
        try:
            response: bytes = await method(target.request, metadata=metadata, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise VerificationFailed(
                f"{target.method} answered {error.code().name}: {error.details()}"
            ) from error
    return response


async def response_sizes(target: Target, calls: int = 3) -> list[int]:
    """Sizes of a few real responses: one size means h2load's byte count can be checked exactly."""
    return [len(await call_raw(target)) for _ in range(calls)]


# How much a response with fresh timestamps may differ in size from a sample: two `Timestamp`s whose
# `nanos` varint takes 0 to 5 bytes (plus its tag), and the length prefixes that grow with them.
TIMESTAMP_SLACK_BYTES = 14


def size_expectation(sizes: Sequence[int], *, varying: bool = False) -> int | tuple[int, int]:
    """The exact size when every sample had the same one and the answer does not vary by design;
    otherwise the range seen, widened by what timestamps can add or take away."""
    if len(set(sizes)) == 1 and not varying:
        return sizes[0]
    return (min(sizes) - TIMESTAMP_SLACK_BYTES, max(sizes) + TIMESTAMP_SLACK_BYTES)


def password_grant(username: str, password: str, scope: str = "") -> bytes:
    """The serialized `TokenRequest` for a password grant."""
    return auth_pb2.TokenRequest(
        password=auth_pb2.PasswordGrant(username=username, password=password), scope=scope
    ).SerializeToString()


def registration(email: str, password: str) -> bytes:
    """The serialized `RegisterRequest` of a new customer."""
    return auth_pb2.RegisterRequest(
        email=email, password=password, display_name=email.split("@", maxsplit=1)[0]
    ).SerializeToString()


async def access_token(auth_port: int, username: str, password: str) -> str:
    """Log in with the password grant, as a user of the services would."""
    raw = await call_raw(
        Target(port=auth_port, method=TOKEN_METHOD, request=password_grant(username, password))
    )
    return str(auth_pb2.TokenResponse.FromString(raw).access_token)
