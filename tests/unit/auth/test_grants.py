from __future__ import annotations

import uuid

import jwt
import pytest

from auth_service.domain.errors import (
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    TooManyAttempts,
)
from auth_service.domain.scopes import Role
from auth_service.domain.tokens import hash_refresh_token
from tests.unit.auth.conftest import PASSWORD, PEER, Auth

CUSTOMER_SCOPES = {"catalog.read", "orders.read", "orders.write"}


async def login(
    auth: Auth, password: str = PASSWORD, *, email: str = "ann@example.com", scope: str = "", peer: str = PEER
):  # type: ignore[no-untyped-def]
    return await auth.grants.password(username=email, password=password, scope=scope, peer=peer)


async def refresh(auth: Auth, token: str, scope: str = ""):  # type: ignore[no-untyped-def]
    return await auth.grants.refresh(refresh_token=token, scope=scope, peer=PEER)


async def test_password_grant_issues_an_rfc9068_token_with_the_roles_scopes(auth: Auth) -> None:
    user_id = await auth.user()

    issued = await login(auth, email=" ANN@example.com")

    header = jwt.get_unverified_header(issued.access_token)
    assert header["alg"] == "EdDSA"
    assert header["typ"] == "at+jwt"
    assert header["kid"]
    claims = auth.tokens.read(issued.access_token)
    assert claims is not None
    assert claims.subject == user_id
    assert claims.client_id == "tessera"
    assert claims.scope == CUSTOMER_SCOPES
    assert issued.scope == CUSTOMER_SCOPES
    assert issued.expires_in == 900
    assert issued.refresh_token
    assert len(issued.refresh_token) >= 43
    stored = next(iter(auth.db.refresh_tokens.values()))
    assert stored.token_hash == hash_refresh_token(issued.refresh_token)
    assert issued.refresh_token not in repr(auth.db)


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_gets_the_scopes_the_spec_lists(auth: Auth, role: Role) -> None:
    await auth.user(role=role)
    expected = {
        Role.CUSTOMER: CUSTOMER_SCOPES,
        Role.STAFF: CUSTOMER_SCOPES | {"catalog.write", "stock.write", "orders.admin"},
        Role.ADMIN: CUSTOMER_SCOPES
        | {"catalog.write", "stock.write", "orders.admin", "auth.introspect", "auth.admin"},
    }[role]
    assert (await login(auth)).scope == expected


async def test_scope_may_narrow_but_never_widen(auth: Auth) -> None:
    await auth.user()

    narrowed = await login(auth, scope="catalog.read")
    assert narrowed.scope == {"catalog.read"}
    with pytest.raises(InvalidScope) as raised:
        await login(auth, scope="catalog.read stock.write")
    assert raised.value.reason == "invalid_scope"


async def test_unknown_user_and_wrong_password_fail_identically(auth: Auth) -> None:
    await auth.user()

    with pytest.raises(InvalidGrant) as wrong_password:
        await login(auth, "not the right password")
    with pytest.raises(InvalidGrant) as unknown_user:
        await login(auth, PASSWORD, email="nobody@example.com")

    assert (wrong_password.value.message, wrong_password.value.reason) == (
        unknown_user.value.message,
        unknown_user.value.reason,
    )
    # The unknown user cost a (dummy) verification too, so it is not faster.
    assert auth.hasher.dummy_verifications == 1
    assert auth.hasher.verifications == 1


async def test_five_failures_lock_the_account_even_for_the_right_password(auth: Auth) -> None:
    await auth.user()
    for _ in range(5):
        with pytest.raises(InvalidGrant):
            await login(auth, "wrong password here")

    with pytest.raises(TooManyAttempts) as raised:
        await login(auth, PASSWORD)

    assert raised.value.reason == "too_many_attempts"
    assert 0 < raised.value.retry_after_seconds <= 15 * 60
    auth.clock.advance(minutes=15, seconds=1)
    assert (await login(auth, PASSWORD)).access_token


async def test_a_success_resets_the_account_counter(auth: Auth) -> None:
    await auth.user()
    for _ in range(4):
        with pytest.raises(InvalidGrant):
            await login(auth, "wrong password here")
    await login(auth, PASSWORD)
    for _ in range(4):
        with pytest.raises(InvalidGrant):
            await login(auth, "wrong password here")

    assert (await login(auth, PASSWORD)).access_token


async def test_an_unknown_account_is_throttled_like_a_known_one(auth: Auth) -> None:
    for _ in range(5):
        with pytest.raises(InvalidGrant):
            await login(auth, email="ghost@example.com")
    with pytest.raises(TooManyAttempts):
        await login(auth, email="ghost@example.com")


async def test_twenty_failures_from_one_peer_block_it_for_every_account(auth: Auth) -> None:
    await auth.user()
    for n in range(20):
        with pytest.raises(InvalidGrant):
            await login(auth, email=f"spray{n}@example.com")

    with pytest.raises(TooManyAttempts):
        await login(auth, PASSWORD)
    with pytest.raises(TooManyAttempts):
        await refresh(auth, "whatever")
    assert (await login(auth, PASSWORD, peer="198.51.100.1")).access_token


async def test_refresh_rotates_and_a_reused_token_kills_the_family(auth: Auth) -> None:
    await auth.user()
    first = await login(auth)
    assert first.refresh_token

    second = await refresh(auth, first.refresh_token)
    assert second.refresh_token
    assert second.refresh_token != first.refresh_token
    assert second.scope == CUSTOMER_SCOPES

    with pytest.raises(InvalidGrant):
        await refresh(auth, first.refresh_token)
    # The thief's replay revoked the legitimate holder's newer token as well.
    with pytest.raises(InvalidGrant):
        await refresh(auth, second.refresh_token)
    assert all(t.revoked_at is not None for t in auth.db.refresh_tokens.values())


