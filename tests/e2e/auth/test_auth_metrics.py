"""Grants and throttling show up on the auth service's /metrics, as an operator would watch them."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from tessera.auth.v1 import auth_pb2

from tests.support.auth_server import running_auth_server
from tests.support.ops import free_port, scrape

PASSWORD = "correct horse battery staple"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


async def test_successful_failed_and_throttled_grants_are_counted(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    async with running_auth_server(database_url, tmp_path, metrics_port=port) as auth:
        await auth.create_user("ops@example.com", PASSWORD)
        await auth.login("ops@example.com", PASSWORD)
        wrong = auth_pb2.TokenRequest(
            password=auth_pb2.PasswordGrant(username="ops@example.com", password="x" * 12)
        )
        codes = []
        for _ in range(6):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await auth.stub.Token(wrong)
            codes.append(caught.value.code())
        assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 5 + [grpc.StatusCode.RESOURCE_EXHAUSTED]

        text = await scrape(port)
    assert sample(text, "tessera_auth_grants_total", grant_type="password", result="success") == 1
    assert sample(text, "tessera_auth_grants_total", grant_type="password", result="invalid_grant") == 5
    assert sample(text, "tessera_auth_grants_total", grant_type="password", result="throttled") == 1
    assert sample(text, "tessera_auth_throttled_attempts_total", limit="account") == 1
