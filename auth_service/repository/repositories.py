"""SQLAlchemy implementations of the service layer's repository Protocols.

Repositories flush and never commit: the unit of work that the use case opened owns the transaction.
Integrity errors that mean something to a client become domain errors here, where the constraints are
known.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, literal, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.domain.errors import ClientNameTaken, EmailTaken
from auth_service.domain.scopes import Role, format_scope, parse_scope
from auth_service.domain.throttle import AttemptCount, AttemptKind
from auth_service.domain.tokens import RefreshToken
from auth_service.domain.users import ServiceClient, User
from auth_service.repository.models import (
    LoginAttemptRow,
    RefreshTokenRow,
    RevokedAccessTokenRow,
    ServiceClientRow,
    UserRoleRow,
    UserRow,
)
from shared.sqltypes import UtcDateTime


def violates_unique(exc: IntegrityError, constraint: str, column: str) -> bool:
    """Whether `exc` is a unique violation of `constraint` (PostgreSQL) or on `table.column` (SQLite)."""
    orig = getattr(exc, "orig", None)
    cause = getattr(orig, "__cause__", None)
    for candidate in (orig, cause):
        if getattr(candidate, "constraint_name", None) == constraint:
            return True
    return f"UNIQUE constraint failed: {column}" in str(orig)


def _insert_for(session: AsyncSession) -> Any:
    """The dialect's INSERT construct, for `ON CONFLICT` (same SQL on PostgreSQL and SQLite)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _rowcount(result: Any) -> int:
    return int(result.rowcount or 0)


class SqlUserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, user: User) -> None:
        """Insert the user and its roles; `EmailTaken` when the email is registered already."""
        self._session.add(
            UserRow(
                id=user.id,
                email=user.email,
                display_name=user.display_name,
                password_hash=user.password_hash,
                created_at=user.created_at,
                password_changed_at=user.password_changed_at,
                roles=[UserRoleRow(user_id=user.id, role=role.value) for role in sorted(user.roles)],
            )
        )
        try:
            await self._session.flush()
        except IntegrityError as exc:
            if violates_unique(exc, "uq_users_email", "users.email"):
                raise EmailTaken() from exc
            raise

    async def get(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, or None."""
        row = await self._session.scalar(select(UserRow).where(UserRow.id == user_id))
        return _user(row) if row is not None else None

    async def get_by_email(self, normalized_email: str) -> User | None:
        """The user with this normalized email (an index lookup on the unique constraint), or None."""
        row = await self._session.scalar(select(UserRow).where(UserRow.email == normalized_email))
        return _user(row) if row is not None else None

    async def replace_password_hash(
        self, user_id: uuid.UUID, expected_hash: str, new_hash: str, changed_at: datetime | None
    ) -> bool:
        """Compare-and-set of the password hash; False when it changed since it was read."""
        values: dict[str, Any] = {"password_hash": new_hash}
        if changed_at is not None:
            values["password_changed_at"] = changed_at
        result = await self._session.execute(
            update(UserRow)
            .where(UserRow.id == user_id, UserRow.password_hash == expected_hash)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        password_hash=row.password_hash,
        roles=frozenset(Role(r.role) for r in row.roles),
        created_at=row.created_at,
        password_changed_at=row.password_changed_at,
    )


class SqlClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, client: ServiceClient) -> None:
        """Insert a service client; `ClientNameTaken` when the name is taken."""
        self._session.add(
            ServiceClientRow(
                id=client.id,
                name=client.name,
                secret_hash=client.secret_hash,
                scopes=format_scope(client.scopes),
                created_at=client.created_at,
            )
        )
        try:
            await self._session.flush()
        except IntegrityError as exc:
            if violates_unique(exc, "uq_service_clients_name", "service_clients.name"):
                raise ClientNameTaken() from exc
            raise

    async def get(self, client_id: uuid.UUID) -> ServiceClient | None:
        """The service client with this id, or None."""
        row = await self._session.get(ServiceClientRow, client_id)
        if row is None:
            return None
        return ServiceClient(
            id=row.id,
            name=row.name,
            secret_hash=row.secret_hash,
            scopes=parse_scope(row.scopes),
            created_at=row.created_at,
        )

    async def replace_secret_hash(self, client_id: uuid.UUID, expected_hash: str, new_hash: str) -> bool:
        """Compare-and-set of the secret hash."""
        result = await self._session.execute(
            update(ServiceClientRow)
            .where(ServiceClientRow.id == client_id, ServiceClientRow.secret_hash == expected_hash)
            .values(secret_hash=new_hash)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1


class SqlRefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, token: RefreshToken) -> None:
        """Insert a refresh token by its hash."""
        self._session.add(
            RefreshTokenRow(
                id=token.id,
                token_hash=token.token_hash,
                family_id=token.family_id,
                parent_id=token.parent_id,
                user_id=token.user_id,
                scope=format_scope(token.scope),
                issued_at=token.issued_at,
                expires_at=token.expires_at,
                used_at=token.used_at,
                revoked_at=token.revoked_at,
            )
        )
        await self._session.flush()

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        """The token with this hash (an index lookup on the unique constraint), or None."""
        row = await self._session.scalar(
            select(RefreshTokenRow).where(RefreshTokenRow.token_hash == token_hash)
        )
        if row is None:
            return None
        return RefreshToken(
            id=row.id,
            token_hash=row.token_hash,
            family_id=row.family_id,
            parent_id=row.parent_id,
            user_id=row.user_id,
            scope=parse_scope(row.scope),
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
            revoked_at=row.revoked_at,
        )

    async def claim(self, token_id: uuid.UUID, now: datetime) -> bool:
        """One conditional UPDATE: True only for the caller whose update changed the row.

        PostgreSQL makes a concurrent second UPDATE wait for the first and then re-check the WHERE
        clause against the committed row (`used_at` is set by then), so it changes nothing; SQLite
        serializes writers outright.
        """
        result = await self._session.execute(
            update(RefreshTokenRow)
            .where(
                RefreshTokenRow.id == token_id,
                RefreshTokenRow.used_at.is_(None),
                RefreshTokenRow.revoked_at.is_(None),
                RefreshTokenRow.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> int:
        """Revoke every token of the family not revoked yet."""
        result = await self._session.execute(
            update(RefreshTokenRow)
            .where(RefreshTokenRow.family_id == family_id, RefreshTokenRow.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def revoke_all_of_user(self, user_id: uuid.UUID, now: datetime) -> int:
        """Revoke every token of the user not revoked yet."""
        result = await self._session.execute(
            update(RefreshTokenRow)
            .where(RefreshTokenRow.user_id == user_id, RefreshTokenRow.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def delete_expired(self, now: datetime) -> int:
        """Delete tokens that expired before `now`."""
        result = await self._session.execute(
            delete(RefreshTokenRow)
            .where(RefreshTokenRow.expires_at < now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)


class SqlRevokedAccessTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, token_id: str, expires_at: datetime, now: datetime) -> None:
        """Remember the id; a second revocation of the same token changes nothing."""
        insert = _insert_for(self._session)
        await self._session.execute(
            insert(RevokedAccessTokenRow)
            .values(token_id=token_id, expires_at=expires_at, revoked_at=now)
            .on_conflict_do_nothing(index_elements=[RevokedAccessTokenRow.token_id])
        )

    async def is_revoked(self, token_id: str) -> bool:
        """A primary-key lookup."""
        found = await self._session.scalar(
            select(RevokedAccessTokenRow.token_id).where(RevokedAccessTokenRow.token_id == token_id)
        )
        return found is not None

    async def delete_expired(self, now: datetime) -> int:
        """Forget revocations of tokens that have expired anyway."""
        result = await self._session.execute(
            delete(RevokedAccessTokenRow)
            .where(RevokedAccessTokenRow.expires_at < now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)


class SqlLoginAttemptRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_attempt(
        self, kind: AttemptKind, key: str, now: datetime, window: timedelta
    ) -> AttemptCount:
        """One atomic `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`: count +1, or 1 in a new window.

        The row lock the upsert takes serializes concurrent attempts on one key, so each sees its own
        count; several replicas share the counters because they live in the database.
        """
        row = LoginAttemptRow
        window_over = row.window_start <= now - window
        stamp = literal(now, UtcDateTime())
        insert = _insert_for(self._session)
        statement = (
            insert(row)
            .values(kind=kind.value, key=key, attempts=1, window_start=now)
            .on_conflict_do_update(
                index_elements=[row.kind, row.key],
                set_={
                    "attempts": case((window_over, 1), else_=row.attempts + 1),
                    "window_start": case((window_over, stamp), else_=row.window_start),
                },
            )
            .returning(row.attempts, row.window_start)
        )
        attempts, window_start = (await self._session.execute(statement)).one()
        return AttemptCount(attempts, _seconds_left(window_start, window, now))

    async def count(self, kind: AttemptKind, key: str, now: datetime, window: timedelta) -> AttemptCount:
        """The count of the current window, 0 when the window is over or there is none."""
        found = (
            await self._session.execute(
                select(LoginAttemptRow.attempts, LoginAttemptRow.window_start).where(
                    LoginAttemptRow.kind == kind.value, LoginAttemptRow.key == key
                )
            )
        ).one_or_none()
        if found is None or found.window_start <= now - window:
            return AttemptCount(0, 0.0)
        return AttemptCount(found.attempts, _seconds_left(found.window_start, window, now))

    async def forget_attempt(self, kind: AttemptKind, key: str) -> None:
        """Take one attempt back (never below zero)."""
        await self._session.execute(
            update(LoginAttemptRow)
            .where(
                and_(
                    LoginAttemptRow.kind == kind.value,
                    LoginAttemptRow.key == key,
                    LoginAttemptRow.attempts > 0,
                )
            )
            .values(attempts=LoginAttemptRow.attempts - 1)
            .execution_options(synchronize_session=False)
        )

    async def reset(self, kind: AttemptKind, key: str) -> None:
        """Forget the counter."""
        await self._session.execute(
            delete(LoginAttemptRow)
            .where(LoginAttemptRow.kind == kind.value, LoginAttemptRow.key == key)
            .execution_options(synchronize_session=False)
        )

    async def delete_expired(self, started_before: datetime, batch: int = 5000) -> int:
        """Delete up to `batch` counters whose window is over.

        Rows are locked in (kind, key) order, the order grants lock them in, and rows a grant holds right
        now are skipped (PostgreSQL `SKIP LOCKED`), so purging never deadlocks with a login; what it
        skips goes in the next round. SQLite serializes writers and needs none of this.
        """
        expired = (
            select(LoginAttemptRow.kind, LoginAttemptRow.key)
            .where(LoginAttemptRow.window_start < started_before)
            .order_by(LoginAttemptRow.kind, LoginAttemptRow.key)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        keys = [tuple(row) for row in (await self._session.execute(expired)).all()]
        if not keys:
            return 0
        result = await self._session.execute(
            delete(LoginAttemptRow)
            .where(tuple_(LoginAttemptRow.kind, LoginAttemptRow.key).in_(keys))
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)


def _seconds_left(window_start: datetime, window: timedelta, now: datetime) -> float:
    return max(0.0, (window_start + window - now).total_seconds())
