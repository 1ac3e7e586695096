"""Wiring of the data service: settings → engine, key set, use cases, servicer, server."""

from __future__ import annotations

from tessera.inventory.v1 import inventory_pb2, inventory_pb2_grpc

from data_service.api.servicer import InventoryServicer
from data_service.repository.unit_of_work import InventoryUnitOfWork
from data_service.service.catalog import CatalogService
from data_service.service.orders import OrderService
from data_service.service.stock import StockService
from shared.access import access_rules
from shared.config import DataSettings
from shared.db import create_engine, session_factory
from shared.interceptors.auth import AuthInterceptor
from shared.server import GrpcServer
from shared.tokens import AccessTokenVerifier, KeySet

SERVICE = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
DOMAIN = "inventory.tessera"


async def create_server(settings: DataSettings, *, key_set: KeySet | None = None) -> GrpcServer:
    """The data server. `key_set`: the public keys tokens are verified with (tests pass their own)."""
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
    )
    sessions, readers = session_factory(engine), session_factory(engine, read_only=True)

    def unit_of_work(*, read_only: bool = False) -> InventoryUnitOfWork:
        return InventoryUnitOfWork(readers if read_only else sessions)

    key_set = key_set if key_set is not None else KeySet()
    verifier = AccessTokenVerifier(key_set, issuer=settings.issuer, audience=settings.audience)
    servicer = InventoryServicer(
        catalog=CatalogService(unit_of_work),
        stock=StockService(unit_of_work),
        orders=OrderService(unit_of_work),
    )
    return GrpcServer(
        settings=settings,
        domain=DOMAIN,
        service_names=[SERVICE.full_name],
        register=lambda server: inventory_pb2_grpc.add_InventoryServiceServicer_to_server(servicer, server),
        inner_interceptors=[AuthInterceptor(access_rules(SERVICE), verifier)],
        engine=engine,
        on_stopped=[engine.dispose],
    )
