"""Token sources against a scripted auth service and a manual clock."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from tessera.auth.v1 import auth_pb2

from shared.client import (
    ClientCredentialsTokenSource,
    PasswordTokenSource,
    UnauthenticatedError,
    UnavailableError,
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedGranter:
    """Issues numbered tokens; can refuse refresh tokens or be down."""

    def __init__(self, lifetime: int = 900) -> None:
        self.lifetime = lifetime
        self.requests: list[str] = []
        self.refuse_refresh = False
        self.down = False
        self.gate: asyncio.Event | None = None

    async def token(self, request: auth_pb2.TokenRequest) -> auth_pb2.TokenResponse:
        grant = request.WhichOneof("grant") or ""
        self.requests.append(grant)
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise UnavailableError(grpc.StatusCode.UNAVAILABLE, "auth is down")
        if grant == "refresh_token" and self.refuse_refresh:
            raise UnauthenticatedError(grpc.StatusCode.UNAUTHENTICATED, "used", reason="invalid_grant")
        number = len(self.requests)
        return auth_pb2.TokenResponse(
            access_token=f"access-{number}",
            token_type="Bearer",
            expires_in=self.lifetime,
            refresh_token="" if grant == "client_credentials" else f"refresh-{number}",
        )


def password_source(granter: ScriptedGranter, clock: ManualClock) -> PasswordTokenSource:
    return PasswordTokenSource(granter, "alice@example.com", "correct horse battery staple", clock=clock)


async def test_the_held_token_is_reused_until_its_last_minute_then_refreshed_with_the_refresh_token() -> None:
    granter, clock = ScriptedGranter(lifetime=900), ManualClock()
    source = password_source(granter, clock)

    assert await source.token() == "access-1"
    clock.now = 839
    assert await source.token() == "access-1"
    clock.now = 840
    assert await source.token() == "access-2"

    assert granter.requests == ["password", "refresh_token"]


async def test_a_short_lived_token_is_refreshed_after_four_fifths_of_its_life() -> None:
    granter, clock = ScriptedGranter(lifetime=30), ManualClock()
    source = password_source(granter, clock)
    await source.token()

    clock.now = 23.9
    assert await source.token() == "access-1"
    clock.now = 24
    assert await source.token() == "access-2"


async def test_a_refused_refresh_token_falls_back_to_the_password_grant() -> None:
    granter, clock = ScriptedGranter(), ManualClock()
    source = password_source(granter, clock)
    await source.token()
    granter.refuse_refresh = True
    clock.now = 900

    assert await source.token() == "access-3"
    assert granter.requests == ["password", "refresh_token", "password"]


async def test_concurrent_callers_share_one_grant() -> None:
    granter, clock = ScriptedGranter(), ManualClock()
    source = password_source(granter, clock)
    granter.gate = asyncio.Event()

    waiting = [asyncio.create_task(source.token()) for _ in range(10)]
    await asyncio.sleep(0)
    granter.gate.set()

    assert await asyncio.gather(*waiting) == ["access-1"] * 10
    assert granter.requests == ["password"]


async def test_an_invalidated_token_is_replaced_on_the_next_call() -> None:
    granter, clock = ScriptedGranter(), ManualClock()
    source = password_source(granter, clock)
    token = await source.token()

    source.invalidate("some other token")
    assert await source.token() == token
    source.invalidate(token)
    assert await source.token() == "access-2"
    assert granter.requests == ["password", "refresh_token"]


async def test_while_the_auth_service_is_down_a_still_valid_token_is_used_and_an_expired_one_fails() -> None:
    granter, clock = ScriptedGranter(lifetime=900), ManualClock()
    source = password_source(granter, clock)
    await source.token()
    granter.down = True

    clock.now = 880  # due for refresh, not yet expired
    assert await source.token() == "access-1"
    clock.now = 900
    with pytest.raises(UnavailableError):
        await source.token()


async def test_client_credentials_are_granted_anew_when_the_token_is_due() -> None:
    granter, clock = ScriptedGranter(), ManualClock()
    source = ClientCredentialsTokenSource(granter, "svc", "secret", scope="catalog.read", clock=clock)

    await source.token()
    clock.now = 900
    await source.token()

    assert granter.requests == ["client_credentials", "client_credentials"]
