"""AuthService servicer: converts protos to use-case calls and results back to protos."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import unquote

import grpc
import structlog
from google.protobuf.timestamp_pb2 import Timestamp
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_service.domain.errors import InvalidRequest, TooManyAttempts
from auth_service.domain.scopes import format_scope
from auth_service.domain.tokens import IssuedTokens
from auth_service.domain.users import User, normalize_email
from auth_service.service.accounts import Accounts
from auth_service.service.grants import TokenGrants
from auth_service.service.introspection import TokenIntrospection, TokenRevocation
from auth_service.service.keys import KeyRing
from auth_service.service.ports import Caller
from auth_service.service.registration import Registration
from shared.errors import FieldViolation, TesseraError
from shared.metrics import AuthMetrics
from shared.principal import current_principal
from shared.tokens import InvalidToken

# Counter keys are at most this long; a peer string never is in practice.
_MAX_PEER_LENGTH = 320
# Brute force against one account must be visible in the logs, not only in a metric: every refused or
# throttled grant and registration is a `security_event` naming the account it targeted (never a
# password or a secret).
security_log = structlog.get_logger("tessera.auth.security")


def peer_address(peer: str | None) -> str:
    """The caller's address without its port: brute-force limits count per host, not per connection.

    gRPC writes peers as `ipv4:203.0.113.7:50123`, `ipv6:[2001:db8::1]:50123` (sometimes
    percent-encoded) or `unix:/path`.
    """
    text = unquote(peer or "")
    kind, _, address = text.partition(":")
    if kind in ("ipv4", "ipv6") and address:
        host = address.rsplit(":", 1)[0] if address.count(":") and not address.endswith("]") else address
        text = host.strip("[]")
    return (text or "unknown")[:_MAX_PEER_LENGTH]


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _user_message(user: User) -> auth_pb2.User:
    return auth_pb2.User(
        id=str(user.id),
        email=user.email,
        display_name=user.display_name,
        roles=sorted(role.value for role in user.roles),
        create_time=_timestamp(user.created_at),
    )


def _token_response(issued: IssuedTokens) -> auth_pb2.TokenResponse:
    return auth_pb2.TokenResponse(
        access_token=issued.access_token,
        token_type="Bearer",  # noqa: S106 - the OAuth2 token type name, not a secret
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token or "",
        scope=format_scope(issued.scope),
    )


def _account_name(name: str) -> str:
    # What the client sent, cut short and with control characters escaped: it may be an attack string.
    return repr(name[:_MAX_PEER_LENGTH])[1:-1]


def _targeted_account(request: auth_pb2.TokenRequest, grant: str) -> str:
    """The account a grant tried to get into: the username or the client id (never the secret).

    A refresh token names no account until it is found; its grant logs none.
    """
    if grant == "password":
        return _account_name(normalize_email(request.password.username))
    if grant == "client_credentials":
        return _account_name(request.client_credentials.client_id)
    return ""


def _caller() -> Caller:
    principal = current_principal()
    if principal is None:
        # The auth interceptor sets a principal for every non-public RPC; fail closed regardless.
        raise InvalidToken("no principal")
    return Caller(subject=principal.subject, client_id=principal.client_id, token_id=principal.token_id)


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    """Each RPC: proto → use case → proto. Errors propagate to the error interceptor."""

    def __init__(
        self,
        *,
        registration: Registration,
        grants: TokenGrants,
        revocation: TokenRevocation,
        introspection: TokenIntrospection,
        accounts: Accounts,
        key_ring: KeyRing,
        metrics: AuthMetrics | None = None,
    ) -> None:
        self._registration = registration
        self._grants = grants
        self._revocation = revocation
        self._introspection = introspection
        self._accounts = accounts
        self._key_ring = key_ring
        self._metrics = metrics or AuthMetrics()

    async def Register(
        self, request: auth_pb2.RegisterRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.User:
        peer = peer_address(context.peer())
        try:
            user = await self._registration.register(
                email=request.email,
                password=request.password,
                display_name=request.display_name,
                peer=peer,
            )
        except TooManyAttempts as exc:
            self._metrics.throttled(exc.limit)
            security_log.warning(
                "security_event",
                kind="registration_throttled",
                account=_account_name(normalize_email(request.email)),
                peer=peer,
                retry_after_seconds=exc.retry_after_seconds,
            )
            raise
        return _user_message(user)

    async def Token(
        self, request: auth_pb2.TokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.TokenResponse:
        grant = request.WhichOneof("grant") or "none"
        peer = peer_address(context.peer())
        try:
            response = await self._grant(request, grant, peer)
        except TooManyAttempts as exc:
            self._metrics.grant(grant, "throttled")
            self._metrics.throttled(exc.limit)
            security_log.warning(
                "security_event",
                kind="grant_throttled",
                grant=grant,
                account=_targeted_account(request, grant),
                peer=peer,
                limit=exc.limit,
                retry_after_seconds=exc.retry_after_seconds,
            )
            raise
        except TesseraError as exc:
            self._metrics.grant(grant, exc.reason)
            security_log.warning(
                "security_event",
                kind="grant_failed",
                grant=grant,
                account=_targeted_account(request, grant),
                peer=peer,
                reason=exc.reason,
            )
            raise
        self._metrics.grant(grant, "success")
        return response

    async def _grant(self, request: auth_pb2.TokenRequest, grant: str, peer: str) -> auth_pb2.TokenResponse:
        if grant == "password":
            issued = await self._grants.password(
                username=request.password.username,
                password=request.password.password,
                scope=request.scope,
                peer=peer,
            )
        elif grant == "refresh_token":
            issued = await self._grants.refresh(
                refresh_token=request.refresh_token.refresh_token, scope=request.scope, peer=peer
            )
        elif grant == "client_credentials":
            issued = await self._grants.client_credentials(
                client_id=request.client_credentials.client_id,
                client_secret=request.client_credentials.client_secret,
                scope=request.scope,
                peer=peer,
            )
        else:
            raise InvalidRequest(
                [FieldViolation("grant", "set one of password, refresh_token or client_credentials")]
            )
        return _token_response(issued)

    async def RevokeToken(
        self, request: auth_pb2.RevokeTokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RevokeTokenResponse:
        await self._revocation.revoke(request.token)
        return auth_pb2.RevokeTokenResponse()

    async def IntrospectToken(
        self, request: auth_pb2.IntrospectTokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.IntrospectTokenResponse:
        info = await self._introspection.introspect(request.token)
        if info is None:
            return auth_pb2.IntrospectTokenResponse(active=False)
        return auth_pb2.IntrospectTokenResponse(
            active=True,
            subject=info.subject,
            scope=format_scope(info.scope),
            client_id=info.client_id,
            token_id=info.token_id,
            expire_time=_timestamp(info.expires_at),
            issue_time=_timestamp(info.issued_at),
            token_type=info.token_type.value,
        )

    async def GetJwks(
        self, request: auth_pb2.GetJwksRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.GetJwksResponse:
        return auth_pb2.GetJwksResponse(keys=[auth_pb2.Jwk(**jwk) for jwk in self._key_ring.jwks()])

    async def GetCurrentUser(
        self, request: auth_pb2.GetCurrentUserRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.User:
        return _user_message(await self._accounts.current_user(_caller()))

    async def ChangePassword(
        self, request: auth_pb2.ChangePasswordRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ChangePasswordResponse:
        await self._accounts.change_password(
            _caller(), current_password=request.current_password, new_password=request.new_password
        )
        return auth_pb2.ChangePasswordResponse()
