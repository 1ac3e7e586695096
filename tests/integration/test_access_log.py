"""Production logs: JSON lines, one `rpc` event per call with its shape, and never a secret."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
GET_CURRENT_USER = "/tessera.auth.v1.AuthService/GetCurrentUser"
# Shaped like a JWT so that nothing rejects it before the auth interceptor has seen it.
FORGED_TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJtYWxsb3J5In0.forged-signature-that-must-stay-secret"


async def test_every_call_logs_one_json_rpc_line_without_any_token(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AUTH_LOG_FORMAT": "json",
        "AUTH_LISTEN": "127.0.0.1:0",
        "AUTH_METRICS_PORT": "0",
        "AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.json_log_server",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        ready = json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=30))
        token = ready["token"]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ready['port']}") as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            user = await auth.GetCurrentUser(
                auth_pb2.GetCurrentUserRequest(),
                metadata=(("authorization", f"Bearer {token}"), ("x-request-id", "req-log-1")),
            )
            assert user.id == "user-42"
            with pytest.raises(grpc.aio.AioRpcError) as rejected:
                await auth.GetCurrentUser(
                    auth_pb2.GetCurrentUserRequest(),
                    metadata=(("authorization", f"Bearer {FORGED_TOKEN}"), ("x-request-id", "req-log-2")),
                )
            assert rejected.value.code() is grpc.StatusCode.UNAUTHENTICATED
            # A public method with a token attached: the token is not even verified, let alone logged.
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(),
                metadata=(("authorization", f"Bearer {token}"), ("x-request-id", "req-log-3")),
            )
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        stderr = (await asyncio.wait_for(process.stderr.read(), timeout=30)).decode()
        await asyncio.wait_for(process.wait(), timeout=30)
    assert process.returncode == 0, stderr

    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    rpc_lines = {line["request_id"]: line for line in lines if line["event"] == "rpc"}
    assert set(rpc_lines) == {"req-log-1", "req-log-2", "req-log-3"}
    for line in rpc_lines.values():
        assert {
            "request_id",
            "method",
            "code",
            "duration_ms",
            "subject",
            "peer",
            "level",
            "timestamp",
        } <= set(line)
        assert isinstance(line["duration_ms"], int | float)
        assert line["duration_ms"] >= 0
        assert "127.0.0.1" in line["peer"]
        assert line["level"] == "info"
    served = rpc_lines["req-log-1"]
    assert (served["method"], served["code"], served["subject"]) == (GET_CURRENT_USER, "OK", "user-42")
    assert rpc_lines["req-log-2"]["code"] == "UNAUTHENTICATED"
    assert rpc_lines["req-log-2"]["subject"] is None
    assert rpc_lines["req-log-3"]["method"] == "/grpc.health.v1.Health/Check"
    assert rpc_lines["req-log-3"]["subject"] is None
    # The rejection is explained in our log, tied to its request, without repeating the token.
    rejections = [line for line in lines if line["event"] == "token_rejected"]
    assert [line["request_id"] for line in rejections] == ["req-log-2"]

    for secret in (token, FORGED_TOKEN, *token.split("."), *FORGED_TOKEN.split(".")[1:]):
        assert secret not in stderr
