"""RevokeToken (RFC 7009) and IntrospectToken (RFC 7662), for access and refresh tokens alike."""

from __future__ import annotations

from auth_service.domain.errors import InvalidRequest
from auth_service.domain.tokens import (
    MAX_REFRESH_TOKEN_LENGTH,
    USER_CLIENT_ID,
    TokenInfo,
    TokenType,
    hash_refresh_token,
)
from auth_service.service.ports import AccessTokenCodec, Clock, UnitOfWorkFactory
from shared.errors import FieldViolation


def _looks_like_jwt(token: str) -> bool:
    # A JWS in compact form has exactly three dot-separated parts; refresh tokens are base64url, no dots.
    return token.count(".") == 2


def _require_token(token: str) -> None:
    if not token:
        raise InvalidRequest([FieldViolation("token", "is required")])


class TokenRevocation:
    """Revokes refresh tokens (their whole family) and access tokens (their id, until expiry)."""

    def __init__(self, uow: UnitOfWorkFactory, tokens: AccessTokenCodec, clock: Clock) -> None:
        self._uow = uow
        self._tokens = tokens
        self._clock = clock

    async def revoke(self, token: str) -> None:
        """Revoke `token`, whichever kind it is. Unknown, invalid and expired tokens also succeed.

        Revoking a refresh token revokes the grant it belongs to: every token of its rotation family.
        A revoked access token is inactive for introspection at once; services that verify locally
        accept it until it expires.
        """
        _require_token(token)
        if _looks_like_jwt(token):
            claims = self._tokens.read(token)
            if claims is None:
                return
            async with self._uow() as uow:
                await uow.revoked_access_tokens.add(claims.token_id, claims.expires_at, self._clock())
                await uow.commit()
            return
        if len(token) > MAX_REFRESH_TOKEN_LENGTH:
            return
        async with self._uow() as uow:
            stored = await uow.refresh_tokens.get_by_hash(hash_refresh_token(token))
            if stored is None:
                return
            await uow.refresh_tokens.revoke_family(stored.family_id, self._clock())
            await uow.commit()


class TokenIntrospection:
    """Tells whether a token is active and what it grants."""

    def __init__(self, uow: UnitOfWorkFactory, tokens: AccessTokenCodec, clock: Clock) -> None:
        self._uow = uow
        self._tokens = tokens
        self._clock = clock

    async def introspect(self, token: str) -> TokenInfo | None:
        """What an active token grants; None for an inactive one (invalid, expired, used or revoked)."""
        _require_token(token)
        if _looks_like_jwt(token):
            claims = self._tokens.read(token)
            if claims is None:
                return None
            async with self._uow() as uow:
                if await uow.revoked_access_tokens.is_revoked(claims.token_id):
                    return None
            return TokenInfo(
                token_type=TokenType.ACCESS,
                subject=claims.subject,
                scope=claims.scope,
                client_id=claims.client_id,
                token_id=claims.token_id,
                issued_at=claims.issued_at,
                expires_at=claims.expires_at,
            )
        if len(token) > MAX_REFRESH_TOKEN_LENGTH:
            return None
        async with self._uow() as uow:
            stored = await uow.refresh_tokens.get_by_hash(hash_refresh_token(token))
        if stored is None or not stored.is_active(self._clock()):
            return None
        return TokenInfo(
            token_type=TokenType.REFRESH,
            subject=str(stored.user_id),
            scope=stored.scope,
            client_id=USER_CLIENT_ID,
            token_id=str(stored.id),
            issued_at=stored.issued_at,
            expires_at=stored.expires_at,
        )
