"""The Python client library against real servers: tokens that renew themselves, retries, typed errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import grpc
import pytest

from shared.client import (
    AuthClient,
    ChannelSettings,
    ClientCredentialsTokenSource,
    InvalidArgumentError,
    InventoryClient,
    PasswordTokenSource,
    PermissionDeniedError,
    StaticTokenSource,
    TesseraError,
    TlsOptions,
    UnauthenticatedError,
    UnavailableError,
    auth_pb2,
)
from tests.support.calls import HANDLER_CODES
from tests.support.certs import localhost_tls_files
from tests.support.link_servers import AuthServerHandle, DataServerHandle, StartData, free_port
from tests.support.logs import CapturedLogs
from tests.support.minimal_auth import StandInAuth

ALICE, PASSWORD = "alice@example.com", "correct horse battery staple"
GET_PRODUCT_PATH = "/tessera.inventory.v1.InventoryService/GetProduct"


class ManualClock:
    """The token source's clock, moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def handler_answer(call: Awaitable[Any]) -> grpc.StatusCode:
    """OK, or the code of the typed error the call raised."""
    try:
        await call
    except TesseraError as error:
        return error.code
    return grpc.StatusCode.OK


async def test_an_expiring_token_is_refreshed_before_it_expires_without_the_caller_noticing(
    stand_in: StandInAuth, auth_server: AuthServerHandle, data_server: DataServerHandle, logs: CapturedLogs
) -> None:
    stand_in.add_user(ALICE, PASSWORD, ["catalog.read"])
    stand_in.access_token_ttl = 300
    clock = ManualClock()
    async with AuthClient(auth_server.target) as auth, InventoryClient(data_server.target) as inventory:
        tokens = auth.tokens = inventory.tokens = PasswordTokenSource(auth, ALICE, PASSWORD, clock=clock)

        assert (await auth.get_current_user()).id == ALICE
        assert await handler_answer(inventory.get_product(str(uuid.uuid4()))) in HANDLER_CODES
        first_token = tokens.held.access_token if tokens.held else None
        clock.advance(300 - 60 + 1)  # inside the last minute of the token's life
        assert (await auth.get_current_user()).id == ALICE
        assert await handler_answer(inventory.get_product(str(uuid.uuid4()))) in HANDLER_CODES

    assert stand_in.grants == ["password", "refresh_token"]
    assert tokens.held is not None
    assert tokens.held.access_token != first_token
    assert not logs.named("rpc", code="UNAUTHENTICATED")


async def test_a_token_the_server_refuses_is_replaced_and_the_call_sent_once_more(
    stand_in: StandInAuth, auth_server: AuthServerHandle, data_server: DataServerHandle, logs: CapturedLogs
) -> None:
    stand_in.add_user(ALICE, PASSWORD, ["catalog.read"])
    stand_in.issue_expired_tokens = 1  # the client cannot know: `expires_in` says 900 s
    async with AuthClient(auth_server.target) as auth:
        tokens = auth.login(ALICE, PASSWORD)
        async with InventoryClient(data_server.target, tokens=tokens) as inventory:
            code = await handler_answer(inventory.get_product(str(uuid.uuid4())))

    assert code in HANDLER_CODES
    assert stand_in.grants == ["password", "refresh_token"]
    assert [line["code"] for line in logs.named("rpc", method=GET_PRODUCT_PATH)] == [
        "UNAUTHENTICATED",
        code.name,
    ]


async def test_a_rejected_refresh_token_falls_back_to_a_new_password_grant(
    stand_in: StandInAuth, auth_server: AuthServerHandle
) -> None:
    stand_in.add_user(ALICE, PASSWORD, ["catalog.read"])
    clock = ManualClock()
    async with AuthClient(auth_server.target) as auth:
        auth.tokens = PasswordTokenSource(auth, ALICE, PASSWORD, clock=clock)
        await auth.get_current_user()
        stand_in._refresh_tokens.clear()  # e.g. revoked by a password change elsewhere
        clock.advance(900)

        assert (await auth.get_current_user()).id == ALICE

    assert stand_in.grants == ["password", "refresh_token", "password"]


async def test_a_service_account_gets_a_new_client_credentials_token_when_the_old_one_is_due(
    stand_in: StandInAuth, auth_server: AuthServerHandle, data_server: DataServerHandle
) -> None:
    stand_in.add_client("svc-reporting", "s3cret-s3cret", ["catalog.read"])
    clock = ManualClock()
    async with AuthClient(auth_server.target) as auth:
        tokens = ClientCredentialsTokenSource(auth, "svc-reporting", "s3cret-s3cret", clock=clock)
        async with InventoryClient(data_server.target, tokens=tokens) as inventory:
            assert await handler_answer(inventory.get_product(str(uuid.uuid4()))) in HANDLER_CODES
            clock.advance(900)
            assert await handler_answer(inventory.get_product(str(uuid.uuid4()))) in HANDLER_CODES

    assert stand_in.grants == ["client_credentials", "client_credentials"]


async def wait_for_transient_failure(channel: grpc.aio.Channel) -> None:
    """Until the channel has failed to connect: a pending call's first attempt has failed UNAVAILABLE."""
    async with asyncio.timeout(10):
        state = channel.get_state(try_to_connect=False)
        while state != grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            await channel.wait_for_state_change(state)
            state = channel.get_state(try_to_connect=False)


