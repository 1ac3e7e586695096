"""TLS and mTLS on real servers, with certificates made by the test's own CA."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pydantic import ValidationError
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from shared import healthcheck
from shared.config import AuthSettings, DataSettings
from shared.server import GrpcServer
from shared.tls import TlsConfigurationError, channel_credentials
from tests.support.certs import TlsFiles, localhost_tls_files
from tests.support.ops import AUTH_SERVICE, build_server, free_port, health_status
from tests.support.servers import running
from tests.support.tokens import TokenMinter

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return localhost_tls_files(tmp_path_factory.mktemp("tls"))


def tls_settings(tls: TlsFiles, *, mutual: bool) -> AuthSettings:
    return AuthSettings(
        listen="127.0.0.1:0",
        metrics_port=0,
        tls_cert_file=tls.server.cert_file,
        tls_key_file=tls.server.key_file,
        tls_client_ca_file=tls.ca_file if mutual else None,
    )


@pytest.fixture
async def minter() -> TokenMinter:
    return TokenMinter()


@pytest.fixture
async def tls_server(tls_files: TlsFiles, minter: TokenMinter) -> AsyncIterator[tuple[GrpcServer, int]]:
    server = build_server(tls_settings(tls_files, mutual=False), minter)
    async with running(server) as port:
        yield server, port


@pytest.fixture
async def mtls_server(tls_files: TlsFiles, minter: TokenMinter) -> AsyncIterator[tuple[GrpcServer, int]]:
    server = build_server(tls_settings(tls_files, mutual=True), minter)
    async with running(server) as port:
        yield server, port


async def list_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for answer in stub.ServerReflectionInfo(iter([request])):
        return {service.name for service in answer.list_services_response.service}
    raise AssertionError("reflection gave no answer")


async def refused(channel: grpc.aio.Channel) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await health_status(channel)
    return failure.value.code()


async def test_a_plaintext_client_is_refused_by_a_tls_server(tls_server: tuple[GrpcServer, int]) -> None:
    _, port = tls_server
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        assert await refused(channel) is grpc.StatusCode.UNAVAILABLE


async def test_a_tls_client_trusting_the_ca_is_served(
    tls_server: tuple[GrpcServer, int], tls_files: TlsFiles
) -> None:
    _, port = tls_server
    credentials = channel_credentials(tls_files.ca_file)
    async with grpc.aio.secure_channel(f"localhost:{port}", credentials) as channel:
        assert await health_status(channel) == SERVING
        assert AUTH_SERVICE.full_name in await list_services(channel)


async def test_a_client_that_does_not_trust_the_servers_ca_gives_up(
    tls_server: tuple[GrpcServer, int],
) -> None:
    _, port = tls_server
    # The system's roots: the test CA is not among them, so the server's certificate is not believed.
    async with grpc.aio.secure_channel(f"localhost:{port}", channel_credentials(None)) as channel:
        assert await refused(channel) is grpc.StatusCode.UNAVAILABLE


async def test_under_mtls_a_client_without_a_certificate_is_refused(
    mtls_server: tuple[GrpcServer, int], tls_files: TlsFiles
) -> None:
    _, port = mtls_server
    async with grpc.aio.secure_channel(
        f"localhost:{port}", channel_credentials(tls_files.ca_file)
    ) as channel:
        assert await refused(channel) is grpc.StatusCode.UNAVAILABLE


async def test_under_mtls_a_certificate_from_another_ca_is_refused(
    mtls_server: tuple[GrpcServer, int], tls_files: TlsFiles
) -> None:
    _, port = mtls_server
    stranger = channel_credentials(
        tls_files.ca_file, tls_files.stranger.cert_file, tls_files.stranger.key_file
    )
    async with grpc.aio.secure_channel(f"localhost:{port}", stranger) as channel:
        assert await refused(channel) is grpc.StatusCode.UNAVAILABLE


async def test_over_mtls_health_reflection_and_an_authenticated_call_work(
    mtls_server: tuple[GrpcServer, int], tls_files: TlsFiles, minter: TokenMinter
) -> None:
    _, port = mtls_server
    # The data service builds its channel to the auth service from exactly these settings.
    data_settings = DataSettings(
        auth_target=f"localhost:{port}",
        auth_tls_ca_file=tls_files.ca_file,
        auth_tls_cert_file=tls_files.client.cert_file,
        auth_tls_key_file=tls_files.client.key_file,
    )
    credentials = channel_credentials(
        data_settings.auth_tls_ca_file, data_settings.auth_tls_cert_file, data_settings.auth_tls_key_file
    )
    async with grpc.aio.secure_channel(data_settings.auth_target, credentials) as channel:
        assert await health_status(channel) == SERVING
        assert AUTH_SERVICE.full_name in await list_services(channel)
        user = await auth_pb2_grpc.AuthServiceStub(channel).GetCurrentUser(
            auth_pb2.GetCurrentUserRequest(),
            metadata=(("authorization", f"Bearer {minter.mint('user-over-mtls', [])}"),),
        )
        assert user.id == "user-over-mtls"


async def test_the_container_health_check_speaks_mtls(
    mtls_server: tuple[GrpcServer, int], tls_files: TlsFiles
) -> None:
    server, port = mtls_server
    tls_args = ["--tls-ca-file", str(tls_files.ca_file), "--tls-server-name", "localhost"]
    client_cert = ["--tls-cert-file", str(tls_files.client.cert_file)]
    client_key = ["--tls-key-file", str(tls_files.client.key_file)]
    address = f"127.0.0.1:{port}"

    async def exit_code(*args: str) -> int:
        # The health check is a blocking command-line client; it runs beside the server's loop.
        return await asyncio.to_thread(healthcheck.main, [address, *args])

    assert await exit_code(*tls_args, *client_cert, *client_key) == 0
    assert await exit_code(*tls_args) == 1
    assert await exit_code() == 1
    await server.set_serving(False)
    assert await exit_code(*tls_args, *client_cert, *client_key) == 1


async def test_the_health_check_fails_when_nothing_listens() -> None:
    code = await asyncio.to_thread(healthcheck.main, [f"127.0.0.1:{free_port()}", "--timeout", "1"])
    assert code == 1


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"AUTH_TLS_CERT_FILE": "cert.pem"}, "AUTH_TLS_CERT_FILE and AUTH_TLS_KEY_FILE must be set together"),
        ({"AUTH_TLS_KEY_FILE": "key.pem"}, "AUTH_TLS_CERT_FILE and AUTH_TLS_KEY_FILE must be set together"),
        ({"AUTH_TLS_CLIENT_CA_FILE": "ca.pem"}, "AUTH_TLS_CLIENT_CA_FILE needs AUTH_TLS_CERT_FILE"),
    ],
)
def test_half_configured_tls_is_refused_instead_of_serving_plaintext(
    env: dict[str, str], complaint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=complaint):
        AuthSettings()


def test_the_data_services_client_certificate_needs_its_key_and_a_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_AUTH_TLS_CERT_FILE", "client.pem")
    with pytest.raises(ValidationError, match="must be set together"):
        DataSettings()
    monkeypatch.setenv("DATA_AUTH_TLS_KEY_FILE", "client-key.pem")
    with pytest.raises(ValidationError, match="needs DATA_AUTH_TLS_CA_FILE"):
        DataSettings()


def test_channel_credentials_refuse_a_certificate_without_its_key(tls_files: TlsFiles) -> None:
    with pytest.raises(TlsConfigurationError):
        channel_credentials(tls_files.ca_file, cert_file=tls_files.client.cert_file)
