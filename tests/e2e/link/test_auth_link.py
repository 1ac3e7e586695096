"""The data service's link to the auth service: outage, return, key rotation, late start, rate limit."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tessera.inventory.v1 import inventory_pb2

from tests.support.calls import bearer, outcome, unary_call
from tests.support.link_servers import AuthServerHandle, DataServerHandle, StandInHandle, StartData, free_port
from tests.support.logs import CapturedLogs, wait_until
from tests.support.signing_keys import SigningKeys
from tests.support.status import details_of

LIST_PRODUCTS = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].methods_by_name["ListProducts"]
GET_JWKS_PATH = "/tessera.auth.v1.AuthService/GetJwks"


def auth_link_up(data: DataServerHandle) -> float | None:
    """The data service's `tessera_dependency_up{dependency="auth"}` gauge."""
    return data.server.metrics.registry.get_sample_value("tessera_dependency_up", {"dependency": "auth"})


async def accepted(data: DataServerHandle, token: str) -> bool:
    """Whether the data service serves a call with `token` (ListProducts answers OK)."""
    code, _ = await outcome(data.channel(), LIST_PRODUCTS, bearer(token))
    return code == grpc.StatusCode.OK


async def test_valid_tokens_keep_working_while_the_auth_service_is_down_and_new_keys_arrive_after_it_returns(
    auth: AuthServerHandle, start_data_server: StartData, logs: CapturedLogs
) -> None:
    data = await start_data_server(auth.target, jwks_refresh_seconds=0.2)
    seen_before = await auth.token()
    unseen_before = await auth.token()
    assert await accepted(data, seen_before)
    assert auth_link_up(data) == 1

    await auth.stop()
    degraded = await logs.wait_for("auth_link_degraded")

    assert degraded["log_level"] == "warning"
    assert degraded["keys"] == 1
    assert auth_link_up(data) == 0
    # A token verified before the outage (cached) and one never seen (verified with the kept keys).
    assert await accepted(data, seen_before)
    assert await accepted(data, unseen_before)

    new_key = auth.keys.rotate()
    await auth.start()
    await logs.wait_for("auth_link_restored")
    updated = await logs.wait_for("jwks_updated", cause="periodic")

    assert updated["added"] == [SigningKeys.kid_of(new_key)]
    assert auth_link_up(data) == 1
    assert await accepted(data, await auth.token())


async def test_a_token_signed_with_a_newly_added_key_is_accepted_without_restarting_the_data_service(
    auth: AuthServerHandle, start_data_server: StartData, logs: CapturedLogs
) -> None:
    data = await start_data_server(auth.target)
    old_token = await auth.token()
    assert await accepted(data, old_token)

    # The auth service reads its keys at start: adding one is a restart of the auth service only.
    await auth.stop()
    new_key = auth.keys.rotate()
    await auth.start()
    new_token = await auth.token()

    assert await accepted(data, new_token)
    assert logs.named("jwks_updated", cause="unknown_kid", added=[SigningKeys.kid_of(new_key)])
    assert await accepted(data, old_token)  # the old key is still published


async def test_a_flood_of_unknown_kids_costs_the_auth_service_at_most_one_call_per_interval(
    auth: AuthServerHandle, start_data_server: StartData, logs: CapturedLogs
) -> None:
    data = await start_data_server(auth.target, jwks_min_refetch_seconds=60)
    fetches_at_start = len(logs.named("rpc", method=GET_JWKS_PATH))
    stranger = Ed25519PrivateKey.generate()
    channel = data.channel()

    results = await asyncio.gather(
        *(
            outcome(channel, LIST_PRODUCTS, bearer(auth.keys.mint(subject=f"u{i}", key=stranger)))
            for i in range(50)
        )
    )

    assert set(results) == {(grpc.StatusCode.UNAUTHENTICATED, "invalid_token")}
    assert len(logs.named("rpc", method=GET_JWKS_PATH)) - fetches_at_start <= 1


async def test_a_data_service_started_before_the_auth_service_answers_unavailable_until_keys_arrive(
    auth_server: AuthServerHandle, start_data_server: StartData
) -> None:
    auth_server.port = free_port()
    data = await start_data_server(auth_server.target, jwks_startup_wait_seconds=0)
    # Signed with the key the auth service will start with: valid, but not judgeable yet.
    token = bearer(auth_server.keys.mint(scope=["catalog.read"]))

    with pytest.raises(grpc.aio.AioRpcError) as early:
        await unary_call(data.channel(), LIST_PRODUCTS)(token)

    assert early.value.code() == grpc.StatusCode.UNAVAILABLE
    assert details_of(early.value).retry_info is not None

    await auth_server.start()

    async def served() -> bool:
        return (await outcome(data.channel(), LIST_PRODUCTS, token))[0] == grpc.StatusCode.OK

    await wait_until(served)


async def test_a_key_fetch_caused_by_a_request_inherits_its_deadline(
    stand_in: StandInHandle, start_data_server: StartData
) -> None:
    # The stand-in records the deadline each key fetch arrives with; the real service does not say.
    data = await start_data_server(stand_in.target)
    keys = stand_in.state.keys
    new_key = keys.rotate()
    stand_in.state.jwks_deadlines.clear()

    call = unary_call(data.channel(), LIST_PRODUCTS)
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call(bearer(keys.mint(key=new_key)), deadline_seconds=2.0)

    [time_left] = stand_in.state.jwks_deadlines
    # Without the caller's deadline the fetch would get its own 5 s. (The wire format of a deadline rounds
    # it up by a few milliseconds, hence not `<= 2.0`.)
    assert time_left is not None
    assert time_left < 2.5
