"""The one place where exceptions become gRPC statuses with `google.rpc.Status` details.

Every non-OK status carries `ErrorInfo {reason, domain}` and `RequestInfo {request_id}`; invalid
arguments add `BadRequest`, failed preconditions `PreconditionFailure`, exhaustion and unavailability
`RetryInfo`. Unexpected exceptions become INTERNAL with a fixed message: their text, SQL and traceback go
to our log only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from shared import errors
from shared.db import translate_infrastructure_error
from shared.interceptors._handlers import refusing_undecodable, wrap_handler
from shared.interceptors.request_context import REQUEST_ID_KEY, current_request_id

log = structlog.get_logger("tessera.errors")

# Most specific first: the first class an exception is an instance of decides its status.
STATUS_OF: tuple[tuple[type[errors.TesseraError], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Aborted, grpc.StatusCode.ABORTED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.Unimplemented, grpc.StatusCode.UNIMPLEMENTED),
    (errors.OutOfRange, grpc.StatusCode.OUT_OF_RANGE),
)

INTERNAL_MESSAGE = "internal error; quote the request id when reporting it"


def status_code_of(error: errors.TesseraError) -> grpc.StatusCode:
    for cls, code in STATUS_OF:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _retry_delay(seconds: float) -> duration_pb2.Duration:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    return delay


# A status travels in the trailers, and clients refuse trailers over their metadata limit (8 KiB by
# default): a caller would get RESOURCE_EXHAUSTED instead of our error. So messages and descriptions
# (which may quote the caller's input) are clipped, and violations are listed until a budget is spent;
# `ErrorInfo.metadata["omitted_violations"]` says how many did not fit.
MAX_MESSAGE_CHARS = 512
MAX_DESCRIPTION_CHARS = 256
VIOLATIONS_BUDGET_BYTES = 3072


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _within_budget(violations: list[Any]) -> tuple[list[Any], int]:
    """The violations that fit the budget, in order, and how many were left out."""
    kept: list[Any] = []
    used = 0
    for violation in violations:
        # Each repeated entry costs its bytes plus a tag and a length prefix.
        used += violation.ByteSize() + 4
        if used > VIOLATIONS_BUDGET_BYTES:
            break
        kept.append(violation)
    return kept, len(violations) - len(kept)


def build_status(
    code: grpc.StatusCode,
    message: str,
    *,
    reason: str,
    domain: str,
    extra: list[Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> status_pb2.Status:
    details = [
        error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=metadata or {}),
        error_details_pb2.RequestInfo(request_id=current_request_id()),
        *(extra or []),
    ]
    return status_pb2.Status(
        code=getattr(code_pb2, code.name),
        message=_clip(message, MAX_MESSAGE_CHARS),
        details=[_pack(d) for d in details],
    )


def status_for(error: errors.TesseraError, domain: str) -> tuple[grpc.StatusCode, status_pb2.Status]:
    """The status code and `google.rpc.Status` (with details) that `error` means."""
    code = status_code_of(error)
    extra: list[Any] = []
    omitted = 0
    if isinstance(error, errors.InvalidArgument) and error.violations:
        field_violations, omitted = _within_budget(
            [
                error_details_pb2.BadRequest.FieldViolation(
                    field=_clip(v.field, MAX_DESCRIPTION_CHARS),
                    description=_clip(v.description, MAX_DESCRIPTION_CHARS),
                )
                for v in error.violations
            ]
        )
        extra.append(error_details_pb2.BadRequest(field_violations=field_violations))
    if isinstance(error, errors.FailedPrecondition) and error.violations:
        violations, omitted = _within_budget(
            [
                error_details_pb2.PreconditionFailure.Violation(
                    type=v.type,
                    subject=_clip(v.subject, MAX_DESCRIPTION_CHARS),
                    description=_clip(v.description, MAX_DESCRIPTION_CHARS),
                )
                for v in error.violations
            ]
        )
        extra.append(error_details_pb2.PreconditionFailure(violations=violations))
    if isinstance(error, errors.ResourceExhausted | errors.Unavailable):
        extra.append(error_details_pb2.RetryInfo(retry_delay=_retry_delay(error.retry_after_seconds)))
    metadata = {"omitted_violations": str(omitted)} if omitted else None
    return code, build_status(
        code, error.message, reason=error.reason, domain=domain, extra=extra, metadata=metadata
    )


async def abort_with_status(context: grpc.aio.ServicerContext, status: status_pb2.Status) -> None:
    """End the call with `status` in the trailers, next to the request id. Raises (AbortError)."""
    grpc_status = rpc_status.to_status(status)
    # The request id goes into the trailers: a failed call is answered trailers-only (see the request
    # context interceptor), so they are the only metadata the client gets.
    await context.abort(
        grpc_status.code,
        grpc_status.details,
        trailing_metadata=(*grpc_status.trailing_metadata, (REQUEST_ID_KEY, current_request_id())),
    )


async def abort_with_error(
    context: grpc.aio.ServicerContext, error: errors.TesseraError, domain: str
) -> None:
    """End the call with the status `error` maps to. Raises (grpc's AbortError); never returns."""
    _, status = status_for(error, domain)
    await abort_with_status(context, status)


def _as_client_error(exc: Exception) -> errors.TesseraError | None:
    if isinstance(exc, errors.TesseraError):
        return exc
    if isinstance(exc, NotImplementedError):
        # What generated servicer base classes raise for RPCs nobody implemented.
        return errors.Unimplemented("this method is not implemented")
    translated = translate_infrastructure_error(exc)
    return translated if isinstance(translated, errors.TesseraError) else None


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Maps `shared.errors` exceptions to statuses; anything unexpected to a bare INTERNAL."""

    def __init__(self, domain: str) -> None:
        self._domain = domain

    async def _fail(self, context: grpc.aio.ServicerContext, exc: Exception) -> None:
        error = _as_client_error(exc)
        if error is None:
            log.error("unhandled_exception", exc_info=exc)
            code = grpc.StatusCode.INTERNAL
            status = build_status(code, INTERNAL_MESSAGE, reason="INTERNAL", domain=self._domain)
            await abort_with_status(context, status)
            return
        if isinstance(error, errors.Unavailable):
            log.warning(
                "dependency_unavailable", error=error.message, cause=type(exc.__cause__ or exc).__name__
            )
        await abort_with_error(context, error, self._domain)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        # A request that does not even decode is bad input too: INVALID_ARGUMENT, not grpcio's UNKNOWN.
        handler = refusing_undecodable(handler)

        async def unary(call: Callable[[], Awaitable[Any]], context: grpc.aio.ServicerContext) -> Any:
            try:
                return await call()
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as exc:
                await self._fail(context, exc)
                raise AssertionError("unreachable: abort raises") from exc

        async def stream(
            call: Callable[[], AsyncIterator[Any]], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            try:
                async for item in call():
                    yield item
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as exc:
                await self._fail(context, exc)

        return wrap_handler(handler, unary, stream)
