"""Wrapping the behaviour of a grpc.aio method handler, whatever its streaming kind."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

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
