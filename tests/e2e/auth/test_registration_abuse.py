"""Register cannot be used as an amplifier: a per-address limit the replicas share, a hashing pool of
its own so logins never queue behind registrations, and refused or throttled attempts logged as security
events naming the account. On both databases, ~5 s."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import grpc
import pytest
from tessera.auth.v1 import auth_pb2

from auth_service.app import build_core
from auth_service.migrations import SCRIPT_LOCATION
from auth_service.service.keys import write_new_key_file
from shared.config import AuthSettings
from shared.migrations import upgrade_to_head
from tests.support.auth_server import CHEAP_ARGON2, RunningAuthServer, running_auth_server
from tests.support.logs import captured_logs
from tests.support.status import details_of

PASSWORD = "correct horse battery staple"


def registration(email: str) -> auth_pb2.RegisterRequest:
    return auth_pb2.RegisterRequest(email=email, password=PASSWORD, display_name="")


async def outcome(auth: RunningAuthServer, email: str) -> str:
    try:
        await auth.stub.Register(registration(email))
    except grpc.aio.AioRpcError as error:
        return str(error.code().name)
    return "OK"


async def test_the_registration_limit_per_address_is_shared_by_two_servers_on_one_database(
    database_url: str, tmp_path: Path
) -> None:
    limit = {"registrations_per_address": 4}
    async with (
        running_auth_server(database_url, tmp_path / "a", **limit) as first,
        running_auth_server(database_url, tmp_path / "b", **limit) as second,
    ):
        servers = [first, second]
        # Alternating servers, duplicates included: each call counts wherever it lands.
        emails = ["a@example.com", "b@example.com", "a@example.com", "c@example.com"]
        outcomes = [await outcome(servers[n % 2], email) for n, email in enumerate(emails)]
        assert outcomes == ["OK", "OK", "ALREADY_EXISTS", "OK"]
        for server in servers:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await server.stub.Register(registration("d@example.com"))
            details = details_of(refused.value)
            assert (refused.value.code(), details.reason) == (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "too_many_attempts",
            )
            assert details.retry_info is not None
            assert details.retry_info.retry_delay.seconds > 0
        # The refused registrations created nobody; logins are not affected by the limit.
        assert await outcome(first, "d@example.com") == "RESOURCE_EXHAUSTED"
        assert (await second.login("a@example.com", PASSWORD)).access_token


async def test_a_login_completes_while_every_registration_thread_is_busy(
    database_url: str, tmp_path: Path
) -> None:
    await upgrade_to_head(SCRIPT_LOCATION, database_url)
    settings = AuthSettings(
        database_url=database_url,
        signing_key_file=_key(tmp_path),
        password_hash_concurrency=1,
        registration_hash_concurrency=1,
        **CHEAP_ARGON2,
    )
    core = build_core(settings)
    try:
        await core.registration.register(email="ann@example.com", password=PASSWORD, display_name="")
        release = threading.Event()
        real = core.registration_passwords._hasher  # the argon2 hasher the registration threads call

        class StuckUntilReleased:
            def hash(self, password: str) -> str:
                release.wait(timeout=60)
                return real.hash(password)

        core.registration_passwords._hasher = StuckUntilReleased()  # type: ignore[assignment]
        stuck = asyncio.ensure_future(
            core.registration.register(email="bob@example.com", password=PASSWORD, display_name="")
        )
        queued = asyncio.ensure_future(
            core.registration.register(email="cy@example.com", password=PASSWORD, display_name="")
        )
        try:
            issued = await asyncio.wait_for(
                core.grants.password(username="ann@example.com", password=PASSWORD, scope="", peer="p"),
                timeout=30,
            )
            assert issued.access_token
            # The login went through while both registrations still waited for their thread.
            assert not stuck.done()
            assert not queued.done()
        finally:
            release.set()
            await asyncio.gather(stuck, queued)
    finally:
        await core.close()


async def test_failed_and_throttled_grants_are_security_events_naming_the_account(
    database_url: str, tmp_path: Path
) -> None:
    async with running_auth_server(database_url, tmp_path) as auth:
        await auth.create_user("ann@example.com", PASSWORD)
        wrong = auth_pb2.TokenRequest(
            password=auth_pb2.PasswordGrant(username="Ann@Example.com", password="not her password!")
        )
        with captured_logs() as logs:
            codes = []
            for _ in range(6):
                try:
                    await auth.stub.Token(wrong)
                except grpc.aio.AioRpcError as error:
                    codes.append(error.code().name)
        assert codes == ["UNAUTHENTICATED"] * 5 + ["RESOURCE_EXHAUSTED"]
        failed = logs.named("security_event", kind="grant_failed", account="ann@example.com")
        throttled = logs.named("security_event", kind="grant_throttled", account="ann@example.com")
        assert (len(failed), len(throttled)) == (5, 1)
        assert failed[0]["reason"] == "invalid_grant"
        assert failed[0]["peer"] == "127.0.0.1"
        assert throttled[0]["limit"] == "account"
        assert not [event for event in logs if "not her password!" in repr(event)]


def _key(directory: Path) -> Path:
    key = directory / "signing.pem"
    write_new_key_file(key)
    return key
