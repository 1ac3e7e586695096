"""The data service accepts a token the auth side issued and refuses every tampered or forged one."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tessera.inventory.v1 import inventory_pb2

from tests.support import forgery
from tests.support.calls import HANDLER_CODES, bearer, outcome
from tests.support.link_servers import AuthServerHandle, DataServerHandle
from tests.support.minimal_auth import SigningKeys, StandInAuth

INVENTORY = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
GET_PRODUCT = INVENTORY.methods_by_name["GetProduct"]


async def test_a_token_from_the_auth_service_works_at_the_data_service(
    stand_in: StandInAuth, auth_server: AuthServerHandle, data_server: DataServerHandle
) -> None:
    token = stand_in.keys.mint(scope=["catalog.read"])

    code, _ = await outcome(data_server.channel(), GET_PRODUCT, bearer(token))

    assert code in HANDLER_CODES


def _stranger_key_token(keys: SigningKeys) -> str:
    return keys.mint(scope=["catalog.read"], key=Ed25519PrivateKey.generate())


FORGERIES: dict[str, Callable[[SigningKeys], str]] = {
    "one signature byte changed": lambda keys: forgery.flip_signature_byte(keys.mint(scope=["catalog.read"])),
    "one claims byte changed": lambda keys: forgery.change_payload_byte(keys.mint(scope=["catalog.read"])),
    "alg none": lambda keys: forgery.with_alg_none(keys.mint(scope=["catalog.read"])),
    "HS256 with the raw public key": lambda keys: forgery.hs256_with_public_key(
        keys.mint(scope=["catalog.read"]), keys.private_keys[0].public_key()
    ),
    "HS256 with the PEM public key": lambda keys: forgery.hs256_with_public_key(
        keys.mint(scope=["catalog.read"]), keys.private_keys[0].public_key(), pem=True
    ),
    "wrong audience": lambda keys: keys.mint(scope=["catalog.read"], audience="tessera-billing"),
    "expired": lambda keys: keys.mint(
        scope=["catalog.read"], issued_at=int(time.time()) - 3600, ttl_seconds=900
    ),
    "unknown kid": _stranger_key_token,
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_a_tampered_or_forged_token_is_unauthenticated(
    forge: Callable[[SigningKeys], str],
    stand_in: StandInAuth,
    auth_server: AuthServerHandle,
    data_server: DataServerHandle,
) -> None:
    token = forge(stand_in.keys)

    result = await outcome(data_server.channel(), GET_PRODUCT, bearer(token))

    assert result == (grpc.StatusCode.UNAUTHENTICATED, "invalid_token")
