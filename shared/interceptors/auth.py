"""Authentication and authorization: default deny, the scope each RPC declares in its proto option.

Verification failures of every kind, including an unexpected exception inside verification, answer
UNAUTHENTICATED (fail closed); a valid token without the declared scope answers PERMISSION_DENIED.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog

from shared.access import ALWAYS_PUBLIC_SERVICES, AccessRule
from shared.errors import PermissionDenied
from shared.interceptors._handlers import wrap_handler
from shared.principal import Principal, set_principal
from shared.tokens import MAX_TOKEN_BYTES, AccessTokenVerifier, InvalidToken, UnknownKeyId

log = structlog.get_logger("tessera.auth")

# Asked when a token names a kid we do not know: refresh the key set (rate-limited) and say whether the
# set changed, so the token is verified once more.
RefreshKeys = Callable[[], Awaitable[bool]]


def bearer_token(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def service_of(method: str) -> str:
    return method[1:].split("/", 1)[0]


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Verifies the bearer token and checks the method's declared scope before the handler runs."""

    def __init__(
        self,
        rules: dict[str, AccessRule],
        verifier: AccessTokenVerifier,
        refresh_keys: RefreshKeys | None = None,
    ) -> None:
        self._rules = rules
        self._verifier = verifier
        self._refresh_keys = refresh_keys

    async def authenticate(self, metadata: Any) -> Principal:
        token = bearer_token(metadata)
        if token is None:
            raise InvalidToken("missing bearer token")
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("oversized")
        try:
            return self._verifier.verify(token)
        except UnknownKeyId:
            if self._refresh_keys is None or not await self._refresh_keys():
                raise
            return self._verifier.verify(token)
        except InvalidToken:
            raise
        except Exception as exc:
            log.error("token_verification_crashed", exc_info=exc)
            raise InvalidToken("verification failed unexpectedly") from exc

    async def authorize(self, rule: AccessRule, metadata: Any) -> None:
        if rule.public:
            return
        try:
            principal = await self.authenticate(metadata)
        except InvalidToken as exc:
            log.info("token_rejected", why=exc.why)
            raise
        set_principal(principal)
        structlog.contextvars.bind_contextvars(subject=principal.subject)
        if rule.scope and not principal.has_scope(rule.scope):
            raise PermissionDenied(f"this method needs the scope {rule.scope!r}")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        rule = self._rules.get(method)
        if rule is None:
            if service_of(method) in ALWAYS_PUBLIC_SERVICES:
                return handler
            # Registered but undeclared: the start-up check should make this impossible; deny anyway.
            rule = AccessRule(public=False, scope="\x00undeclared")
        metadata = handler_call_details.invocation_metadata

        async def unary(call: Callable[[], Awaitable[Any]], context: grpc.aio.ServicerContext) -> Any:
            await self.authorize(rule, metadata)
            return await call()

        async def stream(
            call: Callable[[], AsyncIterator[Any]], context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            await self.authorize(rule, metadata)
            async for item in call():
                yield item

        return wrap_handler(handler, unary, stream)
