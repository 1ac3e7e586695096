"""Token sources: where a client's access tokens come from, refreshed before they expire.

A source hands out the access token it holds until shortly before that token expires, then obtains a
new one: with the refresh token for the password grant (falling back to a new password grant when the
refresh token is no longer accepted), with a new grant for client credentials. Concurrent callers share
one refresh. When a server refuses a token the bearer interceptor calls `invalidate()` and the next call
gets a fresh one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from tessera.auth.v1 import auth_pb2

from shared.client.errors import TesseraError, UnauthenticatedError

# Refresh this long before expiry (or a fifth of the token's lifetime, whichever is shorter), so a
# token never expires between being attached and being checked.
DEFAULT_REFRESH_MARGIN_SECONDS = 60.0
_REFRESH_FRACTION = 0.2


class TokenGranter(Protocol):
    """What a token source needs from the auth service: the `Token` RPC (AuthClient has it)."""

    async def token(self, request: auth_pb2.TokenRequest) -> auth_pb2.TokenResponse: ...


@dataclass(frozen=True)
class HeldToken:
    access_token: str
    refresh_token: str
    scope: str
    # On the source's clock (`time.monotonic` unless a test gives another).
    refresh_at: float
    expires_at: float


class RefreshingTokenSource:
    """Base of the token sources; subclasses say how to obtain a token (`_obtain`)."""

    def __init__(
        self,
        auth: TokenGranter,
        *,
        scope: str = "",
        refresh_margin_seconds: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth = auth
        self._scope = scope
        self._margin = refresh_margin_seconds
        self._clock = clock
        self._held: HeldToken | None = None
        self._lock = asyncio.Lock()

    @property
    def held(self) -> HeldToken | None:
        """The token currently held (None before the first grant)."""
        return self._held

    async def token(self) -> str:
        """A valid access token; obtains or refreshes one when the held one is due."""
        held = self._held
        if held is not None and self._clock() < held.refresh_at:
            return held.access_token
        async with self._lock:
            held = self._held
            if held is not None and self._clock() < held.refresh_at:
                # Another caller refreshed while we waited for the lock.
                return held.access_token
            try:
                self._held = await self._obtain(held)
            except TesseraError:
                if held is not None and self._clock() < held.expires_at:
                    # The auth service is unreachable or busy, but the token we hold is still good:
                    # use it and try again on a later call rather than fail this one.
                    return held.access_token
                raise
            return self._held.access_token

    def invalidate(self, token: str) -> None:
        """A server refused `token`: never hand it out again (its refresh token stays usable)."""
        held = self._held
        if held is not None and held.access_token == token:
            self._held = replace(held, refresh_at=-math.inf, expires_at=-math.inf)

    async def _obtain(self, held: HeldToken | None) -> HeldToken:
        raise NotImplementedError

    async def _grant(self, request: auth_pb2.TokenRequest) -> HeldToken:
        requested_at = self._clock()
        response = await self._auth.token(request)
        lifetime = float(response.expires_in)
        expires_at = requested_at + lifetime
        return HeldToken(
            access_token=response.access_token,
            refresh_token=response.refresh_token,
            scope=response.scope,
            refresh_at=expires_at - min(self._margin, lifetime * _REFRESH_FRACTION),
            expires_at=expires_at,
        )


class PasswordTokenSource(RefreshingTokenSource):
    """Tokens of a user: the password grant once, then the (rotating) refresh token."""

    def __init__(
        self,
        auth: TokenGranter,
        username: str,
        password: str,
        *,
        scope: str = "",
        refresh_margin_seconds: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(auth, scope=scope, refresh_margin_seconds=refresh_margin_seconds, clock=clock)
        self._username = username
        self._password = password

    async def _obtain(self, held: HeldToken | None) -> HeldToken:
        if held is not None and held.refresh_token:
            try:
                return await self._grant(
                    auth_pb2.TokenRequest(
                        refresh_token=auth_pb2.RefreshTokenGrant(refresh_token=held.refresh_token),
                        scope=self._scope,
                    )
                )
            except UnauthenticatedError:
                # The refresh token expired or was revoked (a password change, reuse detection): log in
                # again rather than fail the caller.
                pass
        return await self._grant(
            auth_pb2.TokenRequest(
                password=auth_pb2.PasswordGrant(username=self._username, password=self._password),
                scope=self._scope,
            )
        )


class ClientCredentialsTokenSource(RefreshingTokenSource):
    """Tokens of a service account: a new client-credentials grant whenever the held one is due."""

    def __init__(
        self,
        auth: TokenGranter,
        client_id: str,
        client_secret: str,
        *,
        scope: str = "",
        refresh_margin_seconds: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(auth, scope=scope, refresh_margin_seconds=refresh_margin_seconds, clock=clock)
        self._client_id = client_id
        self._client_secret = client_secret

    async def _obtain(self, held: HeldToken | None) -> HeldToken:
        return await self._grant(
            auth_pb2.TokenRequest(
                client_credentials=auth_pb2.ClientCredentialsGrant(
                    client_id=self._client_id, client_secret=self._client_secret
                ),
                scope=self._scope,
            )
        )


class StaticTokenSource:
    """A fixed access token (from a script or another system); it is never refreshed."""

    def __init__(self, access_token: str) -> None:
        self._access_token = access_token

    async def token(self) -> str:
        return self._access_token

    def invalidate(self, token: str) -> None:
        """Nothing to renew: the retried call fails the same way and the caller sees it."""
