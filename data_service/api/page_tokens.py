"""Page tokens are signed (HMAC-SHA256 with a server-side key) before they leave the service.

The service layer writes the position and the filters' fingerprint into a token; a client could rewrite
both (the fingerprint is a hash it can recompute) and put any value in front of the database. The seal
makes a token tamper-evident: only tokens made with the key (which replicas share through
`DATA_PAGE_TOKEN_KEY` / `DATA_PAGE_TOKEN_KEY_FILE`) are opened at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from data_service.domain.values import InvalidValue
from data_service.service.pagination import MAX_TOKEN_LENGTH
from shared.config import PAGE_TOKEN_KEY_MIN_BYTES

# Binds the MAC to its purpose: the same key can never authenticate anything but a page token.
_CONTEXT = b"tessera.inventory.page-token.v1\x00"
# Base64url of a SHA-256 MAC without padding.
_MAC_LENGTH = 43


class PageTokenSeal:
    def __init__(self, key: bytes) -> None:
        if len(key) < PAGE_TOKEN_KEY_MIN_BYTES:
            raise ValueError(f"a page-token key needs at least {PAGE_TOKEN_KEY_MIN_BYTES} bytes")
        self._key = key

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._key, _CONTEXT + body.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def seal(self, token: str) -> str:
        """`token.mac`; an empty token (no next page) stays empty."""
        return f"{token}.{self._mac(token)}" if token else ""

    def open(self, raw: str) -> str:
        """The token inside a sealed one; `InvalidValue` unless this key sealed it."""
        if not raw:
            return ""
        body, separator, mac = raw.rpartition(".")
        if (
            len(raw) > MAX_TOKEN_LENGTH + 1 + _MAC_LENGTH
            or not separator
            or not body
            or not raw.isascii()
            or not hmac.compare_digest(mac, self._mac(body))
        ):
            raise InvalidValue("page_token is not a token this service issued")
        return body
