"""Each RPC's access rule, read once from the `(tessera.common.v1.access)` method option."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor
from tessera.common.v1 import access_pb2

# Infrastructure services every client must reach without a token (load balancers, grpcurl).
ALWAYS_PUBLIC_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


# The stubs type extension handles too narrowly for a generic lookup; the value is an AccessRule message.
_ACCESS_EXTENSION: Any = access_pb2.access


class MissingAccessRule(RuntimeError):
    """An RPC declares no access rule; the server refuses to start rather than guess."""


@dataclass(frozen=True, slots=True)
class AccessRule:
    public: bool
    # Empty: any valid access token is enough.
    scope: str


PUBLIC = AccessRule(public=True, scope="")


def method_path(service: ServiceDescriptor, method_name: str) -> str:
    return f"/{service.full_name}/{method_name}"


def access_rules(*services: ServiceDescriptor) -> dict[str, AccessRule]:
    """`{"/pkg.Service/Method": rule}` for every method; `MissingAccessRule` if one has none."""
    rules: dict[str, AccessRule] = {}
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(_ACCESS_EXTENSION):
                raise MissingAccessRule(
                    f"{method.full_name} has no (tessera.common.v1.access) option; declare who may call it"
                )
            rule = options.Extensions[_ACCESS_EXTENSION]
            rules[method_path(service, method.name)] = AccessRule(public=rule.public, scope=rule.scope)
    return rules
