"""Users and service clients: the entities the auth service authenticates."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from auth_service.domain.scopes import Role, scopes_of_roles
from shared.text import unsafe_text_problem

MAX_EMAIL_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 200
MAX_CLIENT_NAME_LENGTH = 200
# A syntax check only (SPEC §2): special-use domains such as example.com or .test are fine. One `@`,
# a local part without spaces, and a domain of dot-separated labels with at least one dot.
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)


def normalize_email(email: str) -> str:
    """Trimmed and lower-cased: the form emails are stored, looked up and compared in."""
    return email.strip().lower()


def email_problem(normalized_email: str) -> str | None:
    """Why a normalized email is unacceptable, or None."""
    if not normalized_email:
        return "is required"
    if len(normalized_email) > MAX_EMAIL_LENGTH:
        return f"must be at most {MAX_EMAIL_LENGTH} characters"
    if not _EMAIL.fullmatch(normalized_email):
        return "is not a valid email address"
    local = normalized_email.split("@", 1)[0]
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "is not a valid email address"
    return None


def display_name_problem(display_name: str) -> str | None:
    if len(display_name) > MAX_DISPLAY_NAME_LENGTH:
        return f"must be at most {MAX_DISPLAY_NAME_LENGTH} characters"
    return unsafe_text_problem(display_name)


def client_name_problem(name: str) -> str | None:
    if not name.strip():
        return "is required"
    if len(name) > MAX_CLIENT_NAME_LENGTH:
        return f"must be at most {MAX_CLIENT_NAME_LENGTH} characters"
    return unsafe_text_problem(name)


@dataclass
class User:
    """A person who logs in with a password. `password_hash` is an argon2id PHC string."""

    id: uuid.UUID
    email: str
    display_name: str
    password_hash: str
    roles: frozenset[Role]
    created_at: datetime
    password_changed_at: datetime | None = None

    @property
    def scopes(self) -> frozenset[str]:
        return scopes_of_roles(self.roles)


@dataclass
class ServiceClient:
    """A service account: authenticates with client credentials and gets the scopes it was created with."""

    id: uuid.UUID
    name: str
    secret_hash: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    created_at: datetime | None = None
