"""Idempotency keys (AIP-155): one caller's request id stands for one request and its first result."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A caller's request id, with the fingerprint of the request it was first used for."""

    caller: str
    request_id: UUID
    request_hash: str


@dataclass(frozen=True, slots=True)
class FirstUse:
    """What a request id was first used for, and the id of the resource that request produced."""

    request_hash: str
    result_id: UUID


def request_fingerprint(operation: str, fields: Mapping[str, object]) -> str:
    """SHA-256 of the operation and its fields in canonical JSON: equal requests, equal fingerprints."""
    canonical = json.dumps(
        {"operation": operation, "fields": fields}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
