"""Value objects and the rules that make a raw value acceptable to the inventory domain."""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass

import pycountry

from shared.text import unsafe_text_problem

INT64_MAX = 2**63 - 1
ORDERS_ADMIN_SCOPE = "orders.admin"

_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_SKU = re.compile(r"[A-Z0-9_-]{1,64}")
_SKU_PREFIX = re.compile(r"[A-Z0-9_-]{0,64}")
_ETAG = re.compile(r"v[0-9]{1,18}")
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2000
MAX_SUBJECT_LENGTH = 255
# The highest price a product may have, in minor units: 10^12 is ten billion euros or dollars, a
# trillion yen, a billion dinars (three decimals). No catalogue comes near it, and it keeps every sum
# an order can make inside a signed 64-bit integer: 10^12 x MAX_QUANTITY (10^4) x MAX_LINES (100) =
# 10^18 < 2^63 - 1 (about 9.2 x 10^18).
MAX_PRICE_MINOR_UNITS = 10**12
# ISO 4217 as maintained by the pycountry package (Debian's iso-codes). XXX ("no currency") and XTS
# ("for testing") are codes, but no price is in them.
_NOT_A_PRICE_CURRENCY = frozenset({"XXX", "XTS"})
ISO_4217_CODES = frozenset(currency.alpha_3 for currency in pycountry.currencies) - _NOT_A_PRICE_CURRENCY


class InvalidValue(ValueError):
    """A raw value breaks a domain rule. The message says which rule, in words a client can act on."""


def new_id() -> uuid.UUID:
    """A time-ordered UUID (version 7, RFC 9562).

    New rows then land at the right edge of the primary-key B-trees instead of at random pages, which
    keeps inserts cheap on tables with millions of orders and movements.
    """
    unix_ms = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((random_bits >> 62) & 0xFFF) << 64  # rand_a
    value |= 0b10 << 62  # variant
    value |= random_bits & ((1 << 62) - 1)  # rand_b
    return uuid.UUID(int=value)


def parse_uuid(raw: str, *, what: str = "an id") -> uuid.UUID:
    """A UUID in its canonical text form (any case); anything else is refused rather than guessed."""
    if not raw:
        raise InvalidValue(f"{what} is required")
    try:
        parsed = uuid.UUID(raw)
    except ValueError:
        parsed = None
    # uuid.UUID also takes braces, "urn:uuid:" and misplaced hyphens; ids have one spelling.
    if parsed is None or str(parsed) != raw.lower():
        raise InvalidValue(f"{what} must be a UUID such as 123e4567-e89b-12d3-a456-426614174000")
    return parsed


def optional_request_id(raw: str) -> uuid.UUID | None:
    """An idempotency key (AIP-155): empty means none, otherwise a UUID."""
    if not raw:
        return None
    return parse_uuid(raw, what="request_id")


def _no_nul(raw: str, what: str) -> None:
    # PostgreSQL text cannot hold NUL; refusing it here keeps it a client error instead of a crash.
    if "\x00" in raw:
        raise InvalidValue(f"{what} must not contain NUL characters")


def _readable(raw: str, what: str, *, multiline: bool = False) -> None:
    problem = unsafe_text_problem(raw, multiline=multiline)
    if problem is not None:
        raise InvalidValue(f"{what} {problem}")


def product_name(raw: str) -> str:
    """A display name: 1 to 200 characters, not only white space, one line without control characters."""
    _no_nul(raw, "name")
    if not raw.strip():
        raise InvalidValue("name is required (1 to 200 characters)")
    if len(raw) > MAX_NAME_LENGTH:
        raise InvalidValue(f"name must be at most {MAX_NAME_LENGTH} characters")
    _readable(raw, "name")
    return raw


def product_description(raw: str) -> str:
    """A description: up to 2000 characters, may be empty; line breaks but no other control characters."""
    _no_nul(raw, "description")
    if len(raw) > MAX_DESCRIPTION_LENGTH:
        raise InvalidValue(f"description must be at most {MAX_DESCRIPTION_LENGTH} characters")
    _readable(raw, "description", multiline=True)
    return raw


