from __future__ import annotations

from datetime import timedelta

import pytest

from auth_service.domain.errors import InvalidGrant, InvalidRequest
from auth_service.domain.tokens import TokenType
from tests.unit.auth.conftest import PASSWORD, PEER, Auth
from tests.unit.auth.fakes import access_tokens


async def test_an_active_access_token_is_described(auth: Auth) -> None:
    user_id = await auth.user()
    issued = await auth.grants.password(
        username="ann@example.com", password=PASSWORD, scope="orders.read", peer=PEER
    )

    info = await auth.introspection.introspect(issued.access_token)

    assert info is not None
    assert info.token_type is TokenType.ACCESS
    assert (info.subject, info.client_id, info.scope) == (user_id, "tessera", {"orders.read"})
    assert info.expires_at - info.issued_at == timedelta(seconds=900)


async def test_a_revoked_access_token_is_inactive_at_once(auth: Auth) -> None:
    await auth.user()
    issued = await auth.grants.password(username="ann@example.com", password=PASSWORD, scope="", peer=PEER)

    await auth.revocation.revoke(issued.access_token)
    await auth.revocation.revoke(issued.access_token)

    assert await auth.introspection.introspect(issued.access_token) is None


async def test_a_refresh_token_is_active_until_used(auth: Auth) -> None:
    user_id = await auth.user()
    issued = await auth.grants.password(username="ann@example.com", password=PASSWORD, scope="", peer=PEER)
    assert issued.refresh_token

    info = await auth.introspection.introspect(issued.refresh_token)
    assert info is not None
    assert (info.token_type, info.subject, info.client_id) == (TokenType.REFRESH, user_id, "tessera")

    await auth.grants.refresh(refresh_token=issued.refresh_token, scope="", peer=PEER)
    assert await auth.introspection.introspect(issued.refresh_token) is None


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 5000, "eyJ.eyJ.sig"])
async def test_unknown_tokens_revoke_fine_and_are_inactive(auth: Auth, token: str) -> None:
    await auth.revocation.revoke(token)
    assert await auth.introspection.introspect(token) is None
    assert auth.db.revoked_access_tokens == {}


async def test_a_token_signed_by_another_key_is_inactive_and_revoking_it_stores_nothing(auth: Auth) -> None:
    foreign = access_tokens(auth.clock).issue(
        subject="x", scope=frozenset(), client_id="tessera", now=auth.clock()
    )
    await auth.revocation.revoke(foreign)
    assert await auth.introspection.introspect(foreign) is None
    assert auth.db.revoked_access_tokens == {}


async def test_an_empty_token_is_a_bad_request(auth: Auth) -> None:
    with pytest.raises(InvalidRequest):
        await auth.revocation.revoke("")
    with pytest.raises(InvalidRequest):
        await auth.introspection.introspect("")


async def test_purge_forgets_only_what_expired(auth: Auth) -> None:
    await auth.user()
    issued = await auth.grants.password(username="ann@example.com", password=PASSWORD, scope="", peer=PEER)
    await auth.revocation.revoke(issued.access_token)
    with pytest.raises(InvalidGrant):
        await auth.grants.password(
            username="ann@example.com", password="wrong password here", scope="", peer=PEER
        )

    kept = await auth.maintenance.purge_expired()
    assert (kept.refresh_tokens, kept.revoked_access_tokens, kept.attempt_counters) == (0, 0, 0)

    auth.clock.advance(days=31)
    purged = await auth.maintenance.purge_expired()
    assert (purged.refresh_tokens, purged.revoked_access_tokens, purged.attempt_counters) == (1, 1, 2)
