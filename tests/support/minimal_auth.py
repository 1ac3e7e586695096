"""A STAND-IN auth service for the link tests, until the real one lands on main.

It implements only what the link needs — `GetJwks`, `Token` (password, refresh and client-credentials
grants against in-memory accounts) and `GetCurrentUser` — with real Ed25519 keys and RFC 9068 access
tokens minted by PyJWT, behind the real server chain (`shared.server.GrpcServer`, the real auth
interceptor and the AuthService access rules from the descriptors). Every other RPC answers
UNIMPLEMENTED.

Once the auth service (feat/auth) is merged into main, the end-to-end link tests issue their tokens from
the real service (tests/support/auth_server.py) and this module remains only for what the real service
cannot do on demand: minting forged or deliberately broken tokens, and failing on cue.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from shared import errors
from shared.access import access_rules
from shared.config import AuthSettings
from shared.errors import FieldViolation
from shared.interceptors.auth import AuthInterceptor
from shared.jwk import public_jwk
from shared.principal import current_principal
from shared.server import GrpcServer
from shared.tokens import AccessTokenVerifier, KeySet

AUTH_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
ISSUER = "tessera-auth"
AUDIENCE = "tessera-inventory"
DOMAIN = "auth.tessera"

# Every scope of SPEC §2 (the admin role has them all).
ALL_SCOPES = frozenset(
    {
        "catalog.read",
        "catalog.write",
        "stock.write",
        "orders.read",
        "orders.write",
        "orders.admin",
        "auth.introspect",
        "auth.admin",
    }
)


class SigningKeys:
    """The stand-in's signing keys: the first signs, all are published; a KeySet mirrors them."""

    def __init__(self) -> None:
        self.private_keys: list[Ed25519PrivateKey] = [Ed25519PrivateKey.generate()]
        self.key_set = KeySet()
        self._sync()

    def _sync(self) -> None:
        self.key_set.replace((self.kid_of(key), key.public_key()) for key in self.private_keys)

    @staticmethod
    def kid_of(key: Ed25519PrivateKey) -> str:
        return public_jwk(key.public_key())["kid"]

    @property
    def current_kid(self) -> str:
        return self.kid_of(self.private_keys[0])

    def rotate(self) -> Ed25519PrivateKey:
        """Add a new key that signs from now on; the old ones stay published."""
        key = Ed25519PrivateKey.generate()
        self.private_keys.insert(0, key)
        self._sync()
        return key

    def withdraw(self, key: Ed25519PrivateKey) -> None:
        self.private_keys.remove(key)
        self._sync()

    def jwks(self) -> list[dict[str, str]]:
        return [public_jwk(key.public_key()) for key in self.private_keys]

    def mint(
        self,
        subject: str = "user-1",
        scope: Iterable[str] = ("catalog.read",),
        *,
        key: Ed25519PrivateKey | None = None,
        kid: str | None = None,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        ttl_seconds: int = 300,
        issued_at: int | None = None,
        client_id: str = "tessera",
    ) -> str:
        """An RFC 9068 access token, signed by `key` (default: the current signing key)."""
        signer = key or self.private_keys[0]
        now = int(time.time()) if issued_at is None else issued_at
        claims = {
            "iss": issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": str(uuid.uuid4()),
            "scope": " ".join(sorted(scope)),
            "client_id": client_id,
        }
        headers = {"typ": "at+jwt", "kid": kid or self.kid_of(signer)}
        return jwt.encode(claims, signer, algorithm="EdDSA", headers=headers)


@dataclass
class Account:
    secret: str
    scopes: frozenset[str]