async def test_a_call_made_while_the_server_is_down_is_retried_and_succeeds_once_it_is_up(
    stand_in: StandInAuth, logs: CapturedLogs
) -> None:
    auth_server = AuthServerHandle(stand_in, port=free_port())
    try:
        async with AuthClient(auth_server.target) as auth:
            fetch = asyncio.create_task(auth.get_jwks(timeout=30))
            await wait_for_transient_failure(auth.channel)
            assert not fetch.done()

            await auth_server.start()
            jwks = await fetch

        assert [key.kid for key in jwks.keys] == [stand_in.keys.current_kid]
        assert len(logs.named("rpc", method="/tessera.auth.v1.AuthService/GetJwks")) == 1
    finally:
        await auth_server.stop()


async def test_without_a_retry_policy_the_same_call_fails_at_once(stand_in: StandInAuth) -> None:
    target = f"127.0.0.1:{free_port()}"
    async with AuthClient(target, settings=ChannelSettings(retry=None)) as auth:
        with pytest.raises(UnavailableError):
            await auth.get_jwks(timeout=30)


async def test_an_unavailable_answer_is_retried_by_the_service_config(
    stand_in: StandInAuth, auth_server: AuthServerHandle
) -> None:
    stand_in.fail_jwks = 1
    async with AuthClient(auth_server.target) as auth:
        jwks = await auth.get_jwks()

    assert len(jwks.keys) == 1
    assert stand_in.jwks_calls == 2


async def test_unavailable_errors_carry_the_servers_retry_delay(
    stand_in: StandInAuth, auth_server: AuthServerHandle
) -> None:
    stand_in.fail_jwks = 1
    async with AuthClient(auth_server.target, settings=ChannelSettings(retry=None)) as auth:
        with pytest.raises(UnavailableError) as failure:
            await auth.get_jwks()

    assert failure.value.retry_delay_seconds == pytest.approx(0.1)
    assert failure.value.domain == "auth.tessera"
    assert failure.value.request_id


async def test_failed_grants_raise_typed_errors_with_the_status_details(
    stand_in: StandInAuth, auth_server: AuthServerHandle
) -> None:
    stand_in.add_user(ALICE, PASSWORD, ["catalog.read"])
    async with AuthClient(auth_server.target) as auth:
        with pytest.raises(UnauthenticatedError) as wrong_password:
            await auth.password_grant(ALICE, "not the password")
        with pytest.raises(PermissionDeniedError) as too_broad:
            await auth.password_grant(ALICE, PASSWORD, scope="catalog.read orders.admin")
        with pytest.raises(InvalidArgumentError) as no_grant:
            await auth.token(auth_pb2.TokenRequest())

    assert (wrong_password.value.reason, wrong_password.value.domain) == ("invalid_grant", "auth.tessera")
    assert too_broad.value.reason == "invalid_scope"
    assert no_grant.value.reason == "invalid_request"
    assert no_grant.value.bad_fields == {"grant"}


async def test_the_client_library_speaks_tls_and_mutual_tls(stand_in: StandInAuth, tmp_path: Path) -> None:
    pki = localhost_tls_files(tmp_path)
    auth_server = AuthServerHandle(
        stand_in,
        settings_overrides={
            "tls_cert_file": pki.server.cert_file,
            "tls_key_file": pki.server.key_file,
            "tls_client_ca_file": pki.ca_file,
        },
    )
    await auth_server.start()
    try:
        with_certificate = TlsOptions(
            root_certificates=pki.ca_file,
            client_certificate=pki.client.cert_file,
            client_key=pki.client.key_file,
        )
        async with AuthClient(auth_server.target, settings=ChannelSettings(tls=with_certificate)) as auth:
            assert len((await auth.get_jwks()).keys) == 1

        without_certificate = TlsOptions(root_certificates=pki.ca_file)
        settings = ChannelSettings(tls=without_certificate, retry=None)
        async with AuthClient(auth_server.target, settings=settings) as auth:
            with pytest.raises(UnavailableError):
                await auth.get_jwks()
    finally:
        await auth_server.stop()


async def test_the_data_service_fetches_keys_over_mutual_tls_when_configured(
    stand_in: StandInAuth, start_data_server: StartData, tmp_path: Path, logs: CapturedLogs
) -> None:
    pki = localhost_tls_files(tmp_path)
    mtls = {
        "tls_cert_file": pki.server.cert_file,
        "tls_key_file": pki.server.key_file,
        "tls_client_ca_file": pki.ca_file,
    }
    auth_server = AuthServerHandle(stand_in, settings_overrides=mtls)
    await auth_server.start()
    try:
        data = await start_data_server(
            auth_server.target,
            auth_tls_ca_file=pki.ca_file,
            auth_tls_cert_file=pki.client.cert_file,
            auth_tls_key_file=pki.client.key_file,
        )
        token = StaticTokenSource(stand_in.keys.mint(scope=["catalog.read"]))
        async with InventoryClient(data.target, tokens=token) as inventory:
            code = await handler_answer(inventory.get_product(str(uuid.uuid4())))

        assert code in HANDLER_CODES
        assert logs.named("jwks_updated", cause="startup")
    finally:
        await auth_server.stop()
