"""The data service's link to the auth service: outage, return, key rotation, late start, rate limit."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest
from tessera.inventory.v1 import inventory_pb2

from tests.support.calls import HANDLER_CODES, bearer, outcome, unary_call
from tests.support.link_servers import AuthServerHandle, DataServerHandle, StartData, free_port
from tests.support.logs import CapturedLogs, wait_until
from tests.support.minimal_auth import SigningKeys, StandInAuth
from tests.support.status import details_of

GET_PRODUCT = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].methods_by_name["GetProduct"]
GET_JWKS_PATH = "/tessera.auth.v1.AuthService/GetJwks"


def token_for(keys: SigningKeys, **kwargs: object) -> tuple[tuple[str, str], ...]:
    return bearer(keys.mint(scope=["catalog.read"], **kwargs))  # type: ignore[arg-type]


def auth_link_up(data: DataServerHandle) -> float | None:
    """The `tessera_dependency_up{dependency="auth"}` gauge of the data service."""
    return data.server.metrics.registry.get_sample_value("tessera_dependency_up", {"dependency": "auth"})


async def test_valid_tokens_keep_working_while_the_auth_service_is_down_and_new_keys_arrive_after_it_returns(
    stand_in: StandInAuth, auth_server: AuthServerHandle, start_data_server: StartData, logs: CapturedLogs
) -> None:
    data = await start_data_server(auth_server.target, jwks_refresh_seconds=0.2)
    before_outage = token_for(stand_in.keys)
    assert (await outcome(data.channel(), GET_PRODUCT, before_outage))[0] in HANDLER_CODES
    assert auth_link_up(data) == 1

    await auth_server.stop()
    degraded = await logs.wait_for("auth_link_degraded")

    assert degraded["log_level"] == "warning"
    assert degraded["keys"] == 1
    assert auth_link_up(data) == 0
    # Seen before the outage (cached) and never seen (verified with the kept keys) alike.
    assert (await outcome(data.channel(), GET_PRODUCT, before_outage))[0] in HANDLER_CODES
    assert (await outcome(data.channel(), GET_PRODUCT, token_for(stand_in.keys)))[0] in HANDLER_CODES

    new_key = stand_in.keys.rotate()
    await auth_server.start()
    await logs.wait_for("auth_link_restored")
    assert auth_link_up(data) == 1
    updated = await logs.wait_for("jwks_updated", cause="periodic")

    assert updated["added"] == [SigningKeys.kid_of(new_key)]
    assert (await outcome(data.channel(), GET_PRODUCT, token_for(stand_in.keys, key=new_key)))[
        0
    ] in HANDLER_CODES


async def test_a_token_signed_with_a_newly_added_key_is_accepted_without_a_restart(
    stand_in: StandInAuth, auth_server: AuthServerHandle, start_data_server: StartData, logs: CapturedLogs
) -> None:
    data = await start_data_server(auth_server.target)
    new_key = stand_in.keys.rotate()

    code, _ = await outcome(data.channel(), GET_PRODUCT, token_for(stand_in.keys, key=new_key))

    assert code in HANDLER_CODES
    assert logs.named("jwks_updated", cause="unknown_kid", added=[SigningKeys.kid_of(new_key)])
    # Tokens of the key published before keep working.
    old_key = stand_in.keys.private_keys[1]
    assert (await outcome(data.channel(), GET_PRODUCT, token_for(stand_in.keys, key=old_key)))[
        0
    ] in HANDLER_CODES


async def test_a_flood_of_unknown_kids_costs_the_auth_service_at_most_one_call_per_interval(
    stand_in: StandInAuth, auth_server: AuthServerHandle, start_data_server: StartData, logs: CapturedLogs
) -> None:
    data = await start_data_server(auth_server.target, jwks_min_refetch_seconds=60)
    fetches_at_start = len(logs.named("rpc", method=GET_JWKS_PATH))
    stranger = SigningKeys()
    channel = data.channel()

    results = await asyncio.gather(
        *(outcome(channel, GET_PRODUCT, token_for(stranger, subject=f"u{i}")) for i in range(50))
    )

    assert set(results) == {(grpc.StatusCode.UNAUTHENTICATED, "invalid_token")}
    assert len(logs.named("rpc", method=GET_JWKS_PATH)) - fetches_at_start <= 1


async def test_a_data_service_started_before_the_auth_service_answers_unavailable_until_keys_arrive(
    stand_in: StandInAuth, start_data_server: StartData
) -> None:
    auth = AuthServerHandle(stand_in, port=free_port())
    data = await start_data_server(auth.target, jwks_startup_wait_seconds=0)
    with_token = token_for(stand_in.keys)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as early:
            await unary_call(data.channel(), GET_PRODUCT)(with_token)

        assert early.value.code() == grpc.StatusCode.UNAVAILABLE
        assert details_of(early.value).retry_info is not None

        await auth.start()

        async def reached_handler() -> bool:
            return (await outcome(data.channel(), GET_PRODUCT, with_token))[0] in HANDLER_CODES

        await wait_until(reached_handler)
    finally:
        await auth.stop()


async def test_a_key_fetch_caused_by_a_request_inherits_its_deadline(
    stand_in: StandInAuth, auth_server: AuthServerHandle, start_data_server: StartData
) -> None:
    data = await start_data_server(auth_server.target)
    new_key = stand_in.keys.rotate()
    stand_in.jwks_deadlines.clear()

    call = unary_call(data.channel(), GET_PRODUCT)
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call(token_for(stand_in.keys, key=new_key), deadline_seconds=2.0)

    [time_left] = stand_in.jwks_deadlines
    # Without the caller's deadline the fetch would get its own 5 s. (The wire format of a deadline rounds
    # it up by a few milliseconds, hence not `<= 2.0`.)
    assert time_left is not None
    assert time_left < 2.5
