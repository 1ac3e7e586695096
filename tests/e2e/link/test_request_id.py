"""One `x-request-id` through both services: the caller's call, and the key fetch that call caused."""

from __future__ import annotations

import uuid

import grpc
import pytest
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc
from tessera.inventory.v1 import inventory_pb2, inventory_pb2_grpc

from shared.client import InventoryClient, NotFoundError, StaticTokenSource
from tests.support.calls import bearer
from tests.support.link_servers import AuthServerHandle, StartData
from tests.support.logs import CapturedLogs

GET_PRODUCT_PATH = "/tessera.inventory.v1.InventoryService/GetProduct"
GET_JWKS_PATH = "/tessera.auth.v1.AuthService/GetJwks"


async def token_from_a_key_the_data_service_has_not_seen(auth: AuthServerHandle) -> str:
    """Verifying it makes the data service fetch the keys again, on behalf of the request."""
    await auth.stop()
    auth.keys.rotate()
    await auth.start()
    return await auth.token()


async def test_a_callers_request_id_is_echoed_and_logged_by_both_services(
    auth: AuthServerHandle, start_data_server: StartData, logs: CapturedLogs
) -> None:
    data = await start_data_server(auth.target)
    token = await token_from_a_key_the_data_service_has_not_seen(auth)
    request_id = f"link-{uuid.uuid4().hex}"
    stub = inventory_pb2_grpc.InventoryServiceStub(data.channel())

    call = stub.GetProduct(
        inventory_pb2.GetProductRequest(id=str(uuid.uuid4())),
        metadata=(("x-request-id", request_id), *bearer(token)),
        timeout=10,
    )
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call

    assert failure.value.code() == grpc.StatusCode.NOT_FOUND

    # A failed call is answered trailers-only (so that it stays retryable): the echo is in the trailers.
    echoed = (*(await call.initial_metadata()), *(await call.trailing_metadata()))
    assert ("x-request-id", request_id) in echoed
    assert logs.named("rpc", method=GET_PRODUCT_PATH, request_id=request_id)
    assert logs.named("rpc", method=GET_JWKS_PATH, request_id=request_id)


async def test_a_successful_call_echoes_the_request_id_in_its_headers(auth: AuthServerHandle) -> None:
    request_id = f"link-{uuid.uuid4().hex}"
    async with grpc.aio.insecure_channel(auth.target) as channel:
        call = auth_pb2_grpc.AuthServiceStub(channel).GetJwks(
            auth_pb2.GetJwksRequest(), metadata=(("x-request-id", request_id),), timeout=10
        )
        await call

        assert ("x-request-id", request_id) in tuple(await call.initial_metadata())


async def test_the_client_library_sends_a_request_id_that_both_services_log_and_the_error_names(
    auth: AuthServerHandle, start_data_server: StartData, logs: CapturedLogs
) -> None:
    data = await start_data_server(auth.target)
    token = await token_from_a_key_the_data_service_has_not_seen(auth)

    async with InventoryClient(data.target, tokens=StaticTokenSource(token)) as inventory:
        with pytest.raises(NotFoundError) as failure:
            await inventory.get_product(str(uuid.uuid4()))

    request_id = failure.value.request_id
    assert request_id
    assert logs.named("rpc", method=GET_PRODUCT_PATH, request_id=request_id)
    assert logs.named("rpc", method=GET_JWKS_PATH, request_id=request_id)
