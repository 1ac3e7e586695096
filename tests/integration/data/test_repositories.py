"""The SQLAlchemy repositories on SQLite and PostgreSQL: round trips, keysets, compare-and-set, reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from data_service.domain.errors import SkuTaken
from data_service.domain.idempotency import FirstUse, IdempotencyKey
from data_service.domain.orders import OrderStatus
from data_service.domain.queries import NewestFirstKey, OrderFilter, ProductFilter
from data_service.domain.values import Money, new_id
from data_service.repository.unit_of_work import InventoryUnitOfWork
from shared.errors import FailedPrecondition
from tests.integration.data.builders import T0, minutes, order, product, restock

UnitOfWorkFactory = Callable[[], InventoryUnitOfWork]


async def test_a_product_round_trips_exactly(unit_of_work: UnitOfWorkFactory) -> None:
    item = product("RT-1", stock=3)
    async with unit_of_work() as uow:
        await uow.products.add(item)
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.products.get(item.id) == item
        assert await uow.products.get(new_id()) is None


async def test_nothing_is_kept_without_commit(unit_of_work: UnitOfWorkFactory) -> None:
    item = product()
    async with unit_of_work() as uow:
        await uow.products.add(item)
    async with unit_of_work() as uow:
        assert await uow.products.get(item.id) is None


async def test_a_duplicate_sku_is_a_domain_error(unit_of_work: UnitOfWorkFactory) -> None:
    async with unit_of_work() as uow:
        await uow.products.add(product("TWICE"))
        await uow.commit()
    async with unit_of_work() as uow:
        with pytest.raises(SkuTaken) as raised:
            await uow.products.add(product("TWICE"))
    assert raised.value.reason == "SKU_TAKEN"


async def test_stock_below_zero_is_refused_by_the_database(unit_of_work: UnitOfWorkFactory) -> None:
    item = product(stock=2)
    async with unit_of_work() as uow:
        await uow.products.add(item)
        await uow.commit()
    async with unit_of_work() as uow:
        with pytest.raises(FailedPrecondition) as raised:
            await uow.products.change_stock({item.id: -3}, T0)
    assert raised.value.reason == "INSUFFICIENT_STOCK"
    async with unit_of_work() as uow:
        assert (await uow.products.get(item.id)).stock_on_hand == 2  # type: ignore[union-attr]


async def test_compare_and_set_writes_only_over_the_expected_version(unit_of_work: UnitOfWorkFactory) -> None:
    item = product()
    async with unit_of_work() as uow:
        await uow.products.add(item)
        await uow.commit()
    renamed = replace(item, name="Renamed", version=2, price=Money("USD", 1))
    async with unit_of_work() as uow:
        assert not await uow.products.save_details(renamed, expected_version=5)
        assert await uow.products.save_details(renamed, expected_version=1)
        assert not await uow.products.save_details(replace(renamed, version=3), expected_version=1)
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.products.get(item.id) == renamed


async def test_locking_returns_existing_products_and_stock_changes_apply(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    a, b = product(stock=5), product(stock=5)
    async with unit_of_work() as uow:
        for item in (a, b):
            await uow.products.add(item)
        await uow.commit()
    later = T0 + minutes(5)
    async with unit_of_work() as uow:
        locked = await uow.products.lock_for_stock_change([b.id, a.id, new_id(), a.id])
        assert set(locked) == {a.id, b.id}
        await uow.products.change_stock({a.id: -5, b.id: 7}, later)
        await uow.commit()
    async with unit_of_work() as uow:
        stored = await uow.products.lock_for_stock_change([a.id, b.id])
    assert (stored[a.id].stock_on_hand, stored[b.id].stock_on_hand) == (0, 12)
    assert stored[a.id].update_time == later
    assert stored[a.id].version == 1


async def test_product_pages_follow_byte_order_of_skus_on_every_database(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    skus = ["B_2", "B-2", "B2", "A", "B", "BA", "B-10", "C"]
    items = {sku: product(sku, stock=0 if sku == "B2" else 1) for sku in skus}
    async with unit_of_work() as uow:
        for item in items.values():
            await uow.products.add(item)
        await uow.products.save_details(replace(items["BA"], archived=True, version=2), expected_version=1)
        await uow.commit()

    async def skus_of(query: ProductFilter, after: str | None = None, limit: int = 100) -> list[str]:
        async with unit_of_work() as uow:
            return [p.sku.value for p in await uow.products.list_page(query, after_sku=after, limit=limit)]

    assert await skus_of(ProductFilter()) == ["A", "B", "B-10", "B-2", "B2", "B_2", "C"]
    assert await skus_of(ProductFilter(include_archived=True)) == [
        "A",
        "B",
        "B-10",
        "B-2",
        "B2",
        "BA",
        "B_2",
        "C",
    ]
    assert await skus_of(ProductFilter(sku_prefix="B-")) == ["B-10", "B-2"]
    assert await skus_of(ProductFilter(sku_prefix="B_")) == ["B_2"]
    assert await skus_of(ProductFilter(in_stock_only=True, sku_prefix="B")) == ["B", "B-10", "B-2", "B_2"]
    assert await skus_of(ProductFilter(), after="B-2", limit=2) == ["B2", "B_2"]


async def test_movements_page_newest_first_with_ties_broken_by_id(unit_of_work: UnitOfWorkFactory) -> None:
    item = product(stock=0)
    same_time = [restock(item, 1, T0) for _ in range(3)]
    earlier = restock(item, 2, T0 - timedelta(microseconds=1))
    later = restock(item, 3, T0 + timedelta(microseconds=1))
    async with unit_of_work() as uow:
        await uow.products.add(item)
        await uow.movements.add([*same_time, earlier, later])
        await uow.commit()
    expected = [later, *sorted(same_time, key=lambda m: m.id, reverse=True), earlier]

    walked = []
    after = None
    async with unit_of_work() as uow:
        assert await uow.movements.get(later.id) == later
        while True:
            page = await uow.movements.list_page(item.id, after=after, limit=2)
            walked += page
            if len(page) < 2:
                break
            after = NewestFirstKey(page[-1].create_time, page[-1].id)
    assert walked == expected


async def test_orders_keep_their_lines_in_request_order(unit_of_work: UnitOfWorkFactory) -> None:
    a, b, c = product("ZZ"), product("AA"), product("MM")
    placed = order("alice", (a, 1), (b, 2), (c, 3))
    async with unit_of_work() as uow:
        for item in (a, b, c):
            await uow.products.add(item)
        await uow.orders.add(placed)
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.orders.get(placed.id) == placed
        assert await uow.orders.get(new_id()) is None
        cancelled = placed.moved_to(OrderStatus.CANCELLED, T0 + minutes(1))
        assert not await uow.orders.save_status(cancelled, expected_version=2)
        assert await uow.orders.save_status(cancelled, expected_version=1)
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.orders.get(placed.id) == cancelled


async def test_order_pages_filter_by_owner_and_status_newest_first(unit_of_work: UnitOfWorkFactory) -> None:
    item = product()
    history = [
        order("alice", (item, 1), at=T0 + minutes(1)),
        order("bob", (item, 1), at=T0 + minutes(2)),
        order("alice", (item, 1), at=T0 + minutes(3), status=OrderStatus.CANCELLED),
        order("alice", (item, 1), at=T0 + minutes(4)),
    ]
    async with unit_of_work() as uow:
        await uow.products.add(item)
        for placed in history:
            await uow.orders.add(placed)
        await uow.commit()

    async def ids(query: OrderFilter, after: NewestFirstKey | None = None) -> list[int]:
        async with unit_of_work() as uow:
            page = await uow.orders.list_page(query, after=after, limit=10)
        return [history.index(o) for o in page]

    assert await ids(OrderFilter()) == [3, 2, 1, 0]
    assert await ids(OrderFilter(owner="alice")) == [3, 2, 0]
    assert await ids(OrderFilter(owner="alice", status=OrderStatus.PLACED)) == [3, 0]
    assert await ids(OrderFilter(status=OrderStatus.CANCELLED)) == [2]
    assert await ids(OrderFilter(), after=NewestFirstKey(history[2].create_time, history[2].id)) == [1, 0]


async def test_the_sales_report_counts_sold_orders_in_the_half_open_period(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    a, b, c = product("A", price=100), product("B", price=7), product("C", price=1)
    history = [
        order("x", (a, 2), (b, 5), at=T0),
        order("y", (a, 1), at=T0 + minutes(10), status=OrderStatus.FULFILLED),
        order("y", (c, 5), at=T0 + minutes(20)),
        order("z", (b, 50), at=T0 + minutes(5), status=OrderStatus.CANCELLED),
        order("z", (a, 40), at=T0 + minutes(30)),  # at the end of the period: not in it
        order("z", (a, 40), at=T0 - timedelta(microseconds=1)),
    ]
    async with unit_of_work() as uow:
        for item in (a, b, c):
            await uow.products.add(item)
        for placed in history:
            await uow.orders.add(placed)
        await uow.commit()
    async with unit_of_work() as uow:
        rows = await uow.orders.sales_report(T0, T0 + minutes(30), limit=10)
        top = await uow.orders.sales_report(T0, T0 + minutes(30), limit=2)
    assert [(r.sku, r.units_sold, r.revenue) for r in rows] == [
        ("B", 5, Money("EUR", 35)),
        ("C", 5, Money("EUR", 5)),
        ("A", 3, Money("EUR", 300)),
    ]
    assert rows[0].product_id == b.id
    assert [r.sku for r in top] == ["B", "C"]


async def test_an_idempotency_key_is_claimed_once(unit_of_work: UnitOfWorkFactory) -> None:
    key = IdempotencyKey("alice", new_id(), "h" * 64)
    first, second = new_id(), new_id()
    async with unit_of_work() as uow:
        assert await uow.idempotency_keys.claim(key, first, T0) is None
        await uow.commit()
    async with unit_of_work() as uow:
        assert await uow.idempotency_keys.claim(key, second, T0) == FirstUse("h" * 64, first)
        other_caller = IdempotencyKey("bob", key.request_id, "g" * 64)
        assert await uow.idempotency_keys.claim(other_caller, second, T0) is None
