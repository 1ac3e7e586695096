"""`tessera-auth` as an operator runs it: the CLI verbs, and a served full flow whose logs hold no secret."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_service.app import build_core
from auth_service.domain.scopes import Role
from auth_service.migrations import SCRIPT_LOCATION
from auth_service.service.keys import write_new_key_file
from shared.config import AuthSettings
from shared.migrations import upgrade_to_head

TESSERA_AUTH = str(Path(sys.executable).with_name("tessera-auth"))
ADMIN_PASSWORD = "admin passphrase 4 tests"


def environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    key_file = tmp_path / "signing-key.pem"
    write_new_key_file(key_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "TESSERA_ENV"))}
    env.update(
        AUTH_DATABASE_URL=database_url,
        AUTH_SIGNING_KEY_FILE=str(key_file),
        AUTH_ARGON2_MEMORY_KIB="1024",
        AUTH_ARGON2_TIME_COST="1",
        AUTH_METRICS_PORT="0",
        AUTH_LISTEN="127.0.0.1:0",
        AUTH_LOG_FORMAT="json",
        AUTH_LOG_LEVEL="DEBUG",
    )
    return env


def tessera_auth(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TESSERA_AUTH, *args], input=stdin, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    await upgrade_to_head(SCRIPT_LOCATION, database_url)
    return environment(database_url, tmp_path)


def test_create_user_and_create_client(env: dict[str, str]) -> None:
    created = tessera_auth(
        env, "create-user", "--email", "Root@Example.com", "--role", "admin", stdin=ADMIN_PASSWORD + "\n"
    )
    assert created.returncode == 0, created.stderr
    user = json.loads(created.stdout)
    assert (user["email"], user["roles"]) == ("root@example.com", ["admin"])
    assert ADMIN_PASSWORD not in created.stdout + created.stderr

    client = tessera_auth(
        env, "create-client", "--name", "reporting", "--scopes", "catalog.read orders.admin"
    )
    assert client.returncode == 0, client.stderr
    printed = json.loads(client.stdout)
    assert set(printed) == {"client_id", "client_secret"}
    assert len(printed["client_secret"]) >= 43
    assert printed["client_secret"] not in client.stderr

    again = tessera_auth(env, "create-client", "--name", "reporting", "--scopes", "catalog.read")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert again.stdout == ""


def test_the_cli_refuses_bad_input_without_a_traceback(tmp_path: Path) -> None:
    env = environment(f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}", tmp_path)
    weak = tessera_auth(env, "create-user", "--email", "a@example.com", "--role", "staff", stdin="short\n")
    assert weak.returncode == 1
    assert "password: must be at least 12 characters" in weak.stderr
    assert "Traceback" not in weak.stderr

    unknown = tessera_auth(
        env, "create-user", "--email", "a@example.com", "--role", "root", stdin=ADMIN_PASSWORD
    )
    assert unknown.returncode == 2
    assert "invalid choice" in unknown.stderr

    typo = tessera_auth(env, "create-client", "--name", "other", "--scopes", "catalog.reed")
    assert typo.returncode == 1
    assert "scopes: unknown scopes" in typo.stderr


async def test_a_full_flow_logs_no_password_token_or_secret(env: dict[str, str]) -> None:
    # Made in-process (the CLI has its own test): a subprocess per account would only add start-up time.
    core = build_core(
        AuthSettings(
            database_url=env["AUTH_DATABASE_URL"],
            signing_key_file=Path(env["AUTH_SIGNING_KEY_FILE"]),
            argon2_memory_kib=1024,
            argon2_time_cost=1,
        )
    )
    try:
        await core.registration.register(
            email="root@example.com", password=ADMIN_PASSWORD, display_name="", roles=[Role.ADMIN]
        )
        created = await core.service_clients.create(name="reporting", scopes="catalog.read")
    finally:
        await core.close()
    client_id, client_secret = str(created.client.id), created.secret
    logs = ""

    server = await asyncio.create_subprocess_exec(
        TESSERA_AUTH, "serve", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert server.stdout is not None
    secrets: list[str] = [ADMIN_PASSWORD, client_secret]
    try:
        port = None
        while port is None:
            line = (await asyncio.wait_for(server.stdout.readline(), timeout=30)).decode()
            assert line, f"the server exited before it started: {logs}"
            logs += line
            if '"server_started"' in line:
                port = json.loads(line)["port"]
        secrets += await full_flow(f"127.0.0.1:{port}", client_id, client_secret)
    finally:
        server.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(server.communicate(), timeout=30)
        logs += rest.decode()
    assert server.returncode == 0, logs

    methods = set(re.findall(r'"method": "/tessera\.auth\.v1\.AuthService/(\w+)"', logs))
    assert methods >= {
        "Register",
        "Token",
        "RevokeToken",
        "IntrospectToken",
        "ChangePassword",
        "GetCurrentUser",
    }
    for secret in secrets:
        assert secret not in logs
        for part in secret.split(".")[1:]:  # a JWT's payload and signature, on their own
            assert part not in logs


async def full_flow(target: str, client_id: str, client_secret: str) -> list[str]:
    """Register, log in, fail a login, refresh, replay, introspect, revoke, change password; return every
    secret that went over the wire."""
    password, new_password, wrong = (
        "user passphrase 4 tests",
        "another passphrase 4 tests",
        "wrong passphrase guess",
    )
    async with grpc.aio.insecure_channel(target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)

        def password_grant(user: str, secret: str) -> auth_pb2.TokenRequest:
            return auth_pb2.TokenRequest(password=auth_pb2.PasswordGrant(username=user, password=secret))

        await stub.Register(
            auth_pb2.RegisterRequest(email="ann@example.com", password=password, display_name="Ann")
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Register(auth_pb2.RegisterRequest(email="bad", password="tiny", display_name=""))
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Token(password_grant("ann@example.com", wrong))
        user = await stub.Token(password_grant("ann@example.com", password))
        admin = await stub.Token(password_grant("root@example.com", ADMIN_PASSWORD))
        service = await stub.Token(
            auth_pb2.TokenRequest(
                client_credentials=auth_pb2.ClientCredentialsGrant(
                    client_id=client_id, client_secret=client_secret
                )
            )
        )
        rotated = await stub.Token(
            auth_pb2.TokenRequest(refresh_token=auth_pb2.RefreshTokenGrant(refresh_token=user.refresh_token))
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Token(
                auth_pb2.TokenRequest(
                    refresh_token=auth_pb2.RefreshTokenGrant(refresh_token=user.refresh_token)
                )
            )
        admin_auth = (("authorization", f"Bearer {admin.access_token}"),)
        await stub.IntrospectToken(
            auth_pb2.IntrospectTokenRequest(token=rotated.access_token), metadata=admin_auth
        )
        await stub.IntrospectToken(
            auth_pb2.IntrospectTokenRequest(token=service.access_token), metadata=admin_auth
        )
        await stub.RevokeToken(auth_pb2.RevokeTokenRequest(token=service.access_token))
        await stub.RevokeToken(auth_pb2.RevokeTokenRequest(token=rotated.refresh_token))
        user_auth = (("authorization", f"Bearer {rotated.access_token}"),)
        await stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=user_auth)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.ChangePassword(
                auth_pb2.ChangePasswordRequest(current_password=wrong, new_password=new_password),
                metadata=user_auth,
            )
        await stub.ChangePassword(
            auth_pb2.ChangePasswordRequest(current_password=password, new_password=new_password),
            metadata=user_auth,
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetCurrentUser(
                auth_pb2.GetCurrentUserRequest(), metadata=(("authorization", "Bearer not.a.valid-token"),)
            )
    return [
        password,
        new_password,
        wrong,
        user.access_token,
        user.refresh_token,
        rotated.access_token,
        rotated.refresh_token,
        admin.access_token,
        admin.refresh_token,
        service.access_token,
    ]
