"""Wiring of the auth service: settings → engine, keys, use cases, servicer, server."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from tessera.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_service.api.servicer import AuthServicer
from auth_service.domain.passwords import PasswordPolicy
from auth_service.domain.throttle import ThrottlePolicy
from auth_service.repository.unit_of_work import AuthSqlUnitOfWork
from auth_service.service.accounts import Accounts
from auth_service.service.grants import GrantSettings, TokenGrants
from auth_service.service.introspection import TokenIntrospection, TokenRevocation
from auth_service.service.keys import KeyRing, signing_keys_for
from auth_service.service.maintenance import Maintenance
from auth_service.service.passwords import Argon2Parameters, Argon2Passwords
from auth_service.service.ports import AuthUnitOfWork
from auth_service.service.registration import Registration, ServiceClients
from auth_service.service.tokens import JwtAccessTokens
from shared.access import access_rules
from shared.config import AuthSettings
from shared.db import create_engine, session_factory
from shared.interceptors.auth import AuthInterceptor
from shared.metrics import AuthMetrics, ServiceMetrics
from shared.server import GrpcServer, database_application_name
from shared.tokens import AccessTokenVerifier, KeySet

SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
DOMAIN = "auth.tessera"
# Expired refresh tokens, revocations and counters are deleted this often.
PURGE_INTERVAL_SECONDS = 600.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AuthCore:
    """Everything the server and the command line share, built once from the settings."""

    engine: AsyncEngine
    key_ring: KeyRing
    verifier: AccessTokenVerifier
    passwords: Argon2Passwords
    registration_passwords: Argon2Passwords
    registration: Registration
    service_clients: ServiceClients
    grants: TokenGrants
    revocation: TokenRevocation
    introspection: TokenIntrospection
    accounts: Accounts
    maintenance: Maintenance

    async def close(self) -> None:
        await self.passwords.close()
        await self.registration_passwords.close()
        await self.engine.dispose()


def build_core(settings: AuthSettings) -> AuthCore:
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        application_name=database_application_name(settings),
    )
    sessions = session_factory(engine)

    def unit_of_work() -> AuthUnitOfWork:
        return AuthSqlUnitOfWork(sessions)

    key_ring = signing_keys_for(
        settings.signing_key_file,
        development_key_file=settings.dev_signing_key_path,
        production=settings.is_production,
    )
    # The auth service verifies its own tokens (GetCurrentUser, ChangePassword, IntrospectToken) with
    # the same verifier the data service uses, fed with the keys it publishes.
    key_set = KeySet()
    key_set.replace(key_ring.public_keys())
    verifier = AccessTokenVerifier(
        key_set,
        issuer=settings.issuer,
        audience=settings.audience,
        max_lifetime_seconds=settings.access_token_ttl,
    )
    tokens = JwtAccessTokens(
        key_ring,
        verifier,
        issuer=settings.issuer,
        audience=settings.audience,
        ttl_seconds=settings.access_token_ttl,
    )
    parameters = Argon2Parameters(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )
    passwords = Argon2Passwords(parameters, max_concurrency=settings.password_hash_concurrency)
    # New accounts (Register, create-client) hash in their own threads: logins never wait behind them.
    registration_passwords = Argon2Passwords(
        parameters, max_concurrency=settings.registration_hash_concurrency
    )
    throttle = ThrottlePolicy(registration_limit=settings.registrations_per_address)
    policy = PasswordPolicy.default()
    return AuthCore(
        engine=engine,
        key_ring=key_ring,
        verifier=verifier,
        passwords=passwords,
        registration_passwords=registration_passwords,
        registration=Registration(unit_of_work, registration_passwords, policy, utc_now, throttle),
        service_clients=ServiceClients(unit_of_work, registration_passwords, utc_now),
        grants=TokenGrants(
            unit_of_work,
            passwords,
            tokens,
            utc_now,
            GrantSettings(refresh_token_ttl=timedelta(seconds=settings.refresh_token_ttl), throttle=throttle),
        ),
        revocation=TokenRevocation(unit_of_work, tokens, utc_now),
        introspection=TokenIntrospection(unit_of_work, tokens, utc_now),
        accounts=Accounts(unit_of_work, passwords, policy, utc_now),
        maintenance=Maintenance(unit_of_work, utc_now),
    )


async def create_server(settings: AuthSettings) -> GrpcServer:
    core = build_core(settings)
    metrics = ServiceMetrics()
    servicer = AuthServicer(
        registration=core.registration,
        grants=core.grants,
        revocation=core.revocation,
        introspection=core.introspection,
        accounts=core.accounts,
        key_ring=core.key_ring,
        metrics=AuthMetrics(metrics.registry),
    )
    purging = asyncio.create_task(core.maintenance.run_periodically(PURGE_INTERVAL_SECONDS))

    async def stop_purging() -> None:
        purging.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purging

    return GrpcServer(
        settings=settings,
        domain=DOMAIN,
        service_names=[SERVICE.full_name],
        register=lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server),
        inner_interceptors=[AuthInterceptor(access_rules(SERVICE), core.verifier)],
        engine=core.engine,
        metrics=metrics,
        on_stopped=[stop_purging, core.close],
    )
