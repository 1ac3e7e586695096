"""Domain errors of the inventory service.

Each subclasses the `shared.errors` class of its status family and carries its `ErrorInfo.reason`: the
`InventoryErrorReason` value name without its prefix (protos/tessera/inventory/v1/error_reason.proto).
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from shared.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    PreconditionViolation,
)

# PreconditionFailure violation types of order lines (SPEC §3).
LINE_NOT_FOUND = "NOT_FOUND"
LINE_ARCHIVED = "ARCHIVED"
LINE_INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
LINE_CURRENCY_MISMATCH = "CURRENCY_MISMATCH"


def product_subject(product_id: UUID) -> str:
    return f"products/{product_id}"


def order_subject(order_id: UUID) -> str:
    return f"orders/{order_id}"


class ProductNotFound(NotFound):
    def __init__(self, product_id: UUID) -> None:
        super().__init__(f"product {product_id} does not exist", reason="NOT_FOUND")


class OrderNotFound(NotFound):
    """Also what another caller's order answers: the message must not tell the two apart."""

    def __init__(self, order_id: UUID) -> None:
        super().__init__(f"order {order_id} does not exist", reason="NOT_FOUND")


class SkuTaken(AlreadyExists):
    def __init__(self, sku: str) -> None:
        super().__init__(f"a product with SKU {sku} already exists", reason="SKU_TAKEN")


class RequestIdReused(InvalidArgument):
    def __init__(self) -> None:
        super().__init__(
            "this request_id was already used for a different request",
            reason="REQUEST_ID_REUSED",
            violations=[
                FieldViolation("request_id", "was already used for a different request; use a new UUID")
            ],
        )


class InvalidPageToken(InvalidArgument):
    def __init__(self, description: str) -> None:
        super().__init__(
            "the page token is invalid",
            reason="INVALID_PAGE_TOKEN",
            violations=[FieldViolation("page_token", description)],
        )


class EtagMismatch(Aborted):
    def __init__(self, resource: str) -> None:
        super().__init__(
            f"{resource} changed since the etag was read; read it again and retry", reason="ETAG_MISMATCH"
        )


class InsufficientStock(FailedPrecondition):
    def __init__(self, product_id: UUID, description: str) -> None:
        super().__init__(
            "not enough stock",
            reason="INSUFFICIENT_STOCK",
            violations=[
                PreconditionViolation(LINE_INSUFFICIENT_STOCK, product_subject(product_id), description)
            ],
        )


class ProductArchived(FailedPrecondition):
    def __init__(self, product_id: UUID) -> None:
        super().__init__(
            f"product {product_id} is archived and cannot be changed",
            reason="PRODUCT_ARCHIVED",
            violations=[
                PreconditionViolation(LINE_ARCHIVED, product_subject(product_id), "the product is archived")
            ],
        )


class InvalidOrderStatus(FailedPrecondition):
    def __init__(self, order_id: UUID, current: str, wanted: str) -> None:
        description = f"an order that is {current} cannot become {wanted}"
        super().__init__(
            description,
            reason="INVALID_ORDER_STATUS",
            violations=[PreconditionViolation("STATUS", order_subject(order_id), description)],
        )


class OrderNotServable(FailedPrecondition):
    """Names every line that cannot be served, so the client can fix them all at once."""

    def __init__(self, violations: Iterable[PreconditionViolation]) -> None:
        super().__init__(
            "one or more order lines cannot be served", reason="ORDER_NOT_SERVABLE", violations=violations
        )


class OwnerFilterForbidden(PermissionDenied):
    def __init__(self) -> None:
        super().__init__(
            "filtering orders by owner needs the scope 'orders.admin'", reason="OWNER_FILTER_FORBIDDEN"
        )


class AmountOutOfRange(OutOfRange):
    """A sum of money outgrew the 64-bit minor units the API carries (prices are capped well below)."""

    def __init__(self) -> None:
        super().__init__(
            "an amount is beyond the range of 64-bit minor units; ask for a shorter period",
            reason="AMOUNT_OUT_OF_RANGE",
        )
