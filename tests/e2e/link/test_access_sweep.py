"""Every method of both services, read from the descriptors, against the access rule its proto declares.

Per method: without a token → UNAUTHENTICATED unless public; with a valid token carrying every scope but
the declared one → PERMISSION_DENIED; with only the declared scope → the call reaches the handler (so the
rule is not a blanket deny). The tokens come from the auth service (an admin's grant narrowed with
`scope`); the expected table comes from the proto option and the observed one from real calls, compared
whole so that a failure lists every wrong method at once.
"""

from __future__ import annotations

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from tessera.auth.v1 import auth_pb2
from tessera.inventory.v1 import inventory_pb2

from shared.access import access_rules
from tests.support.calls import bearer, method_path, unary_call
from tests.support.link_servers import ADMIN_EMAIL, CUSTOMER_EMAIL, AuthServerHandle, DataServerHandle
from tests.support.status import details_of

AUTH_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
INVENTORY_SERVICE = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
# The admin role's scopes (SPEC §2): every scope there is.
ALL_SCOPES = frozenset(
    {
        "catalog.read",
        "catalog.write",
        "stock.write",
        "orders.read",
        "orders.write",
        "orders.admin",
        "auth.introspect",
        "auth.admin",
    }
)
REACHED_HANDLER = "reached handler"
# The auth interceptor's own refusals carry these reasons; a handler's refusal would carry another.
AUTH_LAYER_REASONS = {
    grpc.StatusCode.UNAUTHENTICATED: "invalid_token",
    grpc.StatusCode.PERMISSION_DENIED: "insufficient_scope",
}


async def observe(channel: grpc.aio.Channel, service: ServiceDescriptor, token: str | None, name: str) -> str:
    call = unary_call(channel, service.methods_by_name[name])
    try:
        await call(bearer(token) if token else ())
    except grpc.aio.AioRpcError as error:
        expected_reason = AUTH_LAYER_REASONS.get(error.code())
        if expected_reason is not None and details_of(error).reason == expected_reason:
            return str(error.code().name)
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            return "UNAVAILABLE"
    return REACHED_HANDLER


async def sweep(channel: grpc.aio.Channel, service: ServiceDescriptor, auth: AuthServerHandle) -> None:
    expected: dict[str, dict[str, str]] = {}
    observed: dict[str, dict[str, str]] = {}
    for path, rule in access_rules(service).items():
        name = path.rsplit("/", 1)[1]
        want = expected[name] = {}
        got = observed[name] = {}

        want["anonymous"] = REACHED_HANDLER if rule.public else "UNAUTHENTICATED"
        got["anonymous"] = await observe(channel, service, None, name)
        if rule.public:
            continue
        if rule.scope:
            lacking = await auth.token(ADMIN_EMAIL, scope=" ".join(sorted(ALL_SCOPES - {rule.scope})))
            want["every scope but the declared one"] = "PERMISSION_DENIED"
            got["every scope but the declared one"] = await observe(channel, service, lacking, name)
            only_declared = await auth.token(ADMIN_EMAIL, scope=rule.scope)
        else:
            # Any valid token will do; a customer's (a user's, for ChangePassword).
            only_declared = await auth.token(CUSTOMER_EMAIL)
        want["only the declared scope"] = REACHED_HANDLER
        got["only the declared scope"] = await observe(channel, service, only_declared, name)

    assert {method_path(m) for m in service.methods} == set(access_rules(service))
    assert observed == expected


async def test_every_inventory_method_enforces_its_declared_access_rule(
    auth: AuthServerHandle, data_server: DataServerHandle
) -> None:
    await sweep(data_server.channel(), INVENTORY_SERVICE, auth)


async def test_every_auth_method_enforces_its_declared_access_rule(auth: AuthServerHandle) -> None:
    async with grpc.aio.insecure_channel(auth.target) as channel:
        await sweep(channel, AUTH_SERVICE, auth)
