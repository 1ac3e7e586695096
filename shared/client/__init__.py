"""The Tessera Python client library: `from shared.client import AuthClient, InventoryClient, ...`.

Async (grpc.aio) clients for both services with the same outbound behaviour the services use among
themselves: an `x-request-id` on every call, a deadline on every call, bearer tokens from a token source
that refreshes them before they expire (and once more when a server refuses one), retries of
UNAVAILABLE through the channel's service config, keepalive, TLS / mTLS, and typed errors that carry the
`google.rpc.Status` details. See the "Python client" section of README.md.
"""

from tessera.auth.v1 import auth_pb2
from tessera.inventory.v1 import inventory_pb2

from shared.client.auth import AuthClient
from shared.client.channel import (
    ChannelSettings,
    Keepalive,
    RetryPolicy,
    TlsOptions,
    create_channel,
    service_config,
)
from shared.client.errors import (
    AbortedError,
    AlreadyExistsError,
    CancelledError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    PreconditionViolation,
    ResourceExhaustedError,
    TesseraError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    UnknownError,
    error_from_rpc_error,
)
from shared.client.interceptors import (
    BearerTokenInterceptor,
    DeadlineInterceptor,
    RequestIdInterceptor,
    TokenSource,
    outbound_interceptors,
)
from shared.client.inventory import InventoryClient
from shared.client.tokens import (
    ClientCredentialsTokenSource,
    PasswordTokenSource,
    RefreshingTokenSource,
    StaticTokenSource,
)

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "AuthClient",
    "BearerTokenInterceptor",
    "CancelledError",
    "ChannelSettings",
    "ClientCredentialsTokenSource",
    "DataLossError",
    "DeadlineExceededError",
    "DeadlineInterceptor",
    "FailedPreconditionError",
    "FieldViolation",
    "InternalError",
    "InvalidArgumentError",
    "InventoryClient",
    "Keepalive",
    "NotFoundError",
    "OutOfRangeError",
    "PasswordTokenSource",
    "PermissionDeniedError",
    "PreconditionViolation",
    "RefreshingTokenSource",
    "RequestIdInterceptor",
    "ResourceExhaustedError",
    "RetryPolicy",
    "StaticTokenSource",
    "TesseraError",
    "TlsOptions",
    "TokenSource",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "auth_pb2",
    "create_channel",
    "error_from_rpc_error",
    "inventory_pb2",
    "outbound_interceptors",
    "service_config",
]
