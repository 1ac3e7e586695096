"""Who is calling: set by the auth interceptor for the duration of one RPC, read by the servicers."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified identity behind an access token."""

    subject: str
    scopes: frozenset[str]
    client_id: str
    token_id: str
    expires_at: int
    # `iat` of the token (seconds since the epoch); introspection reports it.
    issued_at: int = 0

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


_current: ContextVar[Principal | None] = ContextVar("tessera_principal", default=None)


def current_principal() -> Principal | None:
    """The caller of the running RPC, or None for a public RPC called without a token."""
    return _current.get()


def set_principal(principal: Principal | None) -> None:
    _current.set(principal)
