"""Roles, scopes and the one rule about them: a token's scope may only narrow what was granted."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from auth_service.domain.errors import InvalidScope


class Role(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    ADMIN = "admin"


_CUSTOMER = ("catalog.read", "orders.read", "orders.write")
_STAFF = (*_CUSTOMER, "catalog.write", "stock.write", "orders.admin")
_ADMIN = (*_STAFF, "auth.introspect", "auth.admin")

ROLE_SCOPES: dict[Role, tuple[str, ...]] = {
    Role.CUSTOMER: _CUSTOMER,
    Role.STAFF: _STAFF,
    Role.ADMIN: _ADMIN,
}
# Every scope a token can carry, in the order they are written into `scope` strings.
KNOWN_SCOPES: tuple[str, ...] = _ADMIN

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
MAX_SCOPE_LENGTH = 1024


class ScopeSyntaxError(ValueError):
    """A scope string that is not a space-delimited list of RFC 6749 scope tokens."""


def parse_scope(text: str) -> frozenset[str]:
    """The scopes of a space-delimited scope string; `ScopeSyntaxError` when it is malformed."""
    if len(text) > MAX_SCOPE_LENGTH:
        raise ScopeSyntaxError(f"at most {MAX_SCOPE_LENGTH} characters")
    tokens = text.split(" ")
    if text and not all(_SCOPE_TOKEN.fullmatch(token) for token in tokens if token):
        raise ScopeSyntaxError(
            "scopes are printable ASCII without quotes or backslashes, separated by spaces"
        )
    return frozenset(token for token in tokens if token)


def format_scope(scopes: Iterable[str]) -> str:
    """A canonical scope string: known scopes in their documented order, then any others sorted."""
    wanted = set(scopes)
    known = [scope for scope in KNOWN_SCOPES if scope in wanted]
    return " ".join([*known, *sorted(wanted.difference(KNOWN_SCOPES))])


def scopes_of_roles(roles: Iterable[Role]) -> frozenset[str]:
    """Every scope that the given roles grant."""
    return frozenset(scope for role in roles for scope in ROLE_SCOPES[role])


def narrow(granted: frozenset[str], requested: frozenset[str]) -> frozenset[str]:
    """The scopes of a new token: all of `granted` when nothing was requested, else exactly `requested`.

    Asking for anything outside `granted` raises `InvalidScope`: a scope can narrow, never widen.
    """
    if not requested:
        return granted
    excess = requested - granted
    if excess:
        raise InvalidScope(excess)
    return requested
