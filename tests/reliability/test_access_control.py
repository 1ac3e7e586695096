"""Who may call what: every method of both services, called by every kind of caller, against ONE table.

Each call is a valid request about resources that exist (so the only reason to refuse it is who asks);
the tokens are real ones from the auth service (password and client-credentials grants), and the data
service knows the keys only from the auth service's GetJwks. A failure prints the whole observed table.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc
from tessera.inventory.v1 import inventory_pb2, inventory_pb2_grpc

from tests.reliability.conftest import LinkedServices
from tests.support.calls import method_path
from tests.support.inventory import new_product
from tests.support.link_servers import PASSWORD
from tests.support.status import details_of

OK, DENIED, ANONYMOUS, MISSING = "OK", "PERMISSION_DENIED", "UNAUTHENTICATED", "NOT_FOUND"
CALLERS = ("customer", "staff", "service", "anonymous", "admin")
# The service account a warehouse system would get: it reads the catalog and books stock.
SERVICE_SCOPES = "catalog.read stock.write"

# The one table: method → expected code for (customer, staff, service account, anonymous, admin).
EXPECTED: dict[str, tuple[str, str, str, str, str]] = {
    "tessera.inventory.v1.InventoryService/CreateProduct": (DENIED, OK, DENIED, ANONYMOUS, OK),
    "tessera.inventory.v1.InventoryService/GetProduct": (OK, OK, OK, ANONYMOUS, OK),
    "tessera.inventory.v1.InventoryService/ListProducts": (OK, OK, OK, ANONYMOUS, OK),
    "tessera.inventory.v1.InventoryService/UpdateProduct": (DENIED, OK, DENIED, ANONYMOUS, OK),
    "tessera.inventory.v1.InventoryService/ArchiveProduct": (DENIED, OK, DENIED, ANONYMOUS, OK),
    "tessera.inventory.v1.InventoryService/AdjustStock": (DENIED, OK, OK, ANONYMOUS, OK),
    "tessera.inventory.v1.InventoryService/ListStockMovements": (DENIED, OK, OK, ANONYMOUS, OK),
    "tessera.inventory.v1.InventoryService/CreateOrder": (OK, OK, DENIED, ANONYMOUS, OK),
    "tessera.inventory.v1.InventoryService/GetOrder": (OK, OK, DENIED, ANONYMOUS, OK),
    "tessera.inventory.v1.InventoryService/ListOrders": (OK, OK, DENIED, ANONYMOUS, OK),
    "tessera.inventory.v1.InventoryService/CancelOrder": (OK, OK, DENIED, ANONYMOUS, OK),
    "tessera.inventory.v1.InventoryService/FulfillOrder": (DENIED, OK, DENIED, ANONYMOUS, OK),
    "tessera.inventory.v1.InventoryService/GetSalesReport": (DENIED, OK, DENIED, ANONYMOUS, OK),
    "tessera.auth.v1.AuthService/Register": (OK, OK, OK, OK, OK),
    "tessera.auth.v1.AuthService/Token": (OK, OK, OK, OK, OK),
    "tessera.auth.v1.AuthService/RevokeToken": (OK, OK, OK, OK, OK),
    "tessera.auth.v1.AuthService/IntrospectToken": (DENIED, DENIED, DENIED, ANONYMOUS, OK),
    "tessera.auth.v1.AuthService/GetJwks": (OK, OK, OK, OK, OK),
    # A service account has no user to show or whose password to change.
    "tessera.auth.v1.AuthService/GetCurrentUser": (OK, OK, DENIED, ANONYMOUS, OK),
    "tessera.auth.v1.AuthService/ChangePassword": (OK, OK, DENIED, ANONYMOUS, OK),
}

SERVICES = (
    inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"],
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
)


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@dataclass
class World:
    """Both services, a token per caller, and a way to make fresh resources for each call."""

    linked: LinkedServices
    inventory: inventory_pb2_grpc.InventoryServiceStub
    auth: auth_pb2_grpc.AuthServiceStub
    tokens: dict[str, str | None]
    # Each caller's own password, for ChangePassword (users only).
    passwords: dict[str, str]

    def metadata(self, caller: str) -> tuple[tuple[str, str], ...]:
        token = self.tokens[caller]
        return () if token is None else (("authorization", f"Bearer {token}"),)

    async def product(self) -> inventory_pb2.Product:
        product: inventory_pb2.Product = await self.inventory.CreateProduct(
            inventory_pb2.CreateProductRequest(product=new_product(), initial_stock=100),
            metadata=self.metadata("admin"),
        )
        return product

    async def order_of(self, owner: str) -> inventory_pb2.Order:
        product = await self.product()
        order: inventory_pb2.Order = await self.inventory.CreateOrder(
            inventory_pb2.CreateOrderRequest(
                lines=[inventory_pb2.CreateOrderRequest.Line(product_id=product.id, quantity=1)]
            ),
            metadata=self.metadata(owner),
        )
        return order


async def _product_id(world: World) -> str:
    return str((await world.product()).id)


async def _order_id(world: World) -> str:
    return str((await world.order_of("customer")).id)


def _report_window() -> inventory_pb2.GetSalesReportRequest:
    now = datetime.now(UTC)
    return inventory_pb2.GetSalesReportRequest(
        start_time=_timestamp(now - timedelta(days=1)), end_time=_timestamp(now + timedelta(days=1))
    )


def _new_password(world: World, caller: str) -> auth_pb2.ChangePasswordRequest:
    current = world.passwords.get(caller, PASSWORD)
    world.passwords[caller] = f"{PASSWORD} {uuid.uuid4().hex[:6]}"
    return auth_pb2.ChangePasswordRequest(current_password=current, new_password=world.passwords[caller])


_pb, _apb = inventory_pb2, auth_pb2
# A valid request per method, about resources that exist (orders belong to the customer); fresh ones for
# every call, so one cell never depends on another.
REQUESTS: dict[str, Callable[[World, str], Awaitable[Any]]] = {
    "CreateProduct": lambda w, c: _value(_pb.CreateProductRequest(product=new_product(), initial_stock=1)),
    "GetProduct": lambda w, c: _build(_pb.GetProductRequest, id=_product_id(w)),
    "ListProducts": lambda w, c: _value(_pb.ListProductsRequest()),
    "UpdateProduct": lambda w, c: _renamed(w),
    "ArchiveProduct": lambda w, c: _build(_pb.ArchiveProductRequest, id=_product_id(w)),
    "AdjustStock": lambda w, c: _build(
        _pb.AdjustStockRequest, product_id=_product_id(w), delta=1, reason=_pb.STOCK_MOVEMENT_REASON_RESTOCK
    ),
    "ListStockMovements": lambda w, c: _build(_pb.ListStockMovementsRequest, product_id=_product_id(w)),
    "CreateOrder": lambda w, c: _one_line_order(w),
    "GetOrder": lambda w, c: _build(_pb.GetOrderRequest, id=_order_id(w)),
    "ListOrders": lambda w, c: _value(_pb.ListOrdersRequest()),
    "CancelOrder": lambda w, c: _build(_pb.CancelOrderRequest, id=_order_id(w)),
    "FulfillOrder": lambda w, c: _build(_pb.FulfillOrderRequest, id=_order_id(w)),
    "GetSalesReport": lambda w, c: _value(_report_window()),
    "Register": lambda w, c: _value(
        _apb.RegisterRequest(email=f"new-{uuid.uuid4().hex[:12]}@example.com", password=PASSWORD)
    ),
    "Token": lambda w, c: _value(
        _apb.TokenRequest(password=_apb.PasswordGrant(username="dora@example.com", password=PASSWORD))
    ),
    "RevokeToken": lambda w, c: _value(_apb.RevokeTokenRequest(token="a-token-nobody-issued")),
    "IntrospectToken": lambda w, c: _value(_apb.IntrospectTokenRequest(token=w.tokens["customer"] or "")),
    "GetJwks": lambda w, c: _value(_apb.GetJwksRequest()),
    "GetCurrentUser": lambda w, c: _value(_apb.GetCurrentUserRequest()),
    "ChangePassword": lambda w, c: _value(_new_password(w, c)),
}


async def _value(request: Any) -> Any:
    return request


async def _build(request_class: Any, **fields: Any) -> Any:
    """`request_class(**fields)`, awaiting the fields that are still to be made."""
    return request_class(**{k: (await v if inspect.isawaitable(v) else v) for k, v in fields.items()})


async def _renamed(world: World) -> inventory_pb2.UpdateProductRequest:
    product = _pb.Product(id=await _product_id(world), name="Renamed")
    return _pb.UpdateProductRequest(product=product, update_mask={"paths": ["name"]})


async def _one_line_order(world: World) -> inventory_pb2.CreateOrderRequest:
    line = _pb.CreateOrderRequest.Line(product_id=await _product_id(world), quantity=1)
    return _pb.CreateOrderRequest(lines=[line])


async def observe(world: World, method: str, caller: str) -> str:
    stub = world.inventory if method.startswith("tessera.inventory") else world.auth
    call: Callable[..., Awaitable[Any]] = getattr(stub, method.rsplit("/", 1)[1])
    request = await REQUESTS[method.rsplit("/", 1)[1]](world, caller)
    try:
        await call(request, metadata=world.metadata(caller), timeout=10)
    except grpc.aio.AioRpcError as error:
        return str(error.code().name)
    return OK


async def make_world(linked: LinkedServices, inventory_channel: grpc.aio.Channel) -> World:
    server = linked.auth.server
    for email, role in (
        ("alice@example.com", "customer"),
        ("bob@example.com", "customer"),
        ("dora@example.com", "customer"),
        ("stan@example.com", "staff"),
        ("ada@example.com", "admin"),
    ):
        await server.create_user(email, PASSWORD, role=role)
    client_id, secret = await server.create_client("warehouse", SERVICE_SCOPES)
    service = await server.stub.Token(
        auth_pb2.TokenRequest(
            client_credentials=auth_pb2.ClientCredentialsGrant(client_id=client_id, client_secret=secret)
        )
    )
    return World(
        linked=linked,
        inventory=inventory_pb2_grpc.InventoryServiceStub(inventory_channel),
        auth=server.stub,
        tokens={
            "customer": (await server.login("alice@example.com", PASSWORD)).access_token,
            "other customer": (await server.login("bob@example.com", PASSWORD)).access_token,
            "staff": (await server.login("stan@example.com", PASSWORD)).access_token,
            "service": service.access_token,
            "anonymous": None,
            "admin": (await server.login("ada@example.com", PASSWORD)).access_token,
        },
        passwords={},
    )


async def test_every_method_of_both_services_answers_each_kind_of_caller_as_the_table_says(
    linked: LinkedServices,
) -> None:
    async with grpc.aio.insecure_channel(linked.data_target) as channel:
        world = await make_world(linked, channel)
        all_methods = {method_path(m)[1:] for service in SERVICES for m in service.methods}
        assert set(EXPECTED) == all_methods, "every method of both services has a row"

        observed = {
            method: tuple([await observe(world, method, caller) for caller in CALLERS]) for method in EXPECTED
        }

    mismatches = {m: (observed[m], EXPECTED[m]) for m in EXPECTED if observed[m] != EXPECTED[m]}
    assert not mismatches, "\n".join(f"{m}: got {got}, want {want}" for m, (got, want) in mismatches.items())
    print(
        f"\nRELIABILITY access: {len(EXPECTED)} methods x {len(CALLERS)} callers = {len(EXPECTED) * 5} cells"
    )


async def test_another_customers_order_looks_exactly_like_a_missing_one(linked: LinkedServices) -> None:
    async with grpc.aio.insecure_channel(linked.data_target) as channel:
        world = await make_world(linked, channel)
        alices = await world.order_of("customer")
        bob = world.metadata("other customer")
        missing = str(uuid.uuid4())

        async def answer(call: Awaitable[Any], order_id: str) -> tuple[str, str | None, str, list[str]]:
            try:
                await call
            except grpc.aio.AioRpcError as error:
                details = details_of(error)
                # The message may name the id asked for; with the id masked it must be the same text.
                message = details.message.replace(order_id, "<id>")
                return error.code().name, details.reason, message, sorted(details.raw)
            return OK, None, "", []

        pb = inventory_pb2
        for request_class in (pb.GetOrderRequest, pb.CancelOrderRequest):
            call = getattr(world.inventory, request_class.__name__.removesuffix("Request"))
            foreign = await answer(call(request_class(id=alices.id), metadata=bob), alices.id)
            absent = await answer(call(request_class(id=missing), metadata=bob), missing)
            assert foreign == absent
            assert foreign[0] == MISSING

        listed = await world.inventory.ListOrders(pb.ListOrdersRequest(), metadata=bob)
        assert alices.id not in {order.id for order in listed.orders}
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await world.inventory.ListOrders(pb.ListOrdersRequest(owner=alices.owner), metadata=bob)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Alice's order is untouched by Bob's attempts.
        still = await world.inventory.GetOrder(
            pb.GetOrderRequest(id=alices.id), metadata=world.metadata("customer")
        )
        assert still.status == pb.ORDER_STATUS_PLACED
