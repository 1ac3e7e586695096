from __future__ import annotations

import pytest

from auth_service.api.servicer import peer_address
from auth_service.domain.errors import InvalidScope
from auth_service.domain.scopes import ScopeSyntaxError, format_scope, narrow, parse_scope
from auth_service.domain.users import email_problem, normalize_email


@pytest.mark.parametrize(
    "email",
    [
        "ann@example.com",
        "first.last+tag@sub.example.org",
        "ops@shop.test",
        "o'brien@example.invalid",
        "x@a-b.co",
    ],
)
def test_syntactically_valid_emails_pass(email: str) -> None:
    assert email_problem(normalize_email(email)) is None


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "@example.com",
        "ann@",
        "ann@example",
        "a b@example.com",
        "ann@@example.com",
        ".ann@example.com",
        "ann..b@example.com",
        "ann@-example.com",
        "ann@example..com",
        "a" * 250 + "@example.com",
    ],
)
def test_malformed_emails_fail(email: str) -> None:
    assert email_problem(normalize_email(email)) is not None


def test_scope_strings_parse_and_format_canonically() -> None:
    assert parse_scope("") == frozenset()
    assert parse_scope(" orders.read  catalog.read ") == {"catalog.read", "orders.read"}
    assert format_scope({"orders.read", "catalog.read", "zz.custom"}) == "catalog.read orders.read zz.custom"
    for bad in ['a"b', "a\\b", "caf\u00e9", "tab\there", "x" * 2000]:
        with pytest.raises(ScopeSyntaxError):
            parse_scope(bad)


def test_narrowing() -> None:
    granted = frozenset({"a", "b"})
    assert narrow(granted, frozenset()) == granted
    assert narrow(granted, frozenset({"a"})) == {"a"}
    with pytest.raises(InvalidScope):
        narrow(granted, frozenset({"a", "c"}))


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:203.0.113.7:50123", "203.0.113.7"),
        ("ipv6:[2001:db8::1]:50123", "2001:db8::1"),
        ("ipv6:%5B::1%5D:40000", "::1"),
        ("unix:/tmp/sock", "unix:/tmp/sock"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_the_peer_is_counted_by_host_not_by_connection(peer: str | None, address: str) -> None:
    assert peer_address(peer) == address
