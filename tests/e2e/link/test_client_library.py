"""The Python client library against the real services: self-renewing tokens, retries, typed errors, TLS."""

from __future__ import annotations

import asyncio
from pathlib import Path

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
    TlsOptions,
    UnauthenticatedError,
    UnavailableError,
    auth_pb2,
)
from tests.support.certs import localhost_tls_files
from tests.support.link_servers import (
    CUSTOMER_EMAIL,
    PASSWORD,
    AuthServerHandle,
    DataServerHandle,
    StandInHandle,
    StartData,
    free_port,
)
from tests.support.logs import CapturedLogs

LIST_PRODUCTS_PATH = "/tessera.inventory.v1.InventoryService/ListProducts"
TOKEN_PATH = "/tessera.auth.v1.AuthService/Token"
GET_JWKS_PATH = "/tessera.auth.v1.AuthService/GetJwks"
ACCESS_TOKEN_TTL = 900  # AUTH_ACCESS_TOKEN_TTL's default


class ManualClock:
    """The token source's clock, moved by the test instead of by waiting."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def codes(logs: CapturedLogs, method: str) -> list[str]:
    return [line["code"] for line in logs.named("rpc", method=method)]


async def test_an_expiring_token_is_refreshed_before_it_expires_without_the_caller_noticing(
    auth: AuthServerHandle, data_server: DataServerHandle, logs: CapturedLogs
) -> None:
    clock = ManualClock()
    async with AuthClient(auth.target) as client, InventoryClient(data_server.target) as inventory:
        tokens = client.tokens = inventory.tokens = PasswordTokenSource(
            client, CUSTOMER_EMAIL, PASSWORD, clock=clock
        )

        assert (await client.get_current_user()).email == CUSTOMER_EMAIL
        await inventory.list_products()
        assert tokens.held is not None
        first = tokens.held
        clock.advance(ACCESS_TOKEN_TTL - 59)  # inside the token's last minute
        assert (await client.get_current_user()).email == CUSTOMER_EMAIL
        await inventory.list_products()

        assert tokens.held.access_token != first.access_token
        assert codes(logs, TOKEN_PATH) == ["OK", "OK"]
        # The second grant used (and so consumed) the first refresh token: it cannot be used again.
        with pytest.raises(UnauthenticatedError):
            await client.refresh_token_grant(first.refresh_token)

    assert codes(logs, LIST_PRODUCTS_PATH) == ["OK", "OK"]


async def test_a_token_the_data_service_refuses_is_replaced_and_the_call_sent_once_more(
    auth: AuthServerHandle, start_data_server: StartData, logs: CapturedLogs
) -> None:
    data = await start_data_server(auth.target, jwks_refresh_seconds=0.2)
    async with AuthClient(auth.target) as client, InventoryClient(data.target) as inventory:
        inventory.tokens = client.login(CUSTOMER_EMAIL, PASSWORD)
        await inventory.list_products()

        # The auth service withdraws the key that signed the token the client holds (a compromised key):
        # the data service learns it at its next refresh, the client only from the refusal.
        await auth.stop()
        withdrawn = auth.keys.private_keys[0]
        auth.keys.rotate()
        auth.keys.withdraw(withdrawn)
        await auth.start()
        await logs.wait_for("jwks_updated", cause="periodic", removed=[auth.keys.kid_of(withdrawn)])

        await inventory.list_products()  # no error reaches the caller

    assert codes(logs, LIST_PRODUCTS_PATH) == ["OK", "UNAUTHENTICATED", "OK"]
    assert codes(logs, TOKEN_PATH) == ["OK", "OK"]


async def test_a_revoked_refresh_token_falls_back_to_a_new_password_grant(
    auth: AuthServerHandle, logs: CapturedLogs
) -> None:
    clock = ManualClock()
    async with AuthClient(auth.target) as client:
        tokens = client.tokens = PasswordTokenSource(client, CUSTOMER_EMAIL, PASSWORD, clock=clock)
        await client.get_current_user()
        assert tokens.held is not None
        await client.revoke_token(tokens.held.refresh_token)
        clock.advance(ACCESS_TOKEN_TTL)

        assert (await client.get_current_user()).email == CUSTOMER_EMAIL

    assert codes(logs, TOKEN_PATH) == ["OK", "UNAUTHENTICATED", "OK"]


async def test_a_service_account_gets_a_new_client_credentials_token_when_the_old_one_is_due(
    auth: AuthServerHandle, data_server: DataServerHandle, logs: CapturedLogs
) -> None:
    client_id, secret = await auth.server.create_client("reporting", "catalog.read")
    clock = ManualClock()
    async with AuthClient(auth.target) as client:
        tokens = ClientCredentialsTokenSource(client, client_id, secret, clock=clock)
        async with InventoryClient(data_server.target, tokens=tokens) as inventory:
            await inventory.list_products()
            first = await tokens.token()
            clock.advance(ACCESS_TOKEN_TTL)
            await inventory.list_products()

    assert await tokens.token() != first
    assert codes(logs, TOKEN_PATH) == ["OK", "OK"]


async def wait_for_transient_failure(channel: grpc.aio.Channel) -> None:
    """Until the channel has failed to connect: a pending call's first attempt has failed UNAVAILABLE."""
    async with asyncio.timeout(10):
        state = channel.get_state(try_to_connect=False)
        while state != grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            await channel.wait_for_state_change(state)
            state = channel.get_state(try_to_connect=False)


