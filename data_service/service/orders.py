"""Use cases of orders: place (reserving stock), read, list, cancel (restocking), fulfil, report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from data_service.domain.errors import EtagMismatch, OrderNotFound, OwnerFilterForbidden
from data_service.domain.orders import Order, OrderLine, OrderStatus, plan_lines
from data_service.domain.queries import OrderFilter
from data_service.domain.reports import SalesReportRow
from data_service.domain.stock import MovementReason, StockMovement
from data_service.domain.values import Caller, new_id
from data_service.service.commands import ChangeOrderStatus, CreateOrder, ListOrders, SalesReport
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
from data_service.service.ports import Clock, UnitOfWork, UnitOfWorkFactory, utc_now
from shared.errors import PermissionDenied, TransactionConflict
from shared.retry import retry_on_conflict


class OrderService:
    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock = utc_now) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock

    async def create_order(self, caller: Caller, command: CreateOrder) -> Order:
        """Place an order for the caller, reserving the stock of every line or of none.

        The products are locked in id order, checked all together (`OrderNotServable` names every line
        that cannot be served and changes nothing), then each product's stock and the ledger change in
        the same transaction as the order is written. Repeating a request id returns the first order.
        """
        return await retry_on_conflict(lambda: self._create_order(caller, command))

    async def _create_order(self, caller: Caller, command: CreateOrder) -> Order:
        now = self._clock()
        order_id = new_id()
        async with self._unit_of_work() as uow:
            first = await first_result(
                uow,
                caller,
                command.request_id,
                operation="CreateOrder",
                fields=command.fingerprint_fields(),
                result_id=order_id,
                now=now,
            )
            if first is not None:
                return await _visible_order(uow, caller, first)
            products = await uow.products.lock_for_stock_change([line.product_id for line in command.lines])
            order = Order.place(
                id=order_id, owner=caller.subject, lines=plan_lines(command.lines, products), now=now
            )
            await uow.products.change_stock({line.product_id: -line.quantity for line in order.lines}, now)
            await uow.orders.add(order)
            await uow.movements.add(_movements(order.lines, order.id, MovementReason.ORDER, now))
            await uow.commit()
        return order

    async def get_order(self, caller: Caller, order_id: UUID) -> Order:
        """One order; another caller's order answers NOT_FOUND unless the caller has orders.admin."""
        async with self._unit_of_work(read_only=True) as uow:
            return await _visible_order(uow, caller, order_id)

    async def list_orders(self, caller: Caller, command: ListOrders) -> Page[Order]:
        """One page of orders, newest first: the caller's own, or anybody's for orders.admin."""
        if command.owner is not None and not caller.is_orders_admin:
            raise OwnerFilterForbidden()
        owner = command.owner if caller.is_orders_admin else caller.subject
        query = OrderFilter(owner=owner, status=command.status)
        status = query.status.value if query.status else None
        digest = filters_digest("orders", query.owner, status)
        after = parse_key(resume_key(command.page_token, digest), newest_first_key)
        async with self._unit_of_work(read_only=True) as uow:
            rows = await uow.orders.list_page(query, after=after, limit=command.page_size + 1)
        return page_of(rows, command.page_size, digest, lambda o: key_of_newest_first(o.create_time, o.id))

    async def cancel_order(self, caller: Caller, command: ChangeOrderStatus) -> Order:
        """PLACED → CANCELLED, putting every line's stock back in the same transaction."""
        return await retry_on_conflict(lambda: self._change_status(caller, command, OrderStatus.CANCELLED))

    async def fulfill_order(self, caller: Caller, command: ChangeOrderStatus) -> Order:
        """PLACED → FULFILLED; needs orders.admin."""
        _require_admin(caller)
        return await retry_on_conflict(lambda: self._change_status(caller, command, OrderStatus.FULFILLED))

    async def _change_status(self, caller: Caller, command: ChangeOrderStatus, status: OrderStatus) -> Order:
        now = self._clock()
        async with self._unit_of_work() as uow:
            order = await _visible_order(uow, caller, command.order_id)
            if command.expected_version is not None and command.expected_version != order.version:
                raise EtagMismatch(f"order {order.id}")
            changed = order.moved_to(status, now)
            if not await uow.orders.save_status(changed, expected_version=order.version):
                if command.expected_version is not None:
                    raise EtagMismatch(f"order {order.id}")
                # A concurrent cancel or fulfil won; running again reports the status it left.
                raise TransactionConflict("the order changed concurrently")
            if status is OrderStatus.CANCELLED:
                await uow.products.change_stock({line.product_id: line.quantity for line in order.lines}, now)
                await uow.movements.add(_movements(order.lines, order.id, MovementReason.CANCELLATION, now))
            await uow.commit()
        return changed

    async def sales_report(self, caller: Caller, command: SalesReport) -> list[SalesReportRow]:
        """Units sold and revenue per product over placed and fulfilled orders created in
        `[start_time, end_time)`, best sellers first; needs orders.admin."""
        _require_admin(caller)
        async with self._unit_of_work(read_only=True) as uow:
            return await uow.orders.sales_report(command.start_time, command.end_time, command.limit)


def _require_admin(caller: Caller) -> None:
    # The RPC's declared scope already says so; the use case keeps the rule when called otherwise.
    if not caller.is_orders_admin:
        raise PermissionDenied("this needs the scope 'orders.admin'")


async def _visible_order(uow: UnitOfWork, caller: Caller, order_id: UUID) -> Order:
    order = await uow.orders.get(order_id)
    if order is None or not order.visible_to(caller):
        raise OrderNotFound(order_id)
    return order


def _movements(
    lines: Sequence[OrderLine], order_id: UUID, reason: MovementReason, now: datetime
) -> list[StockMovement]:
    sign = -1 if reason is MovementReason.ORDER else 1
    return [
        StockMovement(
            id=new_id(),
            product_id=line.product_id,
            delta=sign * line.quantity,
            reason=reason,
            order_id=order_id,
            create_time=now,
        )
        for line in lines
    ]
