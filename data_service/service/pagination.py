"""Keyset pagination (AIP-158) with opaque page tokens bound to the filters they were made for."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar
from uuid import UUID

from data_service.domain.errors import InvalidPageToken
from data_service.domain.queries import NewestFirstKey
from data_service.domain.values import InvalidValue

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# A real token is ~100 characters; a long one is refused before it is decoded.
MAX_TOKEN_LENGTH = 1024

T = TypeVar("T")


def page_size(requested: int) -> int:
    """0 means 50; larger values are capped at 1000; negative ones are refused."""
    if requested < 0:
        raise InvalidValue("page_size must not be negative")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def filters_digest(listing: str, *filters: object) -> str:
    """Short fingerprint of a listing and its filters, written into its page tokens."""
    canonical = json.dumps([listing, *filters], separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class PageToken:
    """Where the next page starts (the last key of this page) and which filters it belongs to."""

    filters: str
    key: tuple[str, ...]

    def encode(self) -> str:
        raw = json.dumps({"f": self.filters, "k": list(self.key)}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode("utf-8")).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, raw: str) -> PageToken | None:
        """The token a client sent back; None for an empty one; `InvalidValue` for anything we did not
        issue."""
        if not raw:
            return None
        if len(raw) > MAX_TOKEN_LENGTH:
            raise InvalidValue("page_token is not a token this service issued")
        try:
            data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except (binascii.Error, ValueError):
            raise InvalidValue("page_token is not a token this service issued") from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("f"), str)
            or not isinstance(data.get("k"), list)
            or not all(isinstance(part, str) for part in data["k"])
        ):
            raise InvalidValue("page_token is not a token this service issued")
        return cls(filters=data["f"], key=tuple(data["k"]))


def resume_key(token: PageToken | None, digest: str) -> tuple[str, ...] | None:
    """The key after which the page starts; `InvalidPageToken` if the token was made for other filters."""
    if token is None:
        return None
    if token.filters != digest:
        raise InvalidPageToken("page_token was made for other filters; send the same filters or no token")
    return token.key


def parse_key(key: tuple[str, ...] | None, parse: Callable[[tuple[str, ...]], T]) -> T | None:
    """Turns a resumed key into the listing's key type; a key that does not parse is an invalid token."""
    if key is None:
        return None
    try:
        return parse(key)
    except (ValueError, TypeError, IndexError, OverflowError):
        raise InvalidPageToken("page_token is not a token this service issued") from None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


def page_of(rows: Sequence[T], size: int, digest: str, key_of: Callable[[T], tuple[str, ...]]) -> Page[T]:
    """A page from `size + 1` fetched rows: the extra row only says that another page exists."""
    items = list(rows[:size])
    if len(rows) <= size or not items:
        return Page(items, "")
    return Page(items, PageToken(digest, key_of(items[-1])).encode())


def key_of_newest_first(create_time: datetime, row_id: UUID) -> tuple[str, str]:
    """The page-token key of a row in a newest-first listing."""
    return (create_time.isoformat(), str(row_id))


def newest_first_key(key: tuple[str, ...]) -> NewestFirstKey:
    """Parses a newest-first page-token key (see `parse_key` for how failures are reported)."""
    create_time, row_id = key
    parsed = datetime.fromisoformat(create_time)
    if parsed.tzinfo is None:
        raise ValueError("naive time in a page token")
    # 0001-01-01T00:00:00+14:00 parses, but is before year 1 in UTC: the database cannot bind it.
    parsed = parsed.astimezone(UTC)
    return NewestFirstKey(create_time=parsed, id=UUID(row_id))
