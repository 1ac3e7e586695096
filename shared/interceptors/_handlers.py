"""Wrapping the behaviour of a grpc.aio method handler, whatever its streaming kind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from shared.errors import FieldViolation, InvalidArgument

# An around-advice for one call: gets the handler's awaitable (unary response) or runs the stream.
UnaryAround = Callable[[Callable[[], Awaitable[Any]], grpc.aio.ServicerContext], Awaitable[Any]]
StreamAround = Callable[[Callable[[], AsyncIterator[Any]], grpc.aio.ServicerContext], AsyncIterator[Any]]


def wrap_handler(
    handler: grpc.RpcMethodHandler, unary: UnaryAround, stream: StreamAround
) -> grpc.RpcMethodHandler:
    """A handler that runs the original behaviour inside `unary` (unary response) or `stream`."""
    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await unary(lambda: inner_uu(request, context), context)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary is not None:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            return await unary(lambda: inner_su(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(
            stream_unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream is not None:
        inner_us = handler.unary_stream

        # Must itself be an async generator function: grpc.aio decides how to drive a handler by that.
        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async for item in stream(lambda: _as_async_iterator(inner_us(request, context)), context):
                yield item

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, handler.request_deserializer, handler.response_serializer
        )
    inner_ss = handler.stream_stream

    async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for item in stream(lambda: _as_async_iterator(inner_ss(requests, context)), context):
            yield item

    return grpc.stream_stream_rpc_method_handler(
        stream_stream, handler.request_deserializer, handler.response_serializer
    )


async def _as_async_iterator(result: Any) -> AsyncIterator[Any]:
    """Handlers may be async generators, or coroutines that write with `context.write()`."""
    if hasattr(result, "__aiter__"):
        async for item in result:
            yield item
    elif hasattr(result, "__await__"):
        await result
    else:
        for item in result:
            yield item


class _Undecodable:
    """Stands in for a request whose bytes are not a valid message (see `refusing_undecodable`)."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _refusal(request: _Undecodable) -> InvalidArgument:
    return InvalidArgument(
        "the request is not a valid protobuf message of this method's type",
        violations=[FieldViolation("request", request.problem)],
    )


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except DecodeError as exc:
            return _Undecodable(str(exc))

    return deserialize


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, _Undecodable):
            raise _refusal(request)
        yield request


def refusing_undecodable(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """The same handler, except that a request whose bytes do not decode raises InvalidArgument.

    grpcio decodes a request before any interceptor runs and answers a decoding failure with UNKNOWN
    and the exception's text; here the failure becomes a value the handler refuses like any bad input
    (so the interceptor around it maps it to INVALID_ARGUMENT with a BadRequest).
    """
    deserializer = _tolerant(handler.request_deserializer)
    serializer = handler.response_serializer
    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, _Undecodable):
                raise _refusal(request)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, deserializer, serializer)
    if handler.unary_stream is not None:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if isinstance(request, _Undecodable):
                raise _refusal(request)
            async for item in _as_async_iterator(inner_us(request, context)):
                yield item

        return grpc.unary_stream_rpc_method_handler(unary_stream, deserializer, serializer)
    if handler.stream_unary is not None:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            return await inner_su(_checked(requests), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, deserializer, serializer)
    inner_ss = handler.stream_stream

    async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for item in _as_async_iterator(inner_ss(_checked(requests), context)):
            yield item

    return grpc.stream_stream_rpc_method_handler(stream_stream, deserializer, serializer)
