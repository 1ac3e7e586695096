"""Refresh tokens (rotating, single use, in families) and what introspection reports about a token."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# `client_id` of tokens issued to people (password and refresh grants), as SPEC §2 names it.
USER_CLIENT_ID = "tessera"
# 32 random bytes = 256 bits, written as 43 base64url characters.
REFRESH_TOKEN_BYTES = 32
# Refresh tokens we issue are 43 characters; anything much longer is not one of ours.
MAX_REFRESH_TOKEN_LENGTH = 256


class TokenType(StrEnum):
    ACCESS = "access_token"
    REFRESH = "refresh_token"


def new_refresh_token() -> str:
    """A fresh opaque refresh token with 256 bits of entropy."""
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def hash_refresh_token(token: str) -> str:
    """What is stored and looked up instead of the token.

    A fast hash is enough: with 256 random bits there is nothing to guess, so a slow hash would only
    cost CPU. The hash is unique in the database, which is how a token is found.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class RefreshToken:
    """One link of a rotation chain. Every token of a chain shares `family_id` (RFC 9700 §4.14)."""

    id: uuid.UUID
    token_hash: str
    family_id: uuid.UUID
    parent_id: uuid.UUID | None
    user_id: uuid.UUID
    scope: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        """Never used, never revoked and not expired."""
        return self.used_at is None and self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True)
class AccessTokenClaims:
    """The claims of an access token whose signature, issuer, audience and expiry were checked."""

    subject: str
    scope: frozenset[str]
    client_id: str
    token_id: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class TokenInfo:
    """What IntrospectToken tells about an active token (RFC 7662)."""

    token_type: TokenType
    subject: str
    scope: frozenset[str]
    client_id: str
    token_id: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class IssuedTokens:
    """The answer to a successful grant (RFC 6749 §5.1)."""

    access_token: str
    expires_in: int
    scope: frozenset[str]
    refresh_token: str | None = None
