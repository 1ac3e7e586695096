"""Decoding `google.rpc.Status` details from a failed call, as a client would."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class StatusDetails:
    code: grpc.StatusCode
    message: str
    error_info: error_details_pb2.ErrorInfo | None = None
    request_info: error_details_pb2.RequestInfo | None = None
    bad_request: error_details_pb2.BadRequest | None = None
    precondition_failure: error_details_pb2.PreconditionFailure | None = None
    retry_info: error_details_pb2.RetryInfo | None = None
    raw: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str | None:
        return self.error_info.reason if self.error_info else None

    @property
    def bad_fields(self) -> set[str]:
        return {v.field for v in self.bad_request.field_violations} if self.bad_request else set()


_KINDS = {
    "error_info": error_details_pb2.ErrorInfo,
    "request_info": error_details_pb2.RequestInfo,
    "bad_request": error_details_pb2.BadRequest,
    "precondition_failure": error_details_pb2.PreconditionFailure,
    "retry_info": error_details_pb2.RetryInfo,
}


def details_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> StatusDetails:
    """Every detail a Tessera error carries; fails the test if the status has no details at all."""
    status = rpc_status.from_call(error) if not isinstance(error, grpc.aio.AioRpcError) else _from_aio(error)
    assert status is not None, f"{error.code()} carries no google.rpc.Status details"
    result = StatusDetails(code=error.code(), message=status.message)
    for detail in status.details:
        result.raw.append(detail.type_url)
        for attribute, kind in _KINDS.items():
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                setattr(result, attribute, message)
    return result


def _from_aio(error: grpc.aio.AioRpcError):  # type: ignore[no-untyped-def]
    from google.rpc import status_pb2

    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    return None
