"""Calling any RPC by its descriptor, the way a generic client (grpcurl) would."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from tests.support.status import details_of


def methods_of(*services: ServiceDescriptor) -> list[MethodDescriptor]:
    return [method for service in services for method in service.methods]


def method_path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def unary_call(channel: grpc.aio.Channel, method: MethodDescriptor) -> Any:
    """A callable for `method` that sends an empty request, whatever its types."""
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    path = method_path(method)
    multicallable = channel.unary_unary(
        path,
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )

    async def call(metadata: tuple[tuple[str, str], ...] = (), deadline_seconds: float = 10.0) -> Any:
        return await multicallable(request_class(), metadata=metadata, timeout=deadline_seconds)

    return call


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def outcome(
    channel: grpc.aio.Channel, method: MethodDescriptor, metadata: tuple[tuple[str, str], ...] = ()
) -> tuple[grpc.StatusCode, str | None]:
    """The status of an empty call of `method`, and the `ErrorInfo.reason` when it failed."""
    try:
        await unary_call(channel, method)(metadata)
    except grpc.aio.AioRpcError as error:
        return error.code(), details_of(error).reason
    return grpc.StatusCode.OK, None