async def test_refresh_keeps_the_family_and_links_the_parent(auth: Auth) -> None:
    await auth.user()
    first = await login(auth)
    assert first.refresh_token
    await refresh(auth, first.refresh_token)

    parent, child = sorted(auth.db.refresh_tokens.values(), key=lambda t: t.parent_id is not None)
    assert child.family_id == parent.family_id
    assert child.parent_id == parent.id
    assert parent.used_at is not None
    assert child.used_at is None


async def test_refresh_scope_narrows_from_the_original_grant_only(auth: Auth) -> None:
    await auth.user()
    narrow = await login(auth, scope="catalog.read orders.read")
    assert narrow.refresh_token

    with pytest.raises(InvalidScope):
        await refresh(auth, narrow.refresh_token, scope="orders.write")
    # Asking for too much did not use up the token.
    narrower = await refresh(auth, narrow.refresh_token, scope="orders.read")
    assert narrower.scope == {"orders.read"}
    assert narrower.refresh_token
    # The rotated token keeps the scope of the grant, not of the narrowed access token.
    assert (await refresh(auth, narrower.refresh_token)).scope == {"catalog.read", "orders.read"}


async def test_unknown_expired_and_revoked_refresh_tokens_are_invalid_grants(auth: Auth) -> None:
    await auth.user()
    issued = await login(auth)
    assert issued.refresh_token

    with pytest.raises(InvalidGrant):
        await refresh(auth, "no-such-token")
    await auth.revocation.revoke(issued.refresh_token)
    with pytest.raises(InvalidGrant):
        await refresh(auth, issued.refresh_token)

    expiring = await login(auth)
    assert expiring.refresh_token
    auth.clock.advance(days=31)
    with pytest.raises(InvalidGrant):
        await refresh(auth, expiring.refresh_token)


async def test_login_rehashes_a_password_hashed_with_old_parameters(auth: Auth) -> None:
    user_id = uuid.UUID(await auth.user())
    auth.db.users[user_id].password_hash = "old$" + PASSWORD[::-1]

    await login(auth)

    assert auth.db.users[user_id].password_hash == "fake$" + PASSWORD[::-1]


async def test_a_failed_login_does_not_rehash(auth: Auth) -> None:
    user_id = uuid.UUID(await auth.user())
    auth.db.users[user_id].password_hash = "old$" + PASSWORD[::-1]

    with pytest.raises(InvalidGrant):
        await login(auth, "wrong password here")

    assert auth.db.users[user_id].password_hash == "old$" + PASSWORD[::-1]


async def test_malformed_grants_report_every_bad_field(auth: Auth) -> None:
    with pytest.raises(InvalidRequest) as raised:
        await auth.grants.password(username="", password="", scope='bad"scope', peer=PEER)
    assert {v.field for v in raised.value.violations} == {"password.username", "password.password", "scope"}

    with pytest.raises(InvalidRequest) as raised:
        await auth.grants.client_credentials(client_id="", client_secret="", scope="", peer=PEER)
    assert {v.field for v in raised.value.violations} == {
        "client_credentials.client_id",
        "client_credentials.client_secret",
    }
    with pytest.raises(InvalidRequest) as raised:
        await auth.grants.refresh(refresh_token="", scope="", peer=PEER)
    assert {v.field for v in raised.value.violations} == {"refresh_token.refresh_token"}
    assert auth.db.attempts == {}


async def test_client_credentials_grant_gives_the_clients_scopes_and_no_refresh_token(auth: Auth) -> None:
    created = await auth.clients.create(name="billing", scopes="catalog.read orders.admin")
    client_id = str(created.client.id)

    issued = await auth.grants.client_credentials(
        client_id=client_id, client_secret=created.secret, scope="", peer=PEER
    )

    assert issued.refresh_token is None
    claims = auth.tokens.read(issued.access_token)
    assert claims is not None
    assert (claims.subject, claims.client_id, claims.scope) == (
        client_id,
        client_id,
        {"catalog.read", "orders.admin"},
    )
    with pytest.raises(InvalidScope):
        await auth.grants.client_credentials(
            client_id=client_id, client_secret=created.secret, scope="auth.admin", peer=PEER
        )


@pytest.mark.parametrize("client_id", ["unknown", str(uuid.uuid4()), "not-a-uuid"])
async def test_wrong_client_credentials_fail_identically(auth: Auth, client_id: str) -> None:
    created = await auth.clients.create(name="billing", scopes="catalog.read")
    if client_id == "unknown":
        client_id, secret = str(created.client.id), "wrong secret"
    else:
        secret = created.secret

    with pytest.raises(InvalidClient) as raised:
        await auth.grants.client_credentials(client_id=client_id, client_secret=secret, scope="", peer=PEER)
    assert (raised.value.reason, raised.value.message) == ("invalid_client", InvalidClient().message)


async def test_five_failures_lock_a_client(auth: Auth) -> None:
    created = await auth.clients.create(name="billing", scopes="catalog.read")
    client_id = str(created.client.id)
    for _ in range(5):
        with pytest.raises(InvalidClient):
            await auth.grants.client_credentials(
                client_id=client_id, client_secret="nope", scope="", peer=PEER
            )
    with pytest.raises(TooManyAttempts):
        await auth.grants.client_credentials(
            client_id=client_id, client_secret=created.secret, scope="", peer=PEER
        )
