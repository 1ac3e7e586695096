"""Outermost interceptor: request id, log context, and one `rpc` access-log event per call."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc
import structlog

from shared.deadlines import start_deadline
from shared.interceptors._handlers import wrap_handler
from shared.principal import current_principal, set_principal

REQUEST_ID_KEY = "x-request-id"
# What we accept from a caller as its request id; anything else is replaced, never logged verbatim.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_request_id: ContextVar[str] = ContextVar("tessera_request_id", default="")
log = structlog.get_logger("tessera.access")


def current_request_id() -> str:
    """The id of the running RPC ('' outside of one)."""
    return _request_id.get()


def request_id_from(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and _VALID_REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


def _code_name(context: grpc.aio.ServicerContext, failed: bool) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    # No code was set: the handler returned (OK) or raised past every interceptor (UNKNOWN).
    return "UNKNOWN" if failed else "OK"


class RequestContextInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Gives every call a request id (the caller's or a new one), echoes it, and logs the call once."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        request_id = request_id_from(handler_call_details.invocation_metadata)

        def begin(context: grpc.aio.ServicerContext) -> tuple[float, str]:
            _request_id.set(request_id)
            # What the database and outbound calls may spend on this call's behalf (shared/deadlines.py).
            start_deadline(context.time_remaining())
            set_principal(None)
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(request_id=request_id, method=method)
            # Read now: a stream whose client went away may be finished after grpc freed the call, and
            # asking a freed call for its peer crashes the process.
            return time.perf_counter(), context.peer()

        def finish(context: grpc.aio.ServicerContext, begun: tuple[float, str], failed: bool) -> None:
            started, peer = begun
            principal = current_principal()
            log.info(
                "rpc",
                code=_code_name(context, failed),
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                peer=peer,
                subject=principal.subject if principal else None,
            )

        # Response headers (with the echoed request id) go out only with a success. A failure is then
        # answered trailers-only, the error interceptor putting the request id into the trailers: once a
        # client has seen headers the call is committed and its service config may not retry it
        # (gRFC A6), so eager headers would make every UNAVAILABLE we answer unretryable.
        echo = ((REQUEST_ID_KEY, request_id),)

        async def unary(call: Callable[[], Awaitable[Any]], context: grpc.aio.ServicerContext) -> Any:
            begun = begin(context)
            failed = True
            try:
                response = await call()
                failed = False
            finally:
                finish(context, begun, failed)
            await context.send_initial_metadata(echo)
            return response

        async def stream(
            call: Callable[[], AsyncIterator[Any]], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            begun = begin(context)
            failed = True
            headers_sent = False
            try:
                async for item in call():
                    if not headers_sent:
                        await context.send_initial_metadata(echo)
                        headers_sent = True
                    yield item
                failed = False
            finally:
                finish(context, begun, failed)
            if not headers_sent:
                await context.send_initial_metadata(echo)

        return wrap_handler(handler, unary, stream)
