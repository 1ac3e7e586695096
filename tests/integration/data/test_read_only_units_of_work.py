"""Read-only units of work: no transaction on PostgreSQL, and GetProduct's raw driver read there.

Whatever path a read takes, it must return exactly what the read-write path returns, and see every
committed change at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from data_service.domain.products import ProductChanges
from data_service.domain.values import Money, new_id
from tests.integration.data.builders import T0, minutes, product

UnitOfWorkFactory = Callable[..., Any]


async def test_a_product_reads_the_same_through_a_read_only_unit_of_work(
    unit_of_work: UnitOfWorkFactory,
) -> None:
    item = product("RO-1", stock=7, price=1234)
    async with unit_of_work() as uow:
        await uow.products.add(item)
        await uow.commit()
    async with unit_of_work(read_only=True) as uow:
        read_only = await uow.products.get(item.id)
        missing = await uow.products.get(new_id())
    async with unit_of_work() as uow:
        read_write = await uow.products.get(item.id)
    assert read_only == read_write == item
    assert missing is None


async def test_a_read_only_unit_of_work_sees_each_committed_change(
    backend: str, unit_of_work: UnitOfWorkFactory
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite runs read-only units of work as ordinary (write-locking) transactions")
    item = product("RO-2", stock=1)
    async with unit_of_work() as uow:
        await uow.products.add(item)
        await uow.commit()
    changed = item.changed(ProductChanges(name="Renamed", price=Money("EUR", 99)), T0 + minutes(1))
    async with unit_of_work(read_only=True) as reader:
        assert await reader.products.get(item.id) == item
        async with unit_of_work() as writer:
            assert await writer.products.save_details(changed, expected_version=item.version)
            await writer.commit()
        # No snapshot is held across statements: the next read sees the commit.
        assert await reader.products.get(item.id) == changed
