from __future__ import annotations

import uuid

import pytest

from auth_service.domain.errors import (
    InvalidGrant,
    InvalidRequest,
    TooManyAttempts,
    UserNotFound,
    UserTokenRequired,
)
from auth_service.service.ports import Caller
from shared.tokens import InvalidToken
from tests.unit.auth.conftest import PASSWORD, PEER, Auth

NEW_PASSWORD = "an entirely new passphrase"


async def signed_in(auth: Auth) -> tuple[Caller, str]:
    await auth.user()
    issued = await auth.grants.password(username="ann@example.com", password=PASSWORD, scope="", peer=PEER)
    claims = auth.tokens.read(issued.access_token)
    assert claims is not None
    assert issued.refresh_token
    return Caller(claims.subject, claims.client_id, claims.token_id), issued.refresh_token


async def test_current_user_is_the_tokens_subject(auth: Auth) -> None:
    caller, _ = await signed_in(auth)
    user = await auth.accounts.current_user(caller)
    assert (str(user.id), user.email) == (caller.subject, "ann@example.com")


async def test_a_service_accounts_token_has_no_current_user(auth: Auth) -> None:
    with pytest.raises(UserTokenRequired):
        await auth.accounts.current_user(Caller(str(uuid.uuid4()), str(uuid.uuid4()), "jti"))


async def test_a_deleted_users_token_finds_no_user(auth: Auth) -> None:
    with pytest.raises(UserNotFound) as raised:
        await auth.accounts.current_user(Caller(str(uuid.uuid4()), "tessera", "jti"))
    assert raised.value.reason == "user_not_found"


async def test_a_revoked_access_token_is_refused_here_at_once(auth: Auth) -> None:
    caller, _ = await signed_in(auth)
    auth.db.revoked_access_tokens[caller.token_id] = auth.clock()
    with pytest.raises(InvalidToken):
        await auth.accounts.current_user(caller)


async def test_change_password_revokes_every_refresh_token_of_the_user(auth: Auth) -> None:
    caller, refresh_token = await signed_in(auth)
    other = await auth.grants.password(username="ann@example.com", password=PASSWORD, scope="", peer=PEER)
    assert other.refresh_token

    await auth.accounts.change_password(caller, current_password=PASSWORD, new_password=NEW_PASSWORD)

    for token in (refresh_token, other.refresh_token):
        with pytest.raises(InvalidGrant):
            await auth.grants.refresh(refresh_token=token, scope="", peer=PEER)
    with pytest.raises(InvalidGrant):
        await auth.grants.password(username="ann@example.com", password=PASSWORD, scope="", peer=PEER)
    assert await auth.grants.password(username="ann@example.com", password=NEW_PASSWORD, scope="", peer=PEER)


async def test_change_password_checks_the_current_one_and_the_policy(auth: Auth) -> None:
    caller, _ = await signed_in(auth)
    with pytest.raises(InvalidRequest) as raised:
        await auth.accounts.change_password(caller, current_password="", new_password="short")
    assert {v.field for v in raised.value.violations} == {"current_password", "new_password"}

    with pytest.raises(InvalidRequest) as raised:
        await auth.accounts.change_password(
            caller, current_password="not my password", new_password=NEW_PASSWORD
        )
    assert [v.field for v in raised.value.violations] == ["current_password"]

    with pytest.raises(InvalidRequest) as raised:
        await auth.accounts.change_password(caller, current_password=PASSWORD, new_password=PASSWORD)
    assert [v.field for v in raised.value.violations] == ["new_password"]
    # Nothing changed: the old password still works.
    assert await auth.grants.password(username="ann@example.com", password=PASSWORD, scope="", peer=PEER)


async def test_guessing_the_current_password_is_throttled(auth: Auth) -> None:
    caller, _ = await signed_in(auth)
    for _ in range(5):
        with pytest.raises(InvalidRequest):
            await auth.accounts.change_password(
                caller, current_password="a wrong guess", new_password=NEW_PASSWORD
            )
    with pytest.raises(TooManyAttempts):
        await auth.accounts.change_password(caller, current_password=PASSWORD, new_password=NEW_PASSWORD)


async def test_change_password_needs_a_users_token(auth: Auth) -> None:
    with pytest.raises(UserTokenRequired) as raised:
        await auth.accounts.change_password(
            Caller(str(uuid.uuid4()), str(uuid.uuid4()), "jti"),
            current_password=PASSWORD,
            new_password=NEW_PASSWORD,
        )
    assert raised.value.reason == "user_token_required"
