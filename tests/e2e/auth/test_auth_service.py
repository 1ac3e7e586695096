"""The auth service over real gRPC: an in-process server on port 0, real stubs, a real database."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import grpc
import jwt
import pytest
from sqlalchemy import text
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from shared.db import create_engine
from shared.jwk import public_key_from_jwk
from tests.support.auth_server import RunningAuthServer, running_auth_server
from tests.support.status import details_of

PASSWORD = "correct horse battery staple"
CUSTOMER = "catalog.read orders.read orders.write"


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def register(
    auth: RunningAuthServer, email: str = "ann@example.com", password: str = PASSWORD
) -> auth_pb2.User:
    user: auth_pb2.User = await auth.stub.Register(
        auth_pb2.RegisterRequest(email=email, password=password, display_name="Ann")
    )
    return user


async def refresh(auth: RunningAuthServer, token: str, scope: str = "") -> auth_pb2.TokenResponse:
    response: auth_pb2.TokenResponse = await auth.stub.Token(
        auth_pb2.TokenRequest(refresh_token=auth_pb2.RefreshTokenGrant(refresh_token=token), scope=scope)
    )
    return response


async def fails(call) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


async def db_rows(auth: RunningAuthServer, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(auth.settings.database_url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(text(sql))).all()]
    finally:
        await engine.dispose()


async def test_register_login_refresh_revoke_and_verify_with_the_published_keys(
    auth: RunningAuthServer,
) -> None:
    user = await register(auth, email="  Ann@Example.COM ")
    assert (user.email, list(user.roles), user.display_name) == ("ann@example.com", ["customer"], "Ann")
    assert user.create_time.seconds > 0

    tokens = await auth.login("ann@example.com", PASSWORD)
    assert (tokens.token_type, tokens.expires_in, tokens.scope) == ("Bearer", 900, CUSTOMER)

    # RFC 9068, checked with nothing but what GetJwks publishes.
    jwks = await auth.stub.GetJwks(auth_pb2.GetJwksRequest())
    header = jwt.get_unverified_header(tokens.access_token)
    assert (header["alg"], header["typ"]) == ("EdDSA", "at+jwt")
    published = {key.kid: key for key in jwks.keys}
    key = published[header["kid"]]
    _, public_key = public_key_from_jwk(
        {"kty": key.kty, "crv": key.crv, "x": key.x, "alg": key.alg, "use": key.use}
    )
    claims = jwt.decode(
        tokens.access_token,
        public_key,
        algorithms=["EdDSA"],
        audience="tessera-inventory",
        issuer="tessera-auth",
    )
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "jti", "scope", "client_id"}
    assert (claims["sub"], claims["client_id"], claims["scope"]) == (user.id, "tessera", CUSTOMER)
    assert claims["exp"] - claims["iat"] == 900

    me = await auth.stub.GetCurrentUser(
        auth_pb2.GetCurrentUserRequest(), metadata=bearer(tokens.access_token)
    )
    assert me.id == user.id

    rotated = await refresh(auth, tokens.refresh_token, scope="catalog.read")
    assert rotated.scope == "catalog.read"
    assert rotated.refresh_token not in ("", tokens.refresh_token)

    await auth.stub.RevokeToken(auth_pb2.RevokeTokenRequest(token=rotated.refresh_token))
    error = await fails(refresh(auth, rotated.refresh_token))
    assert (error.code(), details_of(error).reason) == (grpc.StatusCode.UNAUTHENTICATED, "invalid_grant")


async def test_jwks_carries_public_members_only(auth: RunningAuthServer) -> None:
    jwks = await auth.stub.GetJwks(auth_pb2.GetJwksRequest())
    assert len(jwks.keys) == 1
    key = jwks.keys[0]
    assert {field.name for field, _ in key.ListFields()} == {"kid", "kty", "crv", "x", "alg", "use"}
    assert (key.kty, key.crv, key.alg, key.use) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert len(base64.urlsafe_b64decode(key.x + "=")) == 32


async def test_a_bad_registration_reports_every_field_and_stores_nothing(auth: RunningAuthServer) -> None:
    error = await fails(
        auth.stub.Register(auth_pb2.RegisterRequest(email="nope", password="short", display_name="x" * 201))
    )
    details = details_of(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "invalid_request"
    assert details.bad_fields == {"email", "password", "display_name"}
    assert details.request_info is not None
    assert details.request_info.request_id
    assert await db_rows(auth, "SELECT id FROM users") == []

    common = await fails(register(auth, password="Password1234"))
    assert details_of(common).bad_fields == {"password"}


async def test_an_email_registers_once(auth: RunningAuthServer) -> None:
    await register(auth)
    error = await fails(register(auth, email="ANN@example.com"))
    assert (error.code(), details_of(error).reason) == (grpc.StatusCode.ALREADY_EXISTS, "email_taken")


async def test_a_token_request_without_a_grant_is_invalid(auth: RunningAuthServer) -> None:
    error = await fails(auth.stub.Token(auth_pb2.TokenRequest(scope="catalog.read")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(error).bad_fields == {"grant"}


async def test_unknown_user_and_wrong_password_are_indistinguishable(auth: RunningAuthServer) -> None:
    await register(auth)
    same_request_id = (("x-request-id", "parity-check"),)

    async def attempt(username: str, password: str) -> grpc.aio.AioRpcError:
        request = auth_pb2.TokenRequest(password=auth_pb2.PasswordGrant(username=username, password=password))
        return await fails(auth.stub.Token(request, metadata=same_request_id))

    wrong_password = await attempt("ann@example.com", "not the password at all")
    unknown_user = await attempt("nobody@example.com", "not the password at all")

    assert wrong_password.code() == unknown_user.code() == grpc.StatusCode.UNAUTHENTICATED
    assert wrong_password.details() == unknown_user.details()
    status_of = {k: v for k, v in wrong_password.trailing_metadata() if k == "grpc-status-details-bin"}
    assert status_of == {k: v for k, v in unknown_user.trailing_metadata() if k == "grpc-status-details-bin"}
    assert details_of(unknown_user).reason == "invalid_grant"


async def test_five_failures_lock_the_account_whatever_the_password_and_success_resets(
    auth: RunningAuthServer,
) -> None:
    await register(auth)
    await register(auth, email="bob@example.com")
    # Bob: four failures, a success, four more failures and still not locked.
    for _ in range(2):
        for _ in range(4):
            await fails(auth.login("bob@example.com", "a wrong password!"))
        assert (await auth.login("bob@example.com", PASSWORD)).access_token

    for _ in range(5):
        error = await fails(auth.login("ann@example.com", "a wrong password!"))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    locked = await fails(auth.login("ann@example.com", PASSWORD))

    details = details_of(locked)
    assert locked.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.reason == "too_many_attempts"
    assert details.retry_info is not None
    assert 0 < details.retry_info.retry_delay.seconds <= 900
    rows = await db_rows(auth, "SELECT kind, attempts FROM login_attempts WHERE key = 'ann@example.com'")
    assert rows == [("account", 5)]


async def test_twenty_failures_from_one_peer_block_the_peer(auth: RunningAuthServer) -> None:
    await register(auth)
    for n in range(20):
        await fails(auth.login(f"spray{n}@example.com", "a wrong password!"))
    error = await fails(auth.login("ann@example.com", PASSWORD))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_of(error).retry_info is not None


async def test_a_reused_refresh_token_revokes_the_whole_family(auth: RunningAuthServer) -> None:
    await register(auth)
    first = await auth.login("ann@example.com", PASSWORD)
    second = await refresh(auth, first.refresh_token)

    replay = await fails(refresh(auth, first.refresh_token))
    assert (replay.code(), details_of(replay).reason) == (grpc.StatusCode.UNAUTHENTICATED, "invalid_grant")
    victim = await fails(refresh(auth, second.refresh_token))
    assert victim.code() == grpc.StatusCode.UNAUTHENTICATED
    assert await db_rows(auth, "SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL") == [(0,)]


async def test_ten_concurrent_refreshes_of_one_token_succeed_exactly_once(auth: RunningAuthServer) -> None:
    await register(auth)
    tokens = await auth.login("ann@example.com", PASSWORD)
    channels = [grpc.aio.insecure_channel(auth.target) for _ in range(10)]
    try:
        request = auth_pb2.TokenRequest(
            refresh_token=auth_pb2.RefreshTokenGrant(refresh_token=tokens.refresh_token)
        )
        results = await asyncio.gather(
            *(auth_pb2_grpc.AuthServiceStub(c).Token(request) for c in channels), return_exceptions=True
        )
    finally:
        await asyncio.gather(*(c.close() for c in channels))

    winners = [r for r in results if isinstance(r, auth_pb2.TokenResponse)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1
    assert len(losers) == 9
    assert {(e.code(), details_of(e).reason) for e in losers} == {
        (grpc.StatusCode.UNAUTHENTICATED, "invalid_grant")
    }
    # Exactly one token was ever rotated out of the original, and only once.
    assert await db_rows(auth, "SELECT count(*) FROM refresh_tokens WHERE parent_id IS NOT NULL") == [(1,)]
    assert await db_rows(auth, "SELECT count(*) FROM refresh_tokens WHERE used_at IS NOT NULL") == [(1,)]


async def test_passwords_are_stored_as_argon2id_hashes(auth: RunningAuthServer) -> None:
    await register(auth)
    [(stored,)] = await db_rows(auth, "SELECT password_hash FROM users")
    assert isinstance(stored, str)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_introspection_needs_the_scope_and_says_only_inactive_for_revoked_tokens(
    auth: RunningAuthServer,
) -> None:
    await register(auth)
    await auth.create_user("root@example.com", PASSWORD, role="admin")
    customer = await auth.login("ann@example.com", PASSWORD)
    admin = await auth.login("root@example.com", PASSWORD)

    denied = await fails(
        auth.stub.IntrospectToken(
            auth_pb2.IntrospectTokenRequest(token=customer.access_token),
            metadata=bearer(customer.access_token),
        )
    )
    assert (denied.code(), details_of(denied).reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "insufficient_scope",
    )
    anonymous = await fails(
        auth.stub.IntrospectToken(auth_pb2.IntrospectTokenRequest(token=customer.access_token))
    )
    assert (anonymous.code(), details_of(anonymous).reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid_token",
    )

    async def introspect(token: str) -> auth_pb2.IntrospectTokenResponse:
        response: auth_pb2.IntrospectTokenResponse = await auth.stub.IntrospectToken(
            auth_pb2.IntrospectTokenRequest(token=token), metadata=bearer(admin.access_token)
        )
        return response

    active = await introspect(customer.access_token)
    assert active.active
    assert (active.scope, active.client_id, active.token_type) == (CUSTOMER, "tessera", "access_token")
    assert active.expire_time.seconds - active.issue_time.seconds == 900
    refresh_info = await introspect(customer.refresh_token)
    assert (refresh_info.active, refresh_info.token_type, refresh_info.subject) == (
        True,
        "refresh_token",
        active.subject,
    )

    await auth.stub.RevokeToken(
        auth_pb2.RevokeTokenRequest(token=customer.access_token, token_type_hint="refresh_token")
    )
    await auth.stub.RevokeToken(auth_pb2.RevokeTokenRequest(token=customer.refresh_token))
    for token in (customer.access_token, customer.refresh_token, "garbage", "a.b.c"):
        assert await introspect(token) == auth_pb2.IntrospectTokenResponse(active=False)

    # This service knows about the revocation, so the revoked token no longer works here at all.
    revoked = await fails(
        auth.stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=bearer(customer.access_token))
    )
    assert revoked.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_revoking_unknown_tokens_succeeds_and_an_empty_one_is_invalid(auth: RunningAuthServer) -> None:
    for token in ("not-a-token", "eyJhbGciOiJub25lIn0.e30.", "x" * 3000):
        assert (
            await auth.stub.RevokeToken(auth_pb2.RevokeTokenRequest(token=token))
            == auth_pb2.RevokeTokenResponse()
        )
    error = await fails(auth.stub.RevokeToken(auth_pb2.RevokeTokenRequest()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(error).bad_fields == {"token"}


async def test_change_password_revokes_every_refresh_token_and_needs_a_user_token(
    auth: RunningAuthServer,
) -> None:
    await register(auth)
    phone, laptop = (
        await auth.login("ann@example.com", PASSWORD),
        await auth.login("ann@example.com", PASSWORD),
    )
    new_password = "a brand new passphrase"

    await auth.stub.ChangePassword(
        auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password=new_password),
        metadata=bearer(phone.access_token),
    )

    for session in (phone, laptop):
        error = await fails(refresh(auth, session.refresh_token))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    await fails(auth.login("ann@example.com", PASSWORD))
    assert (await auth.login("ann@example.com", new_password)).access_token

    client_id, secret = await auth.create_client("reporting", "catalog.read")
    service = await auth.stub.Token(
        auth_pb2.TokenRequest(
            client_credentials=auth_pb2.ClientCredentialsGrant(client_id=client_id, client_secret=secret)
        )
    )
    error = await fails(
        auth.stub.ChangePassword(
            auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password=new_password),
            metadata=bearer(service.access_token),
        )
    )
    assert (error.code(), details_of(error).reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "user_token_required",
    )


async def test_client_credentials_grant_and_scope_rules(auth: RunningAuthServer) -> None:
    client_id, secret = await auth.create_client("reporting", "catalog.read orders.admin")

    def grant(secret_: str, scope: str = "") -> auth_pb2.TokenRequest:
        return auth_pb2.TokenRequest(
            client_credentials=auth_pb2.ClientCredentialsGrant(client_id=client_id, client_secret=secret_),
            scope=scope,
        )

    issued = await auth.stub.Token(grant(secret, "orders.admin"))
    assert (issued.scope, issued.refresh_token) == ("orders.admin", "")
    claims = jwt.decode(issued.access_token, options={"verify_signature": False})
    assert claims["sub"] == claims["client_id"] == client_id

    widened = await fails(auth.stub.Token(grant(secret, "orders.admin auth.admin")))
    assert (widened.code(), details_of(widened).reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "invalid_scope",
    )
    wrong = await fails(auth.stub.Token(grant("not the secret")))
    assert (wrong.code(), details_of(wrong).reason) == (grpc.StatusCode.UNAUTHENTICATED, "invalid_client")
    [(stored,)] = await db_rows(auth, "SELECT secret_hash FROM service_clients")
    assert isinstance(stored, str)
    assert stored.startswith("$argon2id$")
    assert secret not in stored


async def test_other_rpcs_stay_responsive_during_a_login_storm(database_url: str, tmp_path: Path) -> None:
    # Production-grade argon2 with one hashing thread: twenty logins queue for a while.
    async with running_auth_server(
        database_url, tmp_path, argon2_memory_kib=19_456, argon2_time_cost=2, password_hash_concurrency=1
    ) as auth:
        storm = [
            asyncio.ensure_future(fails(auth.login(f"user{n}@example.com", "some wrong password")))
            for n in range(16)
        ]
        try:
            jwks = await auth.stub.GetJwks(auth_pb2.GetJwksRequest())
            assert jwks.keys
            assert not all(login.done() for login in storm)
        finally:
            errors = await asyncio.gather(*storm)
        assert {e.code() for e in errors} == {grpc.StatusCode.UNAUTHENTICATED}


async def test_ten_concurrent_guesses_get_exactly_five_password_checks(auth: RunningAuthServer) -> None:
    await register(auth)
    channels = [grpc.aio.insecure_channel(auth.target) for _ in range(10)]
    request = auth_pb2.TokenRequest(
        password=auth_pb2.PasswordGrant(username="ann@example.com", password="a wrong password!")
    )
    try:
        results = await asyncio.gather(
            *(auth_pb2_grpc.AuthServiceStub(c).Token(request) for c in channels), return_exceptions=True
        )
    finally:
        await asyncio.gather(*(c.close() for c in channels))

    codes = sorted(r.code().name for r in results if isinstance(r, grpc.aio.AioRpcError))
    assert codes == ["RESOURCE_EXHAUSTED"] * 5 + ["UNAUTHENTICATED"] * 5
    locked = await fails(auth.login("ann@example.com", PASSWORD))
    assert locked.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
