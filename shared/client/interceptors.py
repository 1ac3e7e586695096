"""Client interceptors for grpc.aio channels: request id, deadline and bearer token on every call.

They serve the client library and the services' own outbound calls alike. Inside an RPC (a server
handler calling another service) they pass on the running RPC's `x-request-id` and what is left of its
deadline, so one request can be followed through both services' logs and never outlives its caller.

grpc.aio runs a call's interceptors in a task created by the call itself, which copies the caller's
context: the request-context contextvars of the running RPC are visible here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterable, Callable, Collection
from typing import Any, Protocol

import grpc
from grpc.aio import ClientCallDetails, Metadata

from shared.client.errors import error_info_of
from shared.deadlines import remaining_time
from shared.interceptors.request_context import REQUEST_ID_KEY, current_request_id

AUTHORIZATION_KEY = "authorization"
# What an RPC inherits from its caller is capped: a caller with no deadline (or a very long one) must
# not let an outbound call hang for that long.
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_INHERITED_TIMEOUT_SECONDS = 30.0


class TokenSource(Protocol):
    """Where access tokens come from (see shared/client/tokens.py)."""

    async def token(self) -> str:
        """A currently valid access token, obtained or refreshed as needed."""
        ...

    def invalidate(self, token: str) -> None:
        """The server refused `token`; the next `token()` must not return it again."""
        ...


def _method_name(details: ClientCallDetails) -> str:
    method = details.method
    return method.decode() if isinstance(method, bytes) else str(method)


def _has_key(metadata: Metadata | None, key: str) -> bool:
    return metadata is not None and key in metadata


def _with_metadata(details: ClientCallDetails, key: str, value: str) -> ClientCallDetails:
    metadata = Metadata(*(details.metadata or ()))
    metadata[key] = value
    return ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


def _with_timeout(details: ClientCallDetails, timeout: float | None) -> ClientCallDetails:
    return ClientCallDetails(
        details.method, timeout, details.metadata, details.credentials, details.wait_for_ready
    )


class _ClientInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.aio.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.aio.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.aio.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    """One rewrite of the call details, applied to every kind of call."""

    async def prepare(self, details: ClientCallDetails) -> ClientCallDetails:
        raise NotImplementedError

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(await self.prepare(client_call_details), request)

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(await self.prepare(client_call_details), request)

    async def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: ClientCallDetails,
        request_iterator: AsyncIterable[Any],
    ) -> Any:
        return await continuation(await self.prepare(client_call_details), request_iterator)

    async def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: ClientCallDetails,
        request_iterator: AsyncIterable[Any],
    ) -> Any:
        return await continuation(await self.prepare(client_call_details), request_iterator)


class RequestIdInterceptor(_ClientInterceptor):
    """Sends `x-request-id`: the caller's own if it set one, the running RPC's, or a new one."""

    async def prepare(self, details: ClientCallDetails) -> ClientCallDetails:
        if _has_key(details.metadata, REQUEST_ID_KEY):
            return details
        return _with_metadata(details, REQUEST_ID_KEY, current_request_id() or uuid.uuid4().hex)


def outbound_timeout(
    explicit: float | None,
    inherited: float | None,
    *,
    default: float = DEFAULT_TIMEOUT_SECONDS,
    maximum: float = MAX_INHERITED_TIMEOUT_SECONDS,
) -> float:
    """The timeout of an outbound call.

    An explicit per-call timeout is kept, but never outlives the running RPC's deadline; without one the
    call gets what is left of the running RPC's deadline, at most `maximum`; outside an RPC, `default`.
    """
    if explicit is not None:
        return explicit if inherited is None else min(explicit, max(inherited, 0.0))
    if inherited is not None:
        return min(max(inherited, 0.0), maximum)
    return default


class DeadlineInterceptor(_ClientInterceptor):
    """Gives every call a deadline; see `outbound_timeout`."""

    def __init__(
        self,
        *,
        default_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_inherited_seconds: float = MAX_INHERITED_TIMEOUT_SECONDS,
    ) -> None:
        self._default = default_seconds
        self._maximum = max_inherited_seconds

    async def prepare(self, details: ClientCallDetails) -> ClientCallDetails:
        timeout = outbound_timeout(
            details.timeout, remaining_time(), default=self._default, maximum=self._maximum
        )
        return _with_timeout(details, timeout)


def _is_invalid_token(code: grpc.StatusCode, trailing_metadata: Any) -> bool:
    if code != grpc.StatusCode.UNAUTHENTICATED:
        return False
    info = error_info_of(trailing_metadata)
    # Only the bearer check's own refusal is worth a new token; a failed password check is not.
    return info is None or info.reason == "invalid_token"


class BearerTokenInterceptor(_ClientInterceptor):
    """Attaches `authorization: Bearer …` from a token source to every method that is not public.

    When a unary call is refused because the token is invalid (expired early, revoked, signed by a key
    the server has not learnt yet), the token source is told and the call is sent once more with a new
    token: the refusal happened before any handler ran, so repeating the call is safe.
    """

    def __init__(
        self, tokens: Callable[[], TokenSource | None], *, public_methods: Collection[str] = ()
    ) -> None:
        # A provider rather than a source: a client may get its token source after its channel exists
        # (a password source is built on the very AuthClient it then serves).
        self._source = tokens
        self._public_methods = frozenset(public_methods)

    async def _authorize(self, details: ClientCallDetails) -> tuple[ClientCallDetails, str | None]:
        source = self._source()
        if (
            source is None
            or _method_name(details) in self._public_methods
            or _has_key(details.metadata, AUTHORIZATION_KEY)
        ):
            return details, None
        token = await source.token()
        return _with_metadata(details, AUTHORIZATION_KEY, f"Bearer {token}"), token

    async def prepare(self, details: ClientCallDetails) -> ClientCallDetails:
        prepared, _ = await self._authorize(details)
        return prepared

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: ClientCallDetails, request: Any
    ) -> Any:
        started = time.monotonic()
        prepared, token = await self._authorize(client_call_details)
        call = await continuation(prepared, request)
        if token is None:
            return call
        code = await call.code()
        if not _is_invalid_token(code, await call.trailing_metadata()):
            return call
        source = self._source()
        assert source is not None  # a token was attached, so there is a source
        source.invalidate(token)
        retried, _ = await self._authorize(client_call_details)
        if retried.timeout is not None:
            # The second attempt shares the first one's deadline rather than starting a new one.
            retried = _with_timeout(retried, max(retried.timeout - (time.monotonic() - started), 0.0))
        return await continuation(retried, request)


def outbound_interceptors(
    *,
    tokens: Callable[[], TokenSource | None] | None = None,
    public_methods: Collection[str] = (),
    default_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    max_inherited_timeout_seconds: float = MAX_INHERITED_TIMEOUT_SECONDS,
) -> list[grpc.aio.ClientInterceptor]:
    """The interceptors every Tessera client channel carries, in order."""
    interceptors: list[grpc.aio.ClientInterceptor] = [
        RequestIdInterceptor(),
        DeadlineInterceptor(
            default_seconds=default_timeout_seconds, max_inherited_seconds=max_inherited_timeout_seconds
        ),
    ]
    if tokens is not None:
        interceptors.append(BearerTokenInterceptor(tokens, public_methods=public_methods))
    return interceptors
