"""What a list query asks for, and where a keyset page starts. Shared by use cases and repositories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from data_service.domain.orders import OrderStatus


@dataclass(frozen=True, slots=True)
class ProductFilter:
    """Products ordered by SKU; archived ones only when asked for."""

    sku_prefix: str = ""
    in_stock_only: bool = False
    include_archived: bool = False


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Orders newest first; `owner` None means everybody's (orders.admin only)."""

    owner: str | None = None
    status: OrderStatus | None = None


@dataclass(frozen=True, slots=True)
class NewestFirstKey:
    """The position after which a newest-first page continues: `(create_time, id)` descending."""

    create_time: datetime
    id: UUID
