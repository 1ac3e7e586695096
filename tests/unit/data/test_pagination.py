"""Page sizes and page tokens: opaque, bound to their filters, refused when forged."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from data_service.domain.errors import InvalidPageToken
from data_service.domain.values import InvalidValue, new_id
from data_service.service.pagination import (
    PageToken,
    filters_digest,
    key_of_newest_first,
    newest_first_key,
    page_of,
    page_size,
    parse_key,
    resume_key,
)


def test_page_size_defaults_caps_and_refuses_negative() -> None:
    assert page_size(0) == 50
    assert page_size(7) == 7
    assert page_size(1000) == 1000
    assert page_size(5000) == 1000
    with pytest.raises(InvalidValue):
        page_size(-1)


def test_tokens_round_trip_and_are_url_safe() -> None:
    token = PageToken(filters_digest("orders", "alice", None), ("2026-01-01T00:00:00+00:00", str(new_id())))
    encoded = token.encode()
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert PageToken.decode(encoded) == token
    assert PageToken.decode("") is None


@pytest.mark.parametrize(
    "raw",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(json.dumps({"f": 1, "k": []}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"f": "x", "k": [1]}).encode()).decode(),
        "A" * 2000,
    ],
)
def test_tokens_we_did_not_issue_are_refused(raw: str) -> None:
    with pytest.raises(InvalidValue):
        PageToken.decode(raw)


def test_a_token_only_resumes_the_listing_and_filters_it_was_made_for() -> None:
    digest = filters_digest("products", "AB", False, False)
    token = PageToken(digest, ("AB-1",))
    assert resume_key(token, digest) == ("AB-1",)
    with pytest.raises(InvalidPageToken) as raised:
        resume_key(token, filters_digest("products", "AB", True, False))
    assert raised.value.reason == "INVALID_PAGE_TOKEN"
    assert [v.field for v in raised.value.violations] == ["page_token"]


def test_a_key_of_the_wrong_shape_is_an_invalid_token() -> None:
    for key in (("only-one",), ("not a time", str(new_id())), ("2026-01-01T00:00:00", str(new_id()))):
        with pytest.raises(InvalidPageToken):
            parse_key(key, newest_first_key)
    when = datetime(2026, 1, 1, 12, 30, 0, 123456, tzinfo=UTC)
    row = new_id()
    parsed = parse_key(key_of_newest_first(when, row), newest_first_key)
    assert parsed is not None
    assert (parsed.create_time, parsed.id) == (when, row)


def test_a_page_has_a_token_only_when_more_rows_exist() -> None:
    digest = filters_digest("x")
    assert page_of([1, 2, 3], 3, digest, lambda n: (str(n),)).next_page_token == ""
    page = page_of([1, 2, 3, 4], 3, digest, lambda n: (str(n),))
    assert page.items == [1, 2, 3]
    assert PageToken.decode(page.next_page_token) == PageToken(digest, ("3",))
