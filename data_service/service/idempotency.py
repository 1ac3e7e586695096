"""Running a create or an adjustment at most once per caller and request id (AIP-155)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

from data_service.domain.errors import RequestIdReused
from data_service.domain.idempotency import IdempotencyKey, request_fingerprint
from data_service.domain.values import Caller
from data_service.service.ports import UnitOfWork


async def first_result(
    uow: UnitOfWork,
    caller: Caller,
    request_id: UUID | None,
    *,
    operation: str,
    fields: Mapping[str, object],
    result_id: UUID,
    now: datetime,
) -> UUID | None:
    """None when this call must do the work (no request id, or its first use); otherwise the id of what
    the first use produced.

    Must be the first write of the unit of work: the claim is an insert into a unique key, so a racing
    duplicate waits right here for the first transaction and then reads its committed result, without
    having taken any other lock in between. The claim names `result_id` up front and disappears with a
    rollback, so a failed first attempt leaves the request id free.
    """
    if request_id is None:
        return None
    key = IdempotencyKey(caller.subject, request_id, request_fingerprint(operation, fields))
    first = await uow.idempotency_keys.claim(key, result_id, now)
    if first is None:
        return None
    if first.request_hash != key.request_hash:
        raise RequestIdReused()
    return first.result_id
