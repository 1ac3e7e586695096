"""The auth service's unit of work: one session, one transaction, all repositories over it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.repository.repositories import (
    SqlClientRepository,
    SqlLoginAttemptRepository,
    SqlRefreshTokenRepository,
    SqlRevokedAccessTokenRepository,
    SqlUserRepository,
)
from shared.db import SqlAlchemyUnitOfWork


class AuthSqlUnitOfWork(SqlAlchemyUnitOfWork):
    users: SqlUserRepository
    clients: SqlClientRepository
    refresh_tokens: SqlRefreshTokenRepository
    revoked_access_tokens: SqlRevokedAccessTokenRepository
    login_attempts: SqlLoginAttemptRepository

    def _open_repositories(self, session: AsyncSession) -> None:
        self.users = SqlUserRepository(session)
        self.clients = SqlClientRepository(session)
        self.refresh_tokens = SqlRefreshTokenRepository(session)
        self.revoked_access_tokens = SqlRevokedAccessTokenRepository(session)
        self.login_attempts = SqlLoginAttemptRepository(session)
