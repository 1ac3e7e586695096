"""Errors of the auth domain: the shared status families with the auth service's reason strings.

The reasons are the lower-cased names of `tessera.auth.v1.AuthErrorReason` (the OAuth 2.0 codes of
RFC 6749 where one exists). Messages are fixed per class so that no failure tells more than its reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)


class InvalidRequest(InvalidArgument):
    """A malformed request; `violations` names every bad field."""

    def __init__(
        self, violations: Iterable[FieldViolation], message: str = "the request has invalid fields"
    ) -> None:
        super().__init__(message, violations=violations, reason="invalid_request")


class InvalidGrant(Unauthenticated):
    """Wrong username or password, or an unknown, expired, used or revoked refresh token.

    One message for every cause: an unknown user and a wrong password must be indistinguishable.
    """

    def __init__(self) -> None:
        super().__init__("the grant is invalid, expired or revoked", reason="invalid_grant")


class InvalidClient(Unauthenticated):
    """Unknown client id or wrong client secret, with one message for both."""

    def __init__(self) -> None:
        super().__init__("client authentication failed", reason="invalid_client")


class InvalidScope(PermissionDenied):
    """The requested scope exceeds what the caller may have."""

    def __init__(self, excess: Iterable[str]) -> None:
        # Naming the scopes the caller asked for (not the ones it has) tells it nothing new.
        names = " ".join(sorted(excess))
        super().__init__(f"the requested scope exceeds the granted scope: {names}", reason="invalid_scope")
        self.excess = frozenset(excess)


class TooManyAttempts(ResourceExhausted):
    """Too many failed attempts for an account, a client or a peer; retry after the window ends."""

    def __init__(self, retry_after_seconds: float, limit: str = "") -> None:
        super().__init__(
            "too many failed attempts, retry later",
            retry_after_seconds=max(1.0, retry_after_seconds),
            reason="too_many_attempts",
        )
        # Which limit refused (account, client, peer): for our metrics, never sent to the client.
        self.limit = limit


class EmailTaken(AlreadyExists):
    def __init__(self) -> None:
        super().__init__("a user with this email address already exists", reason="email_taken")


class ClientNameTaken(AlreadyExists):
    """Only the `create-client` command creates clients, so this reason never crosses the wire."""

    def __init__(self) -> None:
        super().__init__("a service client with this name already exists", reason="client_name_taken")


class UserTokenRequired(PermissionDenied):
    """A service account's token was used where only a user's token makes sense."""

    def __init__(self) -> None:
        super().__init__("this method needs a user's access token", reason="user_token_required")


class UserNotFound(NotFound):
    """The user behind a valid token no longer exists."""

    def __init__(self) -> None:
        super().__init__("the user of this token does not exist", reason="user_not_found")
