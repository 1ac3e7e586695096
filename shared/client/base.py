"""What both service clients share: the channel they own, the token source they use, error translation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from shared.access import access_rules
from shared.client.channel import ChannelSettings, create_channel
from shared.client.errors import error_from_rpc_error
from shared.client.interceptors import (
    DEFAULT_TIMEOUT_SECONDS,
    MAX_INHERITED_TIMEOUT_SECONDS,
    TokenSource,
    outbound_interceptors,
)

Response = TypeVar("Response")


def public_methods(service: ServiceDescriptor) -> frozenset[str]:
    """Methods the proto declares public: no token is fetched or sent for them."""
    return frozenset(path for path, rule in access_rules(service).items() if rule.public)


class ServiceClient:
    """A channel to one Tessera service with request ids, deadlines, retries and bearer tokens."""

    SERVICE: ServiceDescriptor
    # The generated stub class; generated `_pb2_grpc` modules carry no annotations, hence Any.
    STUB: Callable[[grpc.aio.Channel], Any]

    def __init__(
        self,
        target: str,
        *,
        tokens: TokenSource | None = None,
        settings: ChannelSettings | None = None,
        default_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_inherited_timeout_seconds: float = MAX_INHERITED_TIMEOUT_SECONDS,
    ) -> None:
        self.tokens = tokens
        self.channel = create_channel(
            target,
            services=[self.SERVICE.full_name],
            settings=settings,
            interceptors=outbound_interceptors(
                tokens=lambda: self.tokens,
                public_methods=public_methods(self.SERVICE),
                default_timeout_seconds=default_timeout_seconds,
                max_inherited_timeout_seconds=max_inherited_timeout_seconds,
            ),
        )
        self.stub = type(self).STUB(self.channel)

    async def _call(
        self,
        method: Callable[..., Awaitable[Response]],
        request: Any,
        timeout: float | None,
    ) -> Response:
        try:
            return await method(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc_error(exc) from exc

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