@dataclass
class StandInAuth:
    """State and knobs of the stand-in: accounts, issued refresh tokens, what it was asked."""

    keys: SigningKeys = field(default_factory=SigningKeys)
    users: dict[str, Account] = field(default_factory=dict)
    clients: dict[str, Account] = field(default_factory=dict)
    access_token_ttl: int = 900
    # The next N access tokens are issued already expired while `expires_in` claims the full TTL: the
    # client believes them and only the resource server's refusal tells it otherwise.
    issue_expired_tokens: int = 0
    # The next N GetJwks calls answer UNAVAILABLE (with RetryInfo).
    fail_jwks: int = 0
    grants: list[str] = field(default_factory=list)
    jwks_calls: int = 0
    # The time each GetJwks call had left until its deadline when it arrived (None: no deadline).
    jwks_deadlines: list[float | None] = field(default_factory=list)
    _refresh_tokens: dict[str, str] = field(default_factory=dict)

    def add_user(self, email: str, password: str, scopes: Iterable[str]) -> None:
        self.users[email] = Account(password, frozenset(scopes))

    def add_client(self, client_id: str, secret: str, scopes: Iterable[str]) -> None:
        self.clients[client_id] = Account(secret, frozenset(scopes))

    def issue(self, subject: str, scopes: frozenset[str], *, client_id: str, refresh: bool) -> Any:
        expired = self.issue_expired_tokens > 0
        if expired:
            self.issue_expired_tokens -= 1
        issued_at = int(time.time()) - (self.access_token_ttl + 60 if expired else 0)
        access = self.keys.mint(
            subject, scopes, ttl_seconds=self.access_token_ttl, issued_at=issued_at, client_id=client_id
        )
        refresh_token = ""
        if refresh:
            refresh_token = secrets.token_urlsafe(32)
            self._refresh_tokens[refresh_token] = subject
        return auth_pb2.TokenResponse(
            access_token=access,
            token_type="Bearer",
            expires_in=self.access_token_ttl,
            refresh_token=refresh_token,
            scope=" ".join(sorted(scopes)),
        )

    def use_refresh_token(self, token: str) -> str:
        subject = self._refresh_tokens.pop(token, None)
        if subject is None:
            raise errors.Unauthenticated("the refresh token is invalid", reason="invalid_grant")
        return subject


def _narrow(allowed: frozenset[str], requested: str) -> frozenset[str]:
    if not requested.strip():
        return allowed
    wanted = frozenset(requested.split())
    if not wanted <= allowed:
        raise errors.PermissionDenied("the requested scope exceeds the grant", reason="invalid_scope")
    return wanted


class StandInAuthServicer(auth_pb2_grpc.AuthServiceServicer):  # type: ignore[misc]
    def __init__(self, state: StandInAuth) -> None:
        self.state = state

    async def GetJwks(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.state.jwks_calls += 1
        self.state.jwks_deadlines.append(context.time_remaining())
        if self.state.fail_jwks > 0:
            self.state.fail_jwks -= 1
            raise errors.Unavailable("keys are briefly unavailable", retry_after_seconds=0.1)
        return auth_pb2.GetJwksResponse(keys=[auth_pb2.Jwk(**jwk) for jwk in self.state.keys.jwks()])

    async def Token(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        state, grant = self.state, request.WhichOneof("grant")
        state.grants.append(grant or "")
        if grant == "password":
            account = state.users.get(request.password.username)
            if account is None or account.secret != request.password.password:
                raise errors.Unauthenticated("wrong username or password", reason="invalid_grant")
            scopes = _narrow(account.scopes, request.scope)
            return state.issue(request.password.username, scopes, client_id="tessera", refresh=True)
        if grant == "refresh_token":
            subject = state.use_refresh_token(request.refresh_token.refresh_token)
            scopes = _narrow(state.users[subject].scopes, request.scope)
            return state.issue(subject, scopes, client_id="tessera", refresh=True)
        if grant == "client_credentials":
            client_id = request.client_credentials.client_id
            account = state.clients.get(client_id)
            if account is None or account.secret != request.client_credentials.client_secret:
                raise errors.Unauthenticated("wrong client id or secret", reason="invalid_client")
            return state.issue(
                client_id, _narrow(account.scopes, request.scope), client_id=client_id, refresh=False
            )
        raise errors.InvalidArgument(
            violations=[
                FieldViolation("grant", "give exactly one of password, refresh_token, client_credentials")
            ],
            reason="invalid_request",
        )

    async def GetCurrentUser(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        principal = current_principal()
        assert principal is not None  # the method is not public: the interceptor set it
        return auth_pb2.User(id=principal.subject, email=principal.subject, roles=["customer"])


def stand_in_auth_server(state: StandInAuth, **settings_overrides: Any) -> GrpcServer:
    """A GrpcServer (not started) serving the stand-in behind the real interceptor chain.

    `settings_overrides` are AuthSettings fields, e.g. the TLS files.
    """
    settings = AuthSettings(
        listen="127.0.0.1:0",
        database_url="sqlite+aiosqlite:///:memory:",
        metrics_port=0,
        **settings_overrides,
    )
    verifier = AccessTokenVerifier(state.keys.key_set, issuer=ISSUER, audience=AUDIENCE)
    servicer = StandInAuthServicer(state)
    return GrpcServer(
        settings=settings,
        domain=DOMAIN,
        service_names=[AUTH_SERVICE.full_name],
        register=lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server),
        inner_interceptors=[AuthInterceptor(access_rules(AUTH_SERVICE), verifier)],
    )
