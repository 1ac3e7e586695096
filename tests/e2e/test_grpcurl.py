"""Server reflection as clients use it: the real grpcurl, and raw v1 / v1alpha reflection requests.

Every symbol kind a client may name resolves on both services — including the health and reflection
services themselves — where grpcio-reflection alone answers "Symbol not found" for methods and for enum
values scoped by their enum. ~5 s (both services in this process on SQLite; grpcurl runs ~40 times).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from auth_service.app import create_server as create_auth_server
from auth_service.migrations import SCRIPT_LOCATION as AUTH_MIGRATIONS
from data_service.app import create_server as create_data_server
from data_service.migrations import SCRIPT_LOCATION as DATA_MIGRATIONS
from shared.config import AuthSettings, DataSettings
from shared.migrations import upgrade_to_head
from tests.e2e.test_servers import reflection_request
from tests.support.grpcurl import grpcurl
from tests.support.servers import running


@dataclass(frozen=True)
class Servers:
    auth: str
    data: str


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Servers]:
    """Both services in this process on SQLite (reflection does not depend on the database)."""
    auth_url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    data_url = f"sqlite+aiosqlite:///{tmp_path / 'data.db'}"
    await upgrade_to_head(AUTH_MIGRATIONS, auth_url)
    await upgrade_to_head(DATA_MIGRATIONS, data_url)
    auth = await create_auth_server(
        AuthSettings(database_url=auth_url, metrics_port=0, listen="127.0.0.1:0", signing_key_file=None)
    )
    async with running(auth) as auth_port:
        data = await create_data_server(
            DataSettings(database_url=data_url, metrics_port=0, auth_target=f"127.0.0.1:{auth_port}")
        )
        async with running(data) as data_port:
            yield Servers(auth=f"127.0.0.1:{auth_port}", data=f"127.0.0.1:{data_port}")


# (symbol, what grpcurl says it is, a line of its description that proves it found the right one); None:
# only for raw reflection requests.
SERVED_BY_BOTH = [
    ("grpc.health.v1.Health", "a service", "rpc Watch ( .grpc.health.v1.HealthCheckRequest )"),
    ("grpc.health.v1.Health.Check", "a method", "rpc Check ( .grpc.health.v1.HealthCheckRequest )"),
    ("grpc.health.v1.HealthCheckResponse", "a message", ".grpc.health.v1.HealthCheckResponse.ServingStatus"),
    ("grpc.health.v1.HealthCheckResponse.ServingStatus", "an enum", "SERVICE_UNKNOWN = 3;"),
    ("grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING", "an enum value", "SERVING = 1;"),
    # protobuf's own (C++) scope of an enum value: beside its enum. grpcurl's client library names values
    # inside their enum and cannot look this spelling up in the file it gets; other clients do.
    ("grpc.health.v1.HealthCheckResponse.SERVING", None, None),
    (
        "grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo",
        "a method",
        "rpc ServerReflectionInfo ( stream .grpc.reflection.v1alpha.ServerReflectionRequest )",
    ),
    (
        "grpc.reflection.v1.ServerReflection.ServerReflectionInfo",
        "a method",
        "rpc ServerReflectionInfo ( stream .grpc.reflection.v1.ServerReflectionRequest )",
    ),
    ("grpc.reflection.v1alpha.ServerReflectionRequest.host", "a field", "string host = 1;"),
    ("tessera.common.v1.access", "an extension", "extend .google.protobuf.MethodOptions"),
    ("tessera.common.v1.AccessRule.scope", "a field", "string scope = 2;"),
]
DATA_SYMBOLS = [
    ("tessera.inventory.v1.InventoryService", "a service", "rpc GetProduct ("),
    (
        "tessera.inventory.v1.InventoryService.GetProduct",
        "a method",
        "rpc GetProduct ( .tessera.inventory.v1.GetProductRequest )"
        " returns ( .tessera.inventory.v1.Product )",
    ),
    ("tessera.inventory.v1.Product", "a message", "string sku = 2;"),
    ("tessera.inventory.v1.CreateOrderRequest.Line", "a message", "message Line {"),
    ("tessera.inventory.v1.CreateOrderRequest.Line.quantity", "a field", "int32 quantity = 2;"),
    ("tessera.inventory.v1.Product.sku", "a field", "string sku = 2;"),
    ("tessera.inventory.v1.OrderStatus", "an enum", "ORDER_STATUS_CANCELLED = 3;"),
    ("tessera.inventory.v1.ORDER_STATUS_PLACED", None, None),
    ("tessera.inventory.v1.OrderStatus.ORDER_STATUS_PLACED", "an enum value", "ORDER_STATUS_PLACED = 1;"),
    ("google.protobuf.Timestamp.seconds", "a field", "int64 seconds = 1;"),
]
AUTH_SYMBOLS = [
    ("tessera.auth.v1.AuthService.Token", "a method", "rpc Token ( .tessera.auth.v1.TokenRequest )"),
    ("tessera.auth.v1.TokenRequest.grant", "a one-of", "oneof grant {"),
    ("tessera.auth.v1.TokenRequest.password", "a field", ".tessera.auth.v1.PasswordGrant password = 1;"),
]


def _symbols(server: str) -> list[tuple[str, str | None, str | None]]:
    return SERVED_BY_BOTH + (DATA_SYMBOLS if server == "data" else AUTH_SYMBOLS)


@pytest.mark.parametrize("server", ["auth", "data"])
async def test_grpcurl_describes_every_kind_of_symbol(servers: Servers, server: str) -> None:
    target = getattr(servers, server)
    for symbol, kind, line in _symbols(server):
        if kind is None or line is None:
            continue
        result = await grpcurl(target, "describe", symbol)
        assert result.code == 0, (symbol, result.stderr)
        assert result.stdout.startswith(f"{symbol} is {kind}:"), (symbol, result.stdout)
        assert line in result.stdout, (symbol, result.stdout)


async def test_grpcurl_lists_services_and_methods(servers: Servers) -> None:
    data = await grpcurl(servers.data, "list")
    assert data.code == 0, data.stderr
    assert data.stdout.split() == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "tessera.inventory.v1.InventoryService",
    ]
    methods = await grpcurl(servers.data, "list", "tessera.inventory.v1.InventoryService")
    assert "tessera.inventory.v1.InventoryService.CreateOrder" in methods.stdout.split()
    auth = await grpcurl(servers.auth, "list")
    assert "tessera.auth.v1.AuthService" in auth.stdout.split()


async def test_grpcurl_message_template_is_a_request_to_fill_in(servers: Servers) -> None:
    result = await grpcurl(
        "-msg-template", servers.data, "describe", "tessera.inventory.v1.CreateProductRequest"
    )
    assert result.code == 0, result.stderr
    template = json.loads(result.stdout.split("Message template:", 1)[1])
    assert set(template) == {"product", "initial_stock", "request_id"}
    assert set(template["product"]["price"]) == {"currency_code", "minor_units"}


async def test_grpcurl_says_symbol_not_found_for_what_does_not_exist(servers: Servers) -> None:
    result = await grpcurl(servers.data, "describe", "tessera.inventory.v1.InventoryService.NoSuchMethod")
    assert result.code != 0
    assert "Symbol not found" in result.stderr


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
@pytest.mark.parametrize("server", ["auth", "data"])
async def test_raw_reflection_resolves_every_symbol_on_both_protocol_versions(
    servers: Servers, server: str, version: str
) -> None:
    """grpcurl 1.8.6 speaks only v1alpha; newer clients ask v1 first, so v1 is checked message by message."""
    async with grpc.aio.insecure_channel(getattr(servers, server)) as channel:
        for symbol, _kind, _line in _symbols(server):
            response = await reflection_request(
                channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol), version
            )
            assert response.WhichOneof("message_response") == "file_descriptor_response", symbol
            first = descriptor_pb2.FileDescriptorProto.FromString(
                response.file_descriptor_response.file_descriptor_proto[0]
            )
            assert symbol.startswith(f"{first.package}."), (symbol, first.name)
        missing = await reflection_request(
            channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Thing"), version
        )
        assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
