"""The Token RPC's three grants (RFC 6749): password, refresh token, client credentials.

Slow work (argon2) never runs inside a transaction: a first unit of work counts the attempt and loads
the account, the password is checked with no connection held, a second unit of work records the outcome
and issues tokens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import structlog

from auth_service.domain.errors import InvalidClient, InvalidGrant, InvalidRequest, InvalidScope
from auth_service.domain.passwords import MAX_PASSWORD_LENGTH
from auth_service.domain.scopes import ScopeSyntaxError, narrow, parse_scope
from auth_service.domain.throttle import DEFAULT_THROTTLE, AttemptKind, ThrottlePolicy
from auth_service.domain.tokens import (
    MAX_REFRESH_TOKEN_LENGTH,
    USER_CLIENT_ID,
    IssuedTokens,
    RefreshToken,
    hash_refresh_token,
    new_refresh_token,
)
from auth_service.domain.users import User, normalize_email
from auth_service.service.ports import (
    AccessTokenCodec,
    AuthUnitOfWork,
    Clock,
    PasswordCheck,
    PasswordHasher,
    UnitOfWorkFactory,
)
from auth_service.service.throttling import peer_key, refuse_when_blocked, reserve_attempts
from shared.errors import FieldViolation

log = structlog.get_logger("tessera.auth.grants")

# Usernames are emails; this is the longest address RFC 3696 ever allowed (64 + 1 + 255).
MAX_USERNAME_LENGTH = 320
MAX_CLIENT_ID_LENGTH = 64
MAX_CLIENT_SECRET_LENGTH = 256


@dataclass(frozen=True)
class GrantSettings:
    refresh_token_ttl: timedelta
    throttle: ThrottlePolicy = DEFAULT_THROTTLE


def _required(violations: list[FieldViolation], field: str, value: str, max_length: int) -> None:
    if not value:
        violations.append(FieldViolation(field, "is required"))
    elif len(value) > max_length:
        violations.append(FieldViolation(field, f"must be at most {max_length} characters"))


def _requested_scope(violations: list[FieldViolation], scope: str) -> frozenset[str]:
    try:
        return parse_scope(scope)
    except ScopeSyntaxError as exc:
        violations.append(FieldViolation("scope", str(exc)))
        return frozenset()


class TokenGrants:
    """Issues tokens for the three grants, with brute-force limits and refresh-token rotation."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: AccessTokenCodec,
        clock: Clock,
        settings: GrantSettings,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._settings = settings
        self._throttle = settings.throttle

    async def password(self, *, username: str, password: str, scope: str, peer: str) -> IssuedTokens:
        """Resource owner password credentials (RFC 6749 §4.3).

        An unknown user and a wrong password fail identically (`InvalidGrant`, after a dummy hash check
        of the same cost). After too many failures for the account or the peer the grant answers
        `TooManyAttempts`, whatever the password.
        """
        violations: list[FieldViolation] = []
        _required(violations, "password.username", username, MAX_USERNAME_LENGTH)
        _required(violations, "password.password", password, MAX_PASSWORD_LENGTH)
        requested = _requested_scope(violations, scope)
        if violations:
            raise InvalidRequest(violations)
        email = normalize_email(username)
        account = (AttemptKind.ACCOUNT, email)
        async with self._uow() as uow:
            await reserve_attempts(uow, self._throttle, [account, peer_key(peer)], self._clock())
            user = await uow.users.get_by_email(email)
            await uow.commit()
        check = await self._check_password(user, password)
        if user is None or not check.matches:
            raise InvalidGrant()
        new_hash = await self._hasher.hash(password) if check.needs_rehash else None
        async with self._uow() as uow:
            await uow.login_attempts.reset(*account)
            await uow.login_attempts.forget_attempt(*peer_key(peer))
            await self._commit_then_raise_if_widened(uow, user.scopes, requested)
            if new_hash is not None:
                await uow.users.replace_password_hash(user.id, user.password_hash, new_hash, None)
            granted = narrow(user.scopes, requested)
            refresh_token = await self._add_refresh_token(uow, user, granted, family_id=None, parent_id=None)
            await uow.commit()
        return self._issue_for_user(user, granted, refresh_token)

    async def refresh(self, *, refresh_token: str, scope: str, peer: str) -> IssuedTokens:
        """Refresh token grant (RFC 6749 §6) with rotation: each token works once.

        The token is claimed by one conditional UPDATE, so of two concurrent uses exactly one wins.
        Presenting a token that was already used means it leaked or was replayed: the whole family is
        revoked (RFC 9700 §4.14) and the grant fails.
        """
        violations: list[FieldViolation] = []
        _required(violations, "refresh_token.refresh_token", refresh_token, MAX_REFRESH_TOKEN_LENGTH)
        requested = _requested_scope(violations, scope)
        if violations:
            raise InvalidRequest(violations)
        token_hash = hash_refresh_token(refresh_token)
        async with self._uow() as uow:
            now = self._clock()
            await refuse_when_blocked(uow, self._throttle, AttemptKind.PEER, peer, now)
            stored = await uow.refresh_tokens.get_by_hash(token_hash)
            user = await uow.users.get(stored.user_id) if stored is not None else None
            if stored is None or user is None or stored.revoked_at is not None or stored.expires_at <= now:
                await self._count_failure_and_commit(uow, peer)
                raise InvalidGrant()
            # A role taken away since the last refresh takes its scopes away now.
            allowed = stored.scope & user.scopes
            if stored.used_at is None:
                # Before the claim: asking for too much must not use up the caller's token.
                narrow(allowed, requested)
            if stored.used_at is not None or not await uow.refresh_tokens.claim(stored.id, now):
                # Used before (or by a concurrent request a moment ago): treat it as stolen.
                revoked = await uow.refresh_tokens.revoke_family(stored.family_id, now)
                log.warning("refresh_token_reused", family_id=str(stored.family_id), revoked=revoked)
                await self._count_failure_and_commit(uow, peer)
                raise InvalidGrant()
            # RFC 6749 §6: the new refresh token has the same scope as the one it replaces.
            rotated = await self._add_refresh_token(
                uow, user, stored.scope, family_id=stored.family_id, parent_id=stored.id
            )
            await uow.commit()
        return self._issue_for_user(user, narrow(allowed, requested), rotated)

    async def client_credentials(
        self, *, client_id: str, client_secret: str, scope: str, peer: str
    ) -> IssuedTokens:
        """Client credentials grant (RFC 6749 §4.4): an access token, no refresh token.

        An unknown client and a wrong secret fail identically (`InvalidClient`).
        """
        violations: list[FieldViolation] = []
        _required(violations, "client_credentials.client_id", client_id, MAX_CLIENT_ID_LENGTH)
        _required(violations, "client_credentials.client_secret", client_secret, MAX_CLIENT_SECRET_LENGTH)
        requested = _requested_scope(violations, scope)
        if violations:
            raise InvalidRequest(violations)
        parsed_id = _uuid_or_none(client_id)
        counter = (AttemptKind.CLIENT, str(parsed_id) if parsed_id else client_id)
        async with self._uow() as uow:
            await reserve_attempts(uow, self._throttle, [counter, peer_key(peer)], self._clock())
            client = await uow.clients.get(parsed_id) if parsed_id else None
            await uow.commit()
        if client is None:
            await self._hasher.verify_dummy(client_secret)
            raise InvalidClient()
        check = await self._hasher.verify(client.secret_hash, client_secret)
        if not check.matches:
            raise InvalidClient()
        new_hash = await self._hasher.hash(client_secret) if check.needs_rehash else None
        async with self._uow() as uow:
            await uow.login_attempts.reset(*counter)
            await uow.login_attempts.forget_attempt(*peer_key(peer))
            await self._commit_then_raise_if_widened(uow, client.scopes, requested)
            if new_hash is not None:
                await uow.clients.replace_secret_hash(client.id, client.secret_hash, new_hash)
            await uow.commit()
        granted = narrow(client.scopes, requested)
        access_token = self._tokens.issue(
            subject=str(client.id), scope=granted, client_id=str(client.id), now=self._clock()
        )
        return IssuedTokens(access_token=access_token, expires_in=self._tokens.ttl_seconds, scope=granted)

    async def _check_password(self, user: User | None, password: str) -> PasswordCheck:
        if user is None:
            await self._hasher.verify_dummy(password)
            return PasswordCheck(matches=False)
        return await self._hasher.verify(user.password_hash, password)

    async def _commit_then_raise_if_widened(
        self, uow: AuthUnitOfWork, granted: frozenset[str], requested: frozenset[str]
    ) -> None:
        """A scope that widens fails the grant, but the credentials were right: keep the counters reset."""
        try:
            narrow(granted, requested)
        except InvalidScope:
            await uow.commit()
            raise

    async def _count_failure_and_commit(self, uow: AuthUnitOfWork, peer: str) -> None:
        await uow.login_attempts.add_attempt(AttemptKind.PEER, peer, self._clock(), self._throttle.window)
        await uow.commit()

    async def _add_refresh_token(
        self,
        uow: AuthUnitOfWork,
        user: User,
        scope: frozenset[str],
        *,
        family_id: uuid.UUID | None,
        parent_id: uuid.UUID | None,
    ) -> str:
        token = new_refresh_token()
        now = self._clock()
        token_id = uuid.uuid4()
        await uow.refresh_tokens.add(
            RefreshToken(
                id=token_id,
                token_hash=hash_refresh_token(token),
                family_id=family_id or token_id,
                parent_id=parent_id,
                user_id=user.id,
                scope=scope,
                issued_at=now,
                expires_at=now + self._settings.refresh_token_ttl,
            )
        )
        return token

    def _issue_for_user(self, user: User, scope: frozenset[str], refresh_token: str) -> IssuedTokens:
        access_token = self._tokens.issue(
            subject=str(user.id), scope=scope, client_id=USER_CLIENT_ID, now=self._clock()
        )
        return IssuedTokens(
            access_token=access_token,
            expires_in=self._tokens.ttl_seconds,
            scope=scope,
            refresh_token=refresh_token,
        )


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
