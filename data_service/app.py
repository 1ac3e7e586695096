"""Wiring of the data service: settings → engine, key set, use cases, servicer, server."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tessera.inventory.v1 import inventory_pb2, inventory_pb2_grpc

from data_service.api.page_tokens import PageTokenSeal
from data_service.api.servicer import InventoryServicer
from data_service.repository.unit_of_work import InventoryUnitOfWork
from data_service.service.catalog import CatalogService
from data_service.service.orders import OrderService
from data_service.service.stock import StockService
from shared.access import access_rules
from shared.config import DataSettings
from shared.db import create_engine, session_factory
from shared.interceptors.auth import AuthInterceptor
from shared.jwks import JwksKeySource
from shared.metrics import ServiceMetrics
from shared.principal import current_principal
from shared.readiness import Prerequisite
from shared.replicas import RecentWriters, ReplicaLagProbe
from shared.server import GrpcServer, database_application_name
from shared.tokens import AccessTokenVerifier, KeySet

log = structlog.get_logger("tessera.data")
SERVICE = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"]
DOMAIN = "inventory.tessera"


def _page_token_key(settings: DataSettings) -> bytes:
    configured = settings.page_token_secret()
    if configured is not None:
        return configured
    # Production refuses to start without a key (DataSettings); a development server makes its own.
    log.warning(
        "page_token_key_generated",
        warning="DATA_PAGE_TOKEN_KEY is unset: page tokens of this process are not valid at another",
    )
    return secrets.token_bytes(32)


async def create_server(settings: DataSettings, *, key_set: KeySet | None = None) -> GrpcServer:
    """The data server. `key_set`: fixed public keys instead of the auth service's (tests pass their own)."""
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        application_name=database_application_name(settings),
    )
    sessions, readers = session_factory(engine), session_factory(engine, read_only=True)
    on_stopped: list[Callable[[], Awaitable[None]]] = [engine.dispose]
    replica = await _read_replica(settings, on_stopped)

    def unit_of_work(*, read_only: bool = False, stale_ok: bool = False) -> InventoryUnitOfWork:
        if not read_only:
            return (
                InventoryUnitOfWork(sessions)
                if replica is None
                else _RememberingWriter(sessions, replica.writers)
            )
        if stale_ok and replica is not None and replica.serves_current_caller():
            return InventoryUnitOfWork(replica.readers)
        return InventoryUnitOfWork(readers)

    metrics = ServiceMetrics()
    refresh_keys = None
    prerequisites = []
    if key_set is None:
        # No token can be verified before the auth service's keys are loaded: not SERVING until then.
        keys_loaded = Prerequisite(
            "auth_service_keys",
            f"the auth service's signing keys (GetJwks at {settings.auth_target}); until they arrive, "
            "calls with a token answer UNAVAILABLE",
        )
        prerequisites.append(keys_loaded)

        def on_link_change(up: bool) -> None:
            metrics.set_dependency_up("auth", up)
            if up:
                keys_loaded.mark_met()

        # Tokens are verified locally with the keys the auth service publishes; shared/jwks.py says how
        # they are fetched, refreshed, and kept through an auth-service outage.
        jwks = JwksKeySource.for_auth_service(settings, on_link_change=on_link_change)
        await jwks.start()
        key_set, refresh_keys = jwks.key_set, jwks.refresh_for_unknown_kid
        on_stopped.insert(0, jwks.stop)
    verifier = AccessTokenVerifier(
        key_set,
        issuer=settings.issuer,
        audience=settings.audience,
        max_lifetime_seconds=settings.access_token_max_ttl,
    )
    servicer = InventoryServicer(
        catalog=CatalogService(unit_of_work),
        stock=StockService(unit_of_work),
        orders=OrderService(unit_of_work),
        page_tokens=PageTokenSeal(_page_token_key(settings)),
    )
    return GrpcServer(
        settings=settings,
        domain=DOMAIN,
        service_names=[SERVICE.full_name],
        register=lambda server: inventory_pb2_grpc.add_InventoryServiceServicer_to_server(servicer, server),
        inner_interceptors=[AuthInterceptor(access_rules(SERVICE), verifier, refresh_keys=refresh_keys)],
        engine=engine,
        metrics=metrics,
        on_stopped=on_stopped,
        prerequisites=prerequisites,
    )


@dataclass
class _ReadReplica:
    readers: async_sessionmaker[AsyncSession]
    lag: ReplicaLagProbe
    writers: RecentWriters

    def serves_current_caller(self) -> bool:
        caller = current_principal()
        return self.lag.fresh and (caller is None or not self.writers.wrote_recently(caller.subject))


class _RememberingWriter(InventoryUnitOfWork):
    """A unit of work that, once committed, sends its caller's reads to the primary for a while."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], writers: RecentWriters) -> None:
        super().__init__(sessions)
        self._writers = writers

    async def commit(self) -> None:
        await super().commit()
        caller = current_principal()
        if caller is not None:
            self._writers.wrote(caller.subject)


async def _read_replica(
    settings: DataSettings, on_stopped: list[Callable[[], Awaitable[None]]]
) -> _ReadReplica | None:
    """The read replica of `DATA_READ_REPLICA_URL` with its lag probe, or None when unset."""
    if settings.read_replica_url is None:
        return None
    engine = create_engine(
        settings.read_replica_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        application_name=f"{database_application_name(settings)}-replica",
    )
    lag = ReplicaLagProbe(engine, settings.read_replica_max_lag_seconds)
    await lag.start()
    on_stopped.extend([lag.stop, engine.dispose])
    return _ReadReplica(
        readers=session_factory(engine, read_only=True),
        lag=lag,
        writers=RecentWriters(settings.read_your_writes_seconds),
    )
