"""The auth use cases wired to fakes: no database, no network, no argon2."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from auth_service.domain.scopes import Role
from auth_service.service.accounts import Accounts
from auth_service.service.grants import GrantSettings, TokenGrants
from auth_service.service.introspection import TokenIntrospection, TokenRevocation
from auth_service.service.maintenance import Maintenance
from auth_service.service.ports import AuthUnitOfWork
from auth_service.service.registration import Registration, ServiceClients
from auth_service.service.tokens import JwtAccessTokens
from tests.unit.auth.fakes import (
    FakeClock,
    FakeDatabase,
    FakeHasher,
    FakeUnitOfWork,
    access_tokens,
    small_policy,
)

PEER = "203.0.113.7"
PASSWORD = "a perfectly fine passphrase"


@dataclass
class Auth:
    db: FakeDatabase
    clock: FakeClock
    hasher: FakeHasher
    tokens: JwtAccessTokens
    registration: Registration
    clients: ServiceClients
    grants: TokenGrants
    revocation: TokenRevocation
    introspection: TokenIntrospection
    accounts: Accounts
    maintenance: Maintenance

    async def user(self, email: str = "ann@example.com", role: Role = Role.CUSTOMER) -> str:
        user = await self.registration.register(
            email=email, password=PASSWORD, display_name="Ann", roles=[role]
        )
        return str(user.id)


@pytest.fixture
def auth() -> Auth:
    db, clock, hasher = FakeDatabase(), FakeClock(), FakeHasher()
    tokens = access_tokens(clock)

    def uow() -> AuthUnitOfWork:
        return FakeUnitOfWork(db)

    policy = small_policy()
    return Auth(
        db=db,
        clock=clock,
        hasher=hasher,
        tokens=tokens,
        registration=Registration(uow, hasher, policy, clock),
        clients=ServiceClients(uow, hasher, clock),
        grants=TokenGrants(uow, hasher, tokens, clock, GrantSettings(refresh_token_ttl=timedelta(days=30))),
        revocation=TokenRevocation(uow, tokens, clock),
        introspection=TokenIntrospection(uow, tokens, clock),
        accounts=Accounts(uow, hasher, policy, clock),
        maintenance=Maintenance(uow, clock),
    )
