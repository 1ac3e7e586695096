"""Typed errors of the client library, decoded from the `google.rpc.Status` details of a failed call.

Distinct on purpose from `shared.errors` (what servers raise): a client error that escapes into a
server's handler must not be mapped to the same status as if the server itself had decided it; it
becomes INTERNAL there unless the handler translates it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad request field (`google.rpc.BadRequest.FieldViolation`)."""

    field: str
    description: str


@dataclass(frozen=True, slots=True)
class PreconditionViolation:
    """One unmet precondition (`google.rpc.PreconditionFailure.Violation`)."""

    type: str
    subject: str
    description: str


class TesseraError(Exception):
    """A Tessera call failed. Switch on the subclass (the status) and on `reason` (`ErrorInfo.reason`)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        request_id: str = "",
        field_violations: Iterable[FieldViolation] = (),
        precondition_violations: Iterable[PreconditionViolation] = (),
        retry_delay_seconds: float | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}" + (f" ({reason})" if reason else ""))
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        # The id the servers logged this call under; quote it when reporting a problem.
        self.request_id = request_id
        self.field_violations: tuple[FieldViolation, ...] = tuple(field_violations)
        self.precondition_violations: tuple[PreconditionViolation, ...] = tuple(precondition_violations)
        # How long the server asked us to wait before trying again (`RetryInfo`), if it said.
        self.retry_delay_seconds = retry_delay_seconds

    @property
    def bad_fields(self) -> set[str]:
        return {v.field for v in self.field_violations}


class CancelledError(TesseraError):
    pass


class UnknownError(TesseraError):
    pass


class InvalidArgumentError(TesseraError):
    pass


class DeadlineExceededError(TesseraError):
    pass


class NotFoundError(TesseraError):
    pass


class AlreadyExistsError(TesseraError):
    pass


class PermissionDeniedError(TesseraError):
    pass


class ResourceExhaustedError(TesseraError):
    pass


class FailedPreconditionError(TesseraError):
    pass


class AbortedError(TesseraError):
    """A concurrent change won (stale etag, conflicting transaction): read again and retry."""


class OutOfRangeError(TesseraError):
    pass


class UnimplementedError(TesseraError):
    pass


class InternalError(TesseraError):
    pass


class UnavailableError(TesseraError):
    """The service (or one of its dependencies) is down; retried by the channel before it reaches you."""


class DataLossError(TesseraError):
    pass


class UnauthenticatedError(TesseraError):
    pass


ERROR_CLASSES: dict[grpc.StatusCode, type[TesseraError]] = {
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.UNKNOWN: UnknownError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}


def status_of(trailing_metadata: Any) -> status_pb2.Status | None:
    """The `google.rpc.Status` a server put in the trailers, if any (and if it parses)."""
    for key, value in trailing_metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except Exception:  # a malformed trailer must not hide the status code itself
                return None
    return None


def error_info_of(trailing_metadata: Any) -> error_details_pb2.ErrorInfo | None:
    status = status_of(trailing_metadata)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def error_from_status(
    code: grpc.StatusCode, message: str, trailing_metadata: Any, *, request_id: str = ""
) -> TesseraError:
    """The typed error for a failed call, with every detail Tessera servers send."""
    kwargs: dict[str, Any] = {"request_id": request_id}
    status = status_of(trailing_metadata)
    if status is not None:
        message = status.message or message
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                kwargs["reason"], kwargs["domain"] = info.reason, info.domain
            elif detail.Is(error_details_pb2.RequestInfo.DESCRIPTOR):
                request_info = error_details_pb2.RequestInfo()
                detail.Unpack(request_info)
                kwargs["request_id"] = request_info.request_id or request_id
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                kwargs["field_violations"] = [
                    FieldViolation(v.field, v.description) for v in bad_request.field_violations
                ]
            elif detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
                failure = error_details_pb2.PreconditionFailure()
                detail.Unpack(failure)
                kwargs["precondition_violations"] = [
                    PreconditionViolation(v.type, v.subject, v.description) for v in failure.violations
                ]
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                kwargs["retry_delay_seconds"] = retry.retry_delay.ToNanoseconds() / 1e9
    return ERROR_CLASSES.get(code, UnknownError)(code, message, **kwargs)


def error_from_rpc_error(error: grpc.aio.AioRpcError) -> TesseraError:
    """Translate what grpc.aio raised into the typed error; `raise … from error` keeps the original."""
    request_id = ""
    # Trailers for a failed call (answered trailers-only), headers if it failed after they were sent.
    for key, value in (*(error.initial_metadata() or ()), *(error.trailing_metadata() or ())):
        if key == "x-request-id" and isinstance(value, str):
            request_id = value
    return error_from_status(
        error.code(), error.details() or "", error.trailing_metadata(), request_id=request_id
    )
