"""A token from the auth service works at the data service; every tampered or forged one is refused."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tessera.inventory.v1 import inventory_pb2

from tests.support import forgery
from tests.support.calls import bearer, outcome
from tests.support.link_servers import AuthServerHandle, DataServerHandle

INVENTORY = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
LIST_PRODUCTS = INVENTORY.methods_by_name["ListProducts"]


async def test_a_token_from_the_auth_service_works_at_the_data_service(
    auth: AuthServerHandle, data_server: DataServerHandle
) -> None:
    token = await auth.token()

    result = await outcome(data_server.channel(), LIST_PRODUCTS, bearer(token))

    assert result == (grpc.StatusCode.OK, None)


Forge = Callable[[AuthServerHandle], Awaitable[str]]


async def one_signature_byte_changed(auth: AuthServerHandle) -> str:
    return forgery.flip_signature_byte(await auth.token())


async def one_claims_byte_changed(auth: AuthServerHandle) -> str:
    return forgery.change_payload_byte(await auth.token())


async def alg_none(auth: AuthServerHandle) -> str:
    return forgery.with_alg_none(await auth.token())


async def hs256_with_the_raw_public_key(auth: AuthServerHandle) -> str:
    return forgery.hs256_with_public_key(await auth.token(), auth.keys.private_keys[0].public_key())


async def hs256_with_the_pem_public_key(auth: AuthServerHandle) -> str:
    return forgery.hs256_with_public_key(await auth.token(), auth.keys.private_keys[0].public_key(), pem=True)


# The auth service never issues these; the test signs them with the service's own key.
async def wrong_audience(auth: AuthServerHandle) -> str:
    return auth.keys.mint(scope=["catalog.read"], audience="tessera-billing")


async def expired(auth: AuthServerHandle) -> str:
    return auth.keys.mint(scope=["catalog.read"], issued_at=int(time.time()) - 3600, ttl_seconds=900)


async def unknown_kid(auth: AuthServerHandle) -> str:
    return auth.keys.mint(scope=["catalog.read"], key=Ed25519PrivateKey.generate())


async def valid_until_the_year_9999(auth: AuthServerHandle) -> str:
    now = int(time.time())
    return auth.keys.mint(scope=["catalog.read"], issued_at=now, ttl_seconds=253_402_300_799 - now)


async def issued_an_hour_from_now(auth: AuthServerHandle) -> str:
    return auth.keys.mint(scope=["catalog.read"], issued_at=int(time.time()) + 3600, ttl_seconds=300)


FORGERIES: list[Forge] = [
    one_signature_byte_changed,
    one_claims_byte_changed,
    alg_none,
    hs256_with_the_raw_public_key,
    hs256_with_the_pem_public_key,
    wrong_audience,
    expired,
    unknown_kid,
    valid_until_the_year_9999,
    issued_an_hour_from_now,
]


async def test_every_tampered_or_forged_token_is_unauthenticated(
    auth: AuthServerHandle, data_server: DataServerHandle
) -> None:
    refused = (grpc.StatusCode.UNAUTHENTICATED, "invalid_token")
    observed = {}
    for forge in FORGERIES:
        token = await forge(auth)
        observed[forge.__name__] = await outcome(data_server.channel(), LIST_PRODUCTS, bearer(token))

    assert observed == {forge.__name__: refused for forge in FORGERIES}
