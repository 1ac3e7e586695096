"""Wiring of the data service: settings → engine, key set, use cases, servicer, server."""

from __future__ import annotations

from tessera.inventory.v1 import inventory_pb2, inventory_pb2_grpc

from data_service.api.servicer import InventoryServicer
from shared.access import access_rules
from shared.config import DataSettings
from shared.db import create_engine
from shared.interceptors.auth import AuthInterceptor
from shared.jwks import JwksKeySource
from shared.metrics import ServiceMetrics
from shared.server import GrpcServer
from shared.tokens import AccessTokenVerifier, KeySet

SERVICE = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
DOMAIN = "inventory.tessera"


async def create_server(settings: DataSettings) -> GrpcServer:
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )
    # Tokens are verified locally with the auth service's published keys; see shared/jwks.py for how
    # the keys are fetched, refreshed and kept through an auth-service outage.
    metrics = ServiceMetrics()
    key_set = KeySet()
    jwks = JwksKeySource.for_auth_service(
        settings, key_set, on_link_change=lambda up: metrics.set_dependency_up("auth", up)
    )
    await jwks.start()
    verifier = AccessTokenVerifier(key_set, issuer=settings.issuer, audience=settings.audience)
    auth = AuthInterceptor(access_rules(SERVICE), verifier, refresh_keys=jwks.refresh_for_unknown_kid)
    servicer = InventoryServicer()
    return GrpcServer(
        settings=settings,
        domain=DOMAIN,
        service_names=[SERVICE.full_name],
        register=lambda server: inventory_pb2_grpc.add_InventoryServiceServicer_to_server(servicer, server),
        inner_interceptors=[auth],
        engine=engine,
        metrics=metrics,
        on_stopped=[jwks.stop, engine.dispose],
    )
