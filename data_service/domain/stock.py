"""The stock ledger: every change of a product's stock is one append-only movement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from data_service.domain.values import InvalidValue

MAX_ADJUSTMENT = 1_000_000
# Not in the SPEC; a bound keeps `stock_on_hand` far from the 64-bit limit whatever is added later.
MAX_INITIAL_STOCK = 1_000_000_000


class MovementReason(StrEnum):
    RESTOCK = "RESTOCK"
    CORRECTION = "CORRECTION"
    DAMAGE = "DAMAGE"
    ORDER = "ORDER"
    CANCELLATION = "CANCELLATION"


# What AdjustStock may record; ORDER and CANCELLATION are written by the order use cases only.
MANUAL_REASONS = frozenset({MovementReason.RESTOCK, MovementReason.CORRECTION, MovementReason.DAMAGE})


def adjustment_delta(delta: int) -> int:
    """A manual adjustment: not zero, at most 1 000 000 units either way."""
    if delta == 0:
        raise InvalidValue("delta must not be zero")
    if abs(delta) > MAX_ADJUSTMENT:
        raise InvalidValue(f"delta must be between -{MAX_ADJUSTMENT} and {MAX_ADJUSTMENT}")
    return delta


def initial_stock(units: int) -> int:
    if units < 0:
        raise InvalidValue("initial_stock must not be negative")
    if units > MAX_INITIAL_STOCK:
        raise InvalidValue(f"initial_stock must be at most {MAX_INITIAL_STOCK}")
    return units


@dataclass(frozen=True, slots=True)
class StockMovement:
    """One entry of a product's ledger; `order_id` is set for ORDER and CANCELLATION movements."""

    id: UUID
    product_id: UUID
    delta: int
    reason: MovementReason
    order_id: UUID | None
    create_time: datetime
