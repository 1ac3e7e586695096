"""Wiring of the auth service: settings → engine, keys, use cases, servicer, server."""

from __future__ import annotations

from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_service.api.servicer import AuthServicer
from shared.access import access_rules
from shared.config import AuthSettings
from shared.db import create_engine
from shared.interceptors.auth import AuthInterceptor
from shared.server import GrpcServer
from shared.tokens import AccessTokenVerifier, KeySet

SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
DOMAIN = "auth.tessera"


async def create_server(settings: AuthSettings) -> GrpcServer:
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )
    key_set = KeySet()
    verifier = AccessTokenVerifier(key_set, issuer=settings.issuer, audience=settings.audience)
    servicer = AuthServicer()
    return GrpcServer(
        settings=settings,
        domain=DOMAIN,
        service_names=[SERVICE.full_name],
        register=lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server),
        inner_interceptors=[AuthInterceptor(access_rules(SERVICE), verifier)],
        engine=engine,
        on_stopped=[engine.dispose],
    )
