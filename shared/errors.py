"""Errors that cross layers, one class per gRPC status family.

Domain and service code raise these (or their own subclasses) and never choose a status code; the
error interceptor maps each class to its status and builds the `google.rpc.Status` details. The classes
carry only what a client may see: a safe message, a reason from the proto error enums, and the
structured details (field violations, precondition violations, retry delay).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


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
    """Base of every error a client is meant to see. `message` must be safe to send."""

    default_reason = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason


class InvalidArgument(TesseraError):
    """The request is malformed; `violations` names every bad field, not only the first."""

    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str = "the request has invalid fields",
        *,
        violations: Iterable[FieldViolation] = (),
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations: Sequence[FieldViolation] = tuple(violations)


class NotFound(TesseraError):
    default_reason = "NOT_FOUND"


class AlreadyExists(TesseraError):
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(TesseraError):
    default_reason = "FAILED_PRECONDITION"

    def __init__(
        self, message: str, *, violations: Iterable[PreconditionViolation] = (), reason: str | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations: Sequence[PreconditionViolation] = tuple(violations)


class Aborted(TesseraError):
    """A concurrent change won (stale etag, repeated serialization failures): re-read and retry."""

    default_reason = "ABORTED"


class Unauthenticated(TesseraError):
    default_reason = "invalid_token"


class PermissionDenied(TesseraError):
    default_reason = "insufficient_scope"


class ResourceExhausted(TesseraError):
    default_reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after_seconds: float, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(TesseraError):
    """A dependency is down; the client should retry after `retry_after_seconds`."""

    default_reason = "UNAVAILABLE"

    def __init__(
        self,
        message: str = "a dependency is unavailable, retry later",
        *,
        retry_after_seconds: float = 1.0,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_seconds = retry_after_seconds


class DeadlineExceeded(TesseraError):
    default_reason = "DEADLINE_EXCEEDED"


class OutOfRange(TesseraError):
    """A result (a sum, say) does not fit the range the API can express; retrying will not help."""

    default_reason = "OUT_OF_RANGE"


class Unimplemented(TesseraError):
    default_reason = "NOT_IMPLEMENTED"


class TransactionConflict(Aborted):
    """The database gave up on a transaction (serialization failure, deadlock); safe to run it again."""

    default_reason = "CONCURRENCY_CONFLICT"
