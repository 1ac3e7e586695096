"""A STAND-IN auth service, for the few link tests that need an auth server to misbehave on cue.

Every other link test runs against the real auth service (tests/support/auth_server.py). This one only
answers `GetJwks` — with real Ed25519 keys, failing with UNAVAILABLE when told to, and recording the
deadline each call arrived with — behind the real server chain (`shared.server.GrpcServer`, the real
auth interceptor and the AuthService access rules from the descriptors). Every other RPC answers
UNIMPLEMENTED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from shared import errors
from shared.access import access_rules
from shared.config import AuthSettings
from shared.interceptors.auth import AuthInterceptor
from shared.server import GrpcServer
from shared.tokens import AccessTokenVerifier
from tests.support.signing_keys import AUDIENCE, ISSUER, SigningKeys

AUTH_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
DOMAIN = "auth.tessera"


@dataclass
class StandInAuth:
    """The stand-in's keys and knobs, and what it was asked."""

    keys: SigningKeys = field(default_factory=SigningKeys)
    # The next N GetJwks calls answer UNAVAILABLE (with RetryInfo).
    fail_jwks: int = 0
    jwks_calls: int = 0
    # The time each GetJwks call had left until its deadline when it arrived (None: no deadline).
    jwks_deadlines: list[float | None] = field(default_factory=list)


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


def stand_in_auth_server(state: StandInAuth) -> GrpcServer:
    """A GrpcServer (not started) serving the stand-in behind the real interceptor chain."""
    settings = AuthSettings(listen="127.0.0.1:0", database_url="sqlite+aiosqlite:///:memory:", metrics_port=0)
    verifier = AccessTokenVerifier(state.keys.key_set, issuer=ISSUER, audience=AUDIENCE)
    servicer = StandInAuthServicer(state)
    return GrpcServer(
        settings=settings,
        domain=DOMAIN,
        service_names=[AUTH_SERVICE.full_name],
        register=lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server),
        inner_interceptors=[AuthInterceptor(access_rules(AUTH_SERVICE), verifier)],
    )
