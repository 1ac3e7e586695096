"""Outbound deadlines, request ids, bearer tokens, the service config and typed errors, without I/O."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc.aio import ClientCallDetails, Metadata

from shared import errors
from shared.client import (
    AbortedError,
    BearerTokenInterceptor,
    DeadlineInterceptor,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    PreconditionViolation,
    RequestIdInterceptor,
    ResourceExhaustedError,
    RetryPolicy,
    StaticTokenSource,
    service_config,
)
from shared.client.errors import error_from_status
from shared.client.interceptors import outbound_timeout
from shared.interceptors.errors import status_for


@pytest.mark.parametrize(
    ("explicit", "inherited", "expected"),
    [
        (None, None, 10.0),  # outside an RPC, nothing asked: the default
        (None, 3.0, 3.0),  # inside an RPC: what is left of the caller's deadline
        (None, 120.0, 30.0),  # ... but never more than the maximum
        (None, -1.0, 0.0),  # the caller's deadline has passed: fail at once
        (2.0, None, 2.0),  # an explicit timeout is kept
        (20.0, 3.0, 3.0),  # ... but never outlives the running RPC
    ],
)
def test_outbound_timeout(explicit: float | None, inherited: float | None, expected: float) -> None:
    assert outbound_timeout(explicit, inherited, default=10.0, maximum=30.0) == expected


def details(
    method: str = "/tessera.inventory.v1.InventoryService/GetProduct", **metadata: str
) -> ClientCallDetails:
    return ClientCallDetails(method.encode(), None, Metadata(*metadata.items()), None, None)


async def test_outside_an_rpc_a_new_request_id_and_the_default_deadline_are_set() -> None:
    prepared = await DeadlineInterceptor(default_seconds=7).prepare(
        await RequestIdInterceptor().prepare(details())
    )

    assert len(prepared.metadata["x-request-id"]) == 32
    assert prepared.timeout == 7


async def test_a_request_id_the_caller_chose_is_kept() -> None:
    prepared = await RequestIdInterceptor().prepare(details(**{"x-request-id": "mine-1"}))

    assert prepared.metadata.get_all("x-request-id") == ["mine-1"]


async def test_the_bearer_token_goes_to_protected_methods_only() -> None:
    tokens = StaticTokenSource("tok")
    interceptor = BearerTokenInterceptor(
        lambda: tokens, public_methods={"/tessera.auth.v1.AuthService/Token"}
    )

    protected = await interceptor.prepare(details())
    public = await interceptor.prepare(details("/tessera.auth.v1.AuthService/Token"))

    assert protected.metadata["authorization"] == "Bearer tok"
    assert "authorization" not in public.metadata


def test_the_service_config_retries_unavailable_for_the_named_services() -> None:
    config = json.loads(
        service_config(["tessera.inventory.v1.InventoryService"], RetryPolicy(max_attempts=4))
    )

    [method_config] = config["methodConfig"]
    assert method_config["name"] == [{"service": "tessera.inventory.v1.InventoryService"}]
    assert method_config["retryPolicy"]["maxAttempts"] == 4
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


def typed(error: errors.TesseraError) -> object:
    """What a client makes of the status the server's error interceptor sends for `error`."""
    code, status = status_for(error, "inventory.tessera")
    trailers = (("grpc-status-details-bin", status.SerializeToString()),)
    return error_from_status(code, "", trailers)


def test_every_detail_of_a_server_error_reaches_the_typed_client_error() -> None:
    bad = typed(
        errors.InvalidArgument(
            violations=[
                errors.FieldViolation("product.sku", "too long"),
                errors.FieldViolation("price", "negative"),
            ]
        )
    )
    short = typed(
        errors.FailedPrecondition(
            "cannot serve",
            violations=[errors.PreconditionViolation("INSUFFICIENT_STOCK", "products/p1", "only 2 left")],
            reason="INSUFFICIENT_STOCK",
        )
    )
    busy = typed(errors.ResourceExhausted("slow down", retry_after_seconds=2.5, reason="too_many_attempts"))
    stale = typed(errors.Aborted("stale etag"))

    assert isinstance(bad, InvalidArgumentError)
    assert bad.field_violations == (
        FieldViolation("product.sku", "too long"),
        FieldViolation("price", "negative"),
    )
    assert bad.domain == "inventory.tessera"
    assert isinstance(short, FailedPreconditionError)
    assert short.reason == "INSUFFICIENT_STOCK"
    assert short.precondition_violations == (
        PreconditionViolation("INSUFFICIENT_STOCK", "products/p1", "only 2 left"),
    )
    assert isinstance(busy, ResourceExhaustedError)
    assert (busy.retry_delay_seconds, busy.reason) == (2.5, "too_many_attempts")
    assert isinstance(stale, AbortedError)
    assert stale.message == "stale etag"


def test_a_status_without_details_still_gives_the_typed_error() -> None:
    error = error_from_status(grpc.StatusCode.UNAVAILABLE, "connection refused", ())

    assert (type(error).__name__, error.message, error.reason) == (
        "UnavailableError",
        "connection refused",
        "",
    )