async def test_a_call_made_while_the_server_is_down_is_retried_and_succeeds_once_it_is_up(
    auth_server: AuthServerHandle, logs: CapturedLogs
) -> None:
    auth_server.port = free_port()
    async with AuthClient(auth_server.target) as client:
        fetch = asyncio.create_task(client.get_jwks(timeout=30))
        await wait_for_transient_failure(client.channel)
        assert not fetch.done()

        await auth_server.start()
        jwks = await fetch

    assert [key.kid for key in jwks.keys] == [auth_server.keys.current_kid]
    assert codes(logs, GET_JWKS_PATH) == ["OK"]  # the attempts that failed never reached the server


async def test_without_a_retry_policy_the_same_call_fails_at_once() -> None:
    target = f"127.0.0.1:{free_port()}"
    async with AuthClient(target, settings=ChannelSettings(retry=None)) as client:
        with pytest.raises(UnavailableError):
            await client.get_jwks(timeout=30)


async def test_an_unavailable_answer_is_retried_by_the_service_config(stand_in: StandInHandle) -> None:
    stand_in.state.fail_jwks = 1
    async with AuthClient(stand_in.target) as client:
        jwks = await client.get_jwks()

    assert len(jwks.keys) == 1
    assert stand_in.state.jwks_calls == 2


async def test_unavailable_errors_carry_the_servers_retry_delay(stand_in: StandInHandle) -> None:
    stand_in.state.fail_jwks = 1
    async with AuthClient(stand_in.target, settings=ChannelSettings(retry=None)) as client:
        with pytest.raises(UnavailableError) as failure:
            await client.get_jwks()

    assert failure.value.retry_delay_seconds == pytest.approx(0.1)
    assert failure.value.domain == "auth.tessera"
    assert failure.value.request_id


async def test_failed_grants_raise_typed_errors_with_the_status_details(auth: AuthServerHandle) -> None:
    async with AuthClient(auth.target) as client:
        with pytest.raises(UnauthenticatedError) as wrong_password:
            await client.password_grant(CUSTOMER_EMAIL, "not the password at all")
        with pytest.raises(PermissionDeniedError) as too_broad:
            await client.password_grant(CUSTOMER_EMAIL, PASSWORD, scope="catalog.read orders.admin")
        with pytest.raises(InvalidArgumentError) as no_grant:
            await client.token(auth_pb2.TokenRequest())

    assert (wrong_password.value.reason, wrong_password.value.domain) == ("invalid_grant", "auth.tessera")
    assert wrong_password.value.request_id
    assert too_broad.value.reason == "invalid_scope"
    assert no_grant.value.reason == "invalid_request"
    assert no_grant.value.bad_fields == {"grant"}


async def test_the_client_library_speaks_tls_and_mutual_tls(
    auth_server: AuthServerHandle, tmp_path: Path
) -> None:
    pki = localhost_tls_files(tmp_path / "pki")
    auth_server.settings_overrides = {
        "tls_cert_file": pki.server.cert_file,
        "tls_key_file": pki.server.key_file,
        "tls_client_ca_file": pki.ca_file,
    }
    await auth_server.start()
    with_certificate = TlsOptions(
        root_certificates=pki.ca_file, client_certificate=pki.client.cert_file, client_key=pki.client.key_file
    )
    async with AuthClient(auth_server.target, settings=ChannelSettings(tls=with_certificate)) as client:
        assert len((await client.get_jwks()).keys) == 1

    without_certificate = ChannelSettings(tls=TlsOptions(root_certificates=pki.ca_file), retry=None)
    async with AuthClient(auth_server.target, settings=without_certificate) as client:
        with pytest.raises(UnavailableError):
            await client.get_jwks()


async def test_the_data_service_fetches_keys_over_mutual_tls_when_configured(
    auth_server: AuthServerHandle, start_data_server: StartData, tmp_path: Path, logs: CapturedLogs
) -> None:
    pki = localhost_tls_files(tmp_path / "pki")
    auth_server.settings_overrides = {
        "tls_cert_file": pki.server.cert_file,
        "tls_key_file": pki.server.key_file,
        "tls_client_ca_file": pki.ca_file,
    }
    await auth_server.start()
    data = await start_data_server(
        auth_server.target,
        auth_tls_ca_file=pki.ca_file,
        auth_tls_cert_file=pki.client.cert_file,
        auth_tls_key_file=pki.client.key_file,
    )
    token = StaticTokenSource(auth_server.keys.mint(scope=["catalog.read"]))

    async with InventoryClient(data.target, tokens=token) as inventory:
        await inventory.list_products()

    assert logs.named("jwks_updated", cause="startup")
