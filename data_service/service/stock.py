"""Use cases of the stock ledger: manual adjustments and reading a product's movements."""

from __future__ import annotations

from data_service.domain.errors import ProductNotFound
from data_service.domain.stock import StockMovement
from data_service.domain.values import Caller, new_id
from data_service.service.commands import AdjustStock, AdjustStockResult, ListStockMovements
from data_service.service.idempotency import first_result
from data_service.service.pagination import (
    Page,
    filters_digest,
    key_of_newest_first,
    newest_first_key,
    page_of,
    parse_key,
    resume_key,
)
from data_service.service.ports import Clock, UnitOfWorkFactory, utc_now
from shared.retry import retry_on_conflict


class StockService:
    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock = utc_now) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock

    async def adjust_stock(self, caller: Caller, command: AdjustStock) -> AdjustStockResult:
        """Add or remove stock by hand: the product's stock and a new movement change together.

        Stock never goes below zero (FAILED_PRECONDITION); archived products cannot be adjusted.
        Repeating a request id returns the movement of the first call with the product as it is now.
        """
        return await retry_on_conflict(lambda: self._adjust_stock(caller, command))

    async def _adjust_stock(self, caller: Caller, command: AdjustStock) -> AdjustStockResult:
        now = self._clock()
        movement = StockMovement(
            id=new_id(),
            product_id=command.product_id,
            delta=command.delta,
            reason=command.reason,
            order_id=None,
            create_time=now,
        )
        async with self._unit_of_work() as uow:
            first = await first_result(
                uow,
                caller,
                command.request_id,
                operation="AdjustStock",
                fields=command.fingerprint_fields(),
                result_id=movement.id,
                now=now,
            )
            if first is not None:
                earlier = await uow.movements.get(first)
                current = await uow.products.get(earlier.product_id) if earlier else None
                if earlier is None or current is None:
                    raise ProductNotFound(command.product_id)
                return AdjustStockResult(product=current, movement=earlier)
            locked = await uow.products.lock_for_stock_change([command.product_id])
            product = locked.get(command.product_id)
            if product is None:
                raise ProductNotFound(command.product_id)
            adjusted = product.stock_adjusted(command.delta, now)
            await uow.products.change_stock({product.id: command.delta}, now)
            await uow.movements.add([movement])
            await uow.commit()
        return AdjustStockResult(product=adjusted, movement=movement)

    async def list_movements(self, command: ListStockMovements) -> Page[StockMovement]:
        """One page of a product's ledger, newest first; NOT_FOUND for a product that does not exist."""
        digest = filters_digest("movements", str(command.product_id))
        after = parse_key(resume_key(command.page_token, digest), newest_first_key)
        async with self._unit_of_work(read_only=True) as uow:
            if await uow.products.get(command.product_id) is None:
                raise ProductNotFound(command.product_id)
            rows = await uow.movements.list_page(command.product_id, after=after, limit=command.page_size + 1)
        return page_of(rows, command.page_size, digest, lambda m: key_of_newest_first(m.create_time, m.id))
