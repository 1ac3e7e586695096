"""The one place where database exceptions raised by repositories become domain errors.

Integrity errors are recognised by the name of the violated constraint (PostgreSQL reports it; SQLite
reports CHECK names and the columns of UNIQUE keys); lost connections, deadlocks and serialization
failures are translated by `shared.db`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping

from sqlalchemy.exc import IntegrityError

from data_service.domain.errors import AmountOutOfRange
from shared.db import INFRASTRUCTURE_ERRORS, is_numeric_overflow, translate_infrastructure_error
from shared.errors import FailedPrecondition, NotFound, TesseraError

ErrorFactory = Callable[[], TesseraError]

# SQLite names the columns of a violated UNIQUE key, not the key: the constraint each list stands for.
_SQLITE_UNIQUE_KEYS = {
    "products.sku": "uq_products_sku",
    "products.id": "pk_products",
    "orders.id": "pk_orders",
    "order_lines.order_id, order_lines.product_id": "pk_order_lines",
    "stock_movements.id": "pk_stock_movements",
    "idempotency_keys.caller, idempotency_keys.request_id": "pk_idempotency_keys",
}
_SQLITE_PREFIXES = ("UNIQUE constraint failed: ", "CHECK constraint failed: ")

# What a violation means when the failing call has nothing more specific to say.
_DEFAULT_ERRORS: Mapping[str, ErrorFactory] = {
    "ck_products_stock_not_negative": lambda: FailedPrecondition(
        "stock never goes below zero", reason="INSUFFICIENT_STOCK"
    ),
    "fk_order_lines_product_id_products": lambda: NotFound("the product does not exist", reason="NOT_FOUND"),
    "fk_stock_movements_product_id_products": lambda: NotFound(
        "the product does not exist", reason="NOT_FOUND"
    ),
}


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint an integrity error is about, on PostgreSQL and SQLite."""
    driver_error = exc.orig
    name = getattr(getattr(driver_error, "__cause__", None), "constraint_name", None)
    if isinstance(name, str):
        return name
    message = str(driver_error)
    for prefix in _SQLITE_PREFIXES:
        if message.startswith(prefix):
            subject = message[len(prefix) :]
            return _SQLITE_UNIQUE_KEYS.get(subject, subject)
    return None


@contextlib.contextmanager
def database_errors(constraint_errors: Mapping[str, ErrorFactory] | None = None) -> Iterator[None]:
    """Run repository code, raising domain errors instead of driver exceptions.

    `constraint_errors` maps constraint names to the error the calling method means by a violation;
    a violation nobody maps is a bug and propagates unchanged (the client sees INTERNAL).
    """
    try:
        yield
    except IntegrityError as exc:
        name = violated_constraint(exc)
        factory = (constraint_errors or {}).get(name or "") or _DEFAULT_ERRORS.get(name or "")
        if factory is None:
            raise
        raise factory() from exc
    except INFRASTRUCTURE_ERRORS as exc:
        if is_numeric_overflow(exc):
            raise AmountOutOfRange() from exc
        translated = translate_infrastructure_error(exc)
        if translated is None:
            raise
        raise translated from exc