def subject(raw: str) -> str:
    """The `sub` of a caller, as used for order ownership."""
    _no_nul(raw, "owner")
    _readable(raw, "owner")
    if len(raw) > MAX_SUBJECT_LENGTH:
        raise InvalidValue(f"owner must be at most {MAX_SUBJECT_LENGTH} characters")
    return raw


@dataclass(frozen=True, slots=True)
class Sku:
    """A stock keeping unit: upper-cased, `[A-Z0-9-_]{1,64}`, unique, immutable once created."""

    value: str

    def __post_init__(self) -> None:
        if not _SKU.fullmatch(self.value):
            raise InvalidValue("sku must be 1 to 64 characters of A-Z, 0-9, '-' and '_'")

    @classmethod
    def parse(cls, raw: str) -> Sku:
        """Accepts any case; stores upper case."""
        if not raw:
            raise InvalidValue("sku is required")
        return cls(raw.upper())

    def __str__(self) -> str:
        return self.value


def sku_prefix(raw: str) -> str:
    """A case-insensitive SKU prefix filter; empty means no filter."""
    value = raw.upper()
    if not _SKU_PREFIX.fullmatch(value):
        raise InvalidValue("sku_prefix must be up to 64 characters of A-Z, 0-9, '-' and '_'")
    return value


def _currency_code_shape(raw: str) -> str:
    if not _CURRENCY_CODE.fullmatch(raw):
        raise InvalidValue("currency_code must be an ISO 4217 code of three upper-case letters, e.g. EUR")
    return raw


def currency_code(raw: str) -> str:
    """A currency code that ISO 4217 lists (three upper-case letters, e.g. EUR)."""
    _currency_code_shape(raw)
    if raw not in ISO_4217_CODES:
        raise InvalidValue(f"currency_code {raw} is not an ISO 4217 currency")
    return raw


def price_minor_units(minor_units: int) -> int:
    if minor_units < 0:
        raise InvalidValue("minor_units of a price must not be negative")
    if minor_units > MAX_PRICE_MINOR_UNITS:
        raise InvalidValue(f"minor_units of a price must be at most {MAX_PRICE_MINOR_UNITS} (10^12)")
    return minor_units


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency: ISO 4217 code and integer minor units. Floats never carry money."""

    currency_code: str
    minor_units: int

    def __post_init__(self) -> None:
        # Only the shape: amounts read back from the database were checked against ISO 4217 on entry.
        _currency_code_shape(self.currency_code)
        if not -INT64_MAX - 1 <= self.minor_units <= INT64_MAX:
            raise InvalidValue("minor_units is out of range")

    @classmethod
    def price(cls, currency_code: str, minor_units: int) -> Money:
        """A price: like any amount, but never negative."""
        return cls(currency_code, price_minor_units(minor_units))

    def times(self, factor: int) -> Money:
        return Money(self.currency_code, self.minor_units * factor)

    def plus(self, other: Money) -> Money:
        if other.currency_code != self.currency_code:
            raise InvalidValue("amounts in different currencies cannot be added")
        return Money(self.currency_code, self.minor_units + other.minor_units)


def etag_of(version: int) -> str:
    """The opaque etag (AIP-154) of a resource at `version`."""
    return f"v{version}"


def version_of_etag(raw: str) -> int:
    """The version an etag stands for; `InvalidValue` for text this service never issued."""
    if not _ETAG.fullmatch(raw):
        raise InvalidValue("etag must be a value this service returned")
    return int(raw[1:])


@dataclass(frozen=True, slots=True)
class Caller:
    """Who runs a use case: the token's subject and scopes, without anything about how they arrived."""

    subject: str
    scopes: frozenset[str]

    @property
    def is_orders_admin(self) -> bool:
        """May see and change everybody's orders, and filter orders by owner."""
        return ORDERS_ADMIN_SCOPE in self.scopes
