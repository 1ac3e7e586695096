"""Server reflection under both names: `grpc.reflection.v1alpha` (what grpcio-reflection ships) and
`grpc.reflection.v1` (what newer grpcurl and buf curl ask for first). The two protocols have the same
messages under different packages, so one servicer answers both.

grpcio-reflection asks the descriptor pool for the file containing a symbol, and the pool (upb) knows
only top-level names, messages, fields and enums: `describe Service.Method` or an enum value scoped by
its enum answered NOT_FOUND (grpc/grpc#34743). `SymbolIndex` walks every file the server exposes once
and maps each symbol a client may name — services, methods, messages (nested too), fields, oneofs,
enums, enum values (under the C++ scope and under their enum), extensions — to its file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
_V1ALPHA_PACKAGE = "grpc.reflection.v1alpha"
_V1_PACKAGE = "grpc.reflection.v1"


def _register_v1_descriptor() -> None:
    """Add the v1 file to the default pool so that clients can also *describe* the v1 service."""
    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(V1_SERVICE_NAME)
        return
    except KeyError:
        pass
    file_proto = descriptor_pb2.FileDescriptorProto.FromString(v1alpha_pb2.DESCRIPTOR.serialized_pb)
    file_proto.name = "grpc/reflection/v1/reflection.proto"
    file_proto.package = _V1_PACKAGE
    file_proto.ClearField("options")
    old, new = f".{_V1ALPHA_PACKAGE}.", f".{_V1_PACKAGE}."
    for message in file_proto.message_type:
        for field in message.field:
            if field.type_name:
                field.type_name = field.type_name.replace(old, new)
    for service in file_proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old, new)
            method.output_type = method.output_type.replace(old, new)
    pool.Add(file_proto)


class SymbolIndex:
    """Fully qualified symbol name → the file that defines it, over some files and their imports."""

    def __init__(self, files: Iterable[descriptor.FileDescriptor]) -> None:
        self._files: dict[str, descriptor.FileDescriptor] = {}
        for file in files:
            self._add_with_dependencies(file)

    def file_of(self, symbol: str) -> descriptor.FileDescriptor | None:
        return self._files.get(symbol)

    def __contains__(self, symbol: str) -> bool:
        return symbol in self._files

    def _add_with_dependencies(self, file: descriptor.FileDescriptor) -> None:
        pending = [file]
        seen: set[str] = set()
        while pending:
            current = pending.pop()
            if current.name in seen:
                continue
            seen.add(current.name)
            self._add_file(current)
            pending.extend(current.dependencies)

    def _add_file(self, file: descriptor.FileDescriptor) -> None:
        for service in file.services_by_name.values():
            self._files[service.full_name] = file
            for method in service.methods:
                self._files[method.full_name] = file
        for message in file.message_types_by_name.values():
            self._add_message(message, file)
        for enum in file.enum_types_by_name.values():
            self._add_enum(enum, file)
        for extension in file.extensions_by_name.values():
            self._files[extension.full_name] = file

    def _add_message(self, message: descriptor.Descriptor, file: descriptor.FileDescriptor) -> None:
        self._files[message.full_name] = file
        for field in (*message.fields, *message.extensions):
            self._files[field.full_name] = file
        for oneof in message.oneofs:
            self._files[oneof.full_name] = file
        for nested in message.nested_types:
            self._add_message(nested, file)
        for enum in message.enum_types:
            self._add_enum(enum, file)

    def _add_enum(self, enum: descriptor.EnumDescriptor, file: descriptor.FileDescriptor) -> None:
        self._files[enum.full_name] = file
        # protobuf scopes enum values beside their enum (C++ rules); clients also ask for them inside it.
        scope = enum.full_name.rpartition(".")[0]
        for value in enum.values:
            self._files[f"{scope}.{value.name}" if scope else value.name] = file
            self._files[f"{enum.full_name}.{value.name}"] = file


class ReflectionServicer(reflection.aio.ReflectionServicer):  # type: ignore[misc]
    """grpcio-reflection's servicer, resolving symbols through a `SymbolIndex` of the served files."""

    def __init__(
        self, service_names: Iterable[str], pool: descriptor_pool.DescriptorPool | None = None
    ) -> None:
        names = tuple(service_names)
        super().__init__(names, pool=pool)
        self._index = SymbolIndex(self._pool.FindServiceByName(name).file for name in names)

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        file = self._index.file_of(fully_qualified_name)
        if file is None:
            return super()._file_containing_symbol(request, fully_qualified_name)
        return self._file_by_filename(request, file.name)


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection v1alpha and v1 for `service_names` (plus reflection and health themselves)."""
    _register_v1_descriptor()
    names = (*service_names, reflection.SERVICE_NAME, V1_SERVICE_NAME)
    servicer = ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1_handler = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=v1alpha_pb2.ServerReflectionRequest.FromString,
                response_serializer=v1alpha_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1_handler,))
