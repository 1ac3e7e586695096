"""The error interceptor: domain errors become precise statuses with details; nothing leaks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import structlog

from shared import errors
from shared.config import DataSettings
from shared.server import GrpcServer
from tests.support.servers import running
from tests.support.status import details_of

SECRET_TEXT = "password=hunter2 SELECT * FROM users"


def _raising(exc: Exception) -> Callable[[bytes, Any], Any]:
    async def handler(_request: bytes, _context: Any) -> bytes:
        raise exc

    return handler


def _streaming_raising(exc: Exception) -> Callable[[bytes, Any], AsyncIterator[bytes]]:
    async def handler(_request: bytes, _context: Any) -> AsyncIterator[bytes]:
        yield b"first"
        raise exc

    return handler


HANDLERS: dict[str, Exception] = {
    "NotFound": errors.NotFound("product not found", reason="NOT_FOUND"),
    "Invalid": errors.InvalidArgument(
        violations=[
            errors.FieldViolation("product.sku", "must match [A-Z0-9-_]{1,64}"),
            errors.FieldViolation("product.name", "must be 1 to 200 characters"),
        ]
    ),
    "Precondition": errors.FailedPrecondition(
        "lines cannot be served",
        reason="ORDER_NOT_SERVABLE",
        violations=[errors.PreconditionViolation("INSUFFICIENT_STOCK", "products/1", "only 2 left")],
    ),
    "Exhausted": errors.ResourceExhausted("slow down", retry_after_seconds=30, reason="too_many_attempts"),
    "Unavailable": errors.Unavailable(),
    "Crash": RuntimeError(SECRET_TEXT),
}


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    def register(server: grpc.aio.Server) -> None:
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(_raising(exc)) for name, exc in HANDLERS.items()
        }
        handlers["StreamCrash"] = grpc.unary_stream_rpc_method_handler(
            _streaming_raising(RuntimeError(SECRET_TEXT))
        )
        handlers["StreamNotFound"] = grpc.unary_stream_rpc_method_handler(
            _streaming_raising(errors.NotFound("gone", reason="NOT_FOUND"))
        )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Errors", handlers),))

    server = GrpcServer(
        settings=DataSettings(metrics_port=0), domain="test.tessera", service_names=[], register=register
    )
    async with running(server) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel


async def call(channel: grpc.aio.Channel, method: str, request_id: str = "req-42") -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary(f"/test.Errors/{method}")(b"", metadata=(("x-request-id", request_id),))
    return caught.value


async def test_not_found_carries_error_info_and_the_callers_request_id(channel: grpc.aio.Channel) -> None:
    details = details_of(await call(channel, "NotFound"))
    assert details.code == grpc.StatusCode.NOT_FOUND
    assert details.message == "product not found"
    assert details.error_info is not None
    assert (details.error_info.reason, details.error_info.domain) == ("NOT_FOUND", "test.tessera")
    assert details.request_info is not None
    assert details.request_info.request_id == "req-42"


async def test_invalid_argument_lists_every_bad_field(channel: grpc.aio.Channel) -> None:
    details = details_of(await call(channel, "Invalid"))
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.bad_fields == {"product.sku", "product.name"}


async def test_failed_precondition_carries_the_violations(channel: grpc.aio.Channel) -> None:
    details = details_of(await call(channel, "Precondition"))
    assert details.code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.precondition_failure is not None
    [violation] = details.precondition_failure.violations
    assert (violation.type, violation.subject) == ("INSUFFICIENT_STOCK", "products/1")


@pytest.mark.parametrize(
    ("method", "code", "seconds"),
    [
        ("Exhausted", grpc.StatusCode.RESOURCE_EXHAUSTED, 30),
        ("Unavailable", grpc.StatusCode.UNAVAILABLE, 1),
    ],
)
async def test_retryable_errors_tell_the_client_when_to_retry(
    channel: grpc.aio.Channel, method: str, code: grpc.StatusCode, seconds: int
) -> None:
    details = details_of(await call(channel, method))
    assert details.code == code
    assert details.retry_info is not None
    assert details.retry_info.retry_delay.seconds == seconds


async def test_unexpected_exception_is_internal_without_its_text(channel: grpc.aio.Channel) -> None:
    with structlog.testing.capture_logs() as logs:
        error = await call(channel, "Crash")
    details = details_of(error)
    assert details.code == grpc.StatusCode.INTERNAL
    assert details.reason == "INTERNAL"
    everything_sent = repr(error.details()) + repr(error.trailing_metadata()) + details.message
    assert "hunter2" not in everything_sent
    assert "SELECT" not in everything_sent
    assert "RuntimeError" not in everything_sent
    # ...while our own log keeps the traceback for whoever investigates.
    [logged] = [entry for entry in logs if entry["event"] == "unhandled_exception"]
    assert "hunter2" in repr(logged["exc_info"])


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("StreamCrash", grpc.StatusCode.INTERNAL),
        ("StreamNotFound", grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_streaming_handlers_are_mapped_too(
    channel: grpc.aio.Channel, method: str, code: grpc.StatusCode
) -> None:
    stream = channel.unary_stream(f"/test.Errors/{method}")(b"")
    assert await stream.read() == b"first"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream.read()
    details = details_of(caught.value)
    assert details.code == code
    assert "hunter2" not in details.message
