"""Use cases against in-memory repositories: rules, the state machine, commit and rollback."""

from __future__ import annotations

import uuid

import pytest

from data_service.domain.errors import (
    EtagMismatch,
    InsufficientStock,
    InvalidOrderStatus,
    OrderNotFound,
    OrderNotServable,
    OwnerFilterForbidden,
    ProductArchived,
    ProductNotFound,
    RequestIdReused,
    SkuTaken,
)
from data_service.domain.orders import LineRequest, OrderStatus
from data_service.domain.products import ProductChanges
from data_service.domain.queries import ProductFilter
from data_service.domain.stock import MovementReason
from data_service.domain.values import Caller, Money, Sku, new_id
from data_service.service import commands
from data_service.service.catalog import CatalogService
from data_service.service.orders import OrderService
from data_service.service.pagination import PageToken
from data_service.service.stock import StockService
from shared.errors import PermissionDenied, TransactionConflict
from tests.unit.data.fakes import FakeClock, FakeStore

STAFF = Caller("staff", frozenset({"catalog.write", "stock.write", "orders.admin", "orders.read"}))
ALICE = Caller("alice", frozenset({"catalog.read", "orders.read", "orders.write"}))
BOB = Caller("bob", frozenset({"catalog.read", "orders.read", "orders.write"}))


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def catalog(store: FakeStore) -> CatalogService:
    return CatalogService(store.unit_of_work, clock=FakeClock())


@pytest.fixture
def stock(store: FakeStore) -> StockService:
    return StockService(store.unit_of_work, clock=FakeClock())


@pytest.fixture
def orders(store: FakeStore) -> OrderService:
    return OrderService(store.unit_of_work, clock=FakeClock())


def create(sku: str = "", units: int = 10, *, request_id: uuid.UUID | None = None, **fields: object):
    return commands.CreateProduct(
        sku=Sku(sku or f"SKU-{uuid.uuid4().hex[:6].upper()}"),
        name=str(fields.get("name", "Widget")),
        description="",
        price=fields.get("price", Money("EUR", 500)),  # type: ignore[arg-type]
        initial_stock=units,
        request_id=request_id,
    )


def order_of(*lines: tuple[uuid.UUID, int], request_id: uuid.UUID | None = None) -> commands.CreateOrder:
    return commands.CreateOrder(lines=tuple(LineRequest(p, q) for p, q in lines), request_id=request_id)


def assert_ledger_exact(store: FakeStore) -> None:
    for product in store.database.products.values():
        assert product.stock_on_hand >= 0
        assert product.stock_on_hand == store.database.ledger_sum(product.id)


# --- catalog ---------------------------------------------------------------------------------------


async def test_creating_a_product_records_its_initial_stock_and_commits(
    catalog: CatalogService, store: FakeStore
) -> None:
    product = await catalog.create_product(STAFF, create("A-1", 7))
    assert store.events == ["begin", "commit"]
    assert store.database.products[product.id].stock_on_hand == 7
    (movement,) = store.database.movements.values()
    assert (movement.delta, movement.reason, movement.order_id) == (7, MovementReason.RESTOCK, None)


async def test_a_product_without_stock_has_an_empty_ledger(catalog: CatalogService, store: FakeStore) -> None:
    await catalog.create_product(STAFF, create(units=0))
    assert store.database.movements == {}
    assert_ledger_exact(store)


async def test_a_taken_sku_rolls_back_everything(catalog: CatalogService, store: FakeStore) -> None:
    await catalog.create_product(STAFF, create("DUP", 1))
    with pytest.raises(SkuTaken):
        await catalog.create_product(STAFF, create("DUP", 5, request_id=uuid.uuid4()))
    assert store.events[-1] == "rollback"
    assert len(store.database.products) == 1
    assert store.database.idempotency == {}


async def test_a_repeated_request_id_returns_the_first_product(
    catalog: CatalogService, store: FakeStore
) -> None:
    request_id = uuid.uuid4()
    first = await catalog.create_product(STAFF, create("ONCE", 3, request_id=request_id))
    again = await catalog.create_product(STAFF, create("ONCE", 3, request_id=request_id))
    assert again == first
    assert len(store.database.movements) == 1
    # Another caller's request ids are its own.
    other = Caller("staff-2", STAFF.scopes)
    with pytest.raises(SkuTaken):
        await catalog.create_product(other, create("ONCE", 3, request_id=request_id))


async def test_a_request_id_reused_for_another_request_is_refused(
    catalog: CatalogService, store: FakeStore
) -> None:
    request_id = uuid.uuid4()
    await catalog.create_product(STAFF, create("FIRST", 3, request_id=request_id))
    with pytest.raises(RequestIdReused) as raised:
        await catalog.create_product(STAFF, create("SECOND", 3, request_id=request_id))
    assert raised.value.reason == "REQUEST_ID_REUSED"
    assert len(store.database.products) == 1


async def test_update_with_a_stale_etag_changes_nothing(catalog: CatalogService, store: FakeStore) -> None:
    product = await catalog.create_product(STAFF, create())
    await catalog.update_product(commands.UpdateProduct(product.id, ProductChanges(name="B")))
    with pytest.raises(EtagMismatch):
        await catalog.update_product(
            commands.UpdateProduct(product.id, ProductChanges(name="C"), expected_version=product.version)
        )
    assert store.database.products[product.id].name == "B"
    assert store.events[-1] == "rollback"


async def test_update_changes_only_the_given_fields(catalog: CatalogService) -> None:
    product = await catalog.create_product(STAFF, create(name="Old"))
    updated = await catalog.update_product(
        commands.UpdateProduct(product.id, ProductChanges(price=Money("USD", 9)), expected_version=1)
    )
    assert (updated.name, updated.price, updated.version) == ("Old", Money("USD", 9), 2)
    assert updated.update_time > product.update_time


async def test_a_lost_compare_and_set_without_etag_is_retried(
    catalog: CatalogService, store: FakeStore
) -> None:
    product = await catalog.create_product(STAFF, create())
    store.lose_compare_and_set = 1
    updated = await catalog.update_product(commands.UpdateProduct(product.id, ProductChanges(name="Won")))
    assert updated.name == "Won"
    assert store.events[-4:] == ["begin", "rollback", "begin", "commit"]


async def test_a_lost_compare_and_set_with_an_etag_is_aborted(
    catalog: CatalogService, store: FakeStore
) -> None:
    product = await catalog.create_product(STAFF, create())
    store.lose_compare_and_set = 1
    with pytest.raises(EtagMismatch):
        await catalog.update_product(commands.UpdateProduct(product.id, ProductChanges(name="X"), 1))


async def test_archived_products_are_hidden_and_frozen(catalog: CatalogService) -> None:
    product = await catalog.create_product(STAFF, create("HIDE"))
    archived = await catalog.archive_product(commands.ArchiveProduct(product.id))
    assert archived.archived
    assert await catalog.archive_product(commands.ArchiveProduct(product.id)) == archived
    page = await catalog.list_products(commands.ListProducts(ProductFilter(), page_size=10))
    assert page.items == []
    page = await catalog.list_products(commands.ListProducts(ProductFilter(include_archived=True), 10))
    assert [p.id for p in page.items] == [product.id]
    with pytest.raises(ProductArchived):
        await catalog.update_product(commands.UpdateProduct(product.id, ProductChanges(name="X")))


async def test_unknown_products_are_not_found(catalog: CatalogService) -> None:
    with pytest.raises(ProductNotFound):
        await catalog.get_product(new_id())
    with pytest.raises(ProductNotFound):
        await catalog.archive_product(commands.ArchiveProduct(new_id()))


async def test_listing_walks_pages_by_sku(catalog: CatalogService) -> None:
    for sku in ("C", "A", "B", "D", "E"):
        await catalog.create_product(STAFF, create(sku))
    seen: list[str] = []
    token = None
    while True:
        page = await catalog.list_products(commands.ListProducts(ProductFilter(), 2, token))
        seen += [p.sku.value for p in page.items]
        if not page.next_page_token:
            break
        token = PageToken.decode(page.next_page_token)
    assert seen == ["A", "B", "C", "D", "E"]


# --- stock -----------------------------------------------------------------------------------------


async def test_adjusting_below_zero_is_refused_and_changes_nothing(
    catalog: CatalogService, stock: StockService, store: FakeStore
) -> None:
    product = await catalog.create_product(STAFF, create(units=3))
    with pytest.raises(InsufficientStock):
        await stock.adjust_stock(STAFF, commands.AdjustStock(product.id, -4, MovementReason.DAMAGE))
    assert store.events[-1] == "rollback"
    assert store.database.products[product.id].stock_on_hand == 3
    assert len(store.database.movements) == 1


async def test_an_adjustment_moves_stock_and_ledger_together(
    catalog: CatalogService, stock: StockService, store: FakeStore
) -> None:
    product = await catalog.create_product(STAFF, create(units=3))
    result = await stock.adjust_stock(STAFF, commands.AdjustStock(product.id, -3, MovementReason.CORRECTION))
    assert result.product.stock_on_hand == 0
    assert (result.movement.delta, result.movement.reason) == (-3, MovementReason.CORRECTION)
    assert_ledger_exact(store)


async def test_a_repeated_adjustment_applies_once(
    catalog: CatalogService, stock: StockService, store: FakeStore
) -> None:
    product = await catalog.create_product(STAFF, create(units=0))
    command = commands.AdjustStock(product.id, 5, MovementReason.RESTOCK, request_id=uuid.uuid4())
    first = await stock.adjust_stock(STAFF, command)
    again = await stock.adjust_stock(STAFF, command)
    assert again.movement == first.movement
    assert store.database.products[product.id].stock_on_hand == 5
    with pytest.raises(RequestIdReused):
        await stock.adjust_stock(
            STAFF, commands.AdjustStock(product.id, 6, MovementReason.RESTOCK, request_id=command.request_id)
        )


async def test_archived_products_cannot_be_adjusted(catalog: CatalogService, stock: StockService) -> None:
    product = await catalog.create_product(STAFF, create(units=3))
    await catalog.archive_product(commands.ArchiveProduct(product.id))
    with pytest.raises(ProductArchived):
        await stock.adjust_stock(STAFF, commands.AdjustStock(product.id, 1, MovementReason.RESTOCK))


async def test_movements_of_an_unknown_product_are_not_found(stock: StockService) -> None:
    with pytest.raises(ProductNotFound):
        await stock.list_movements(commands.ListStockMovements(new_id(), 10))


# --- orders ----------------------------------------------------------------------------------------


async def test_an_order_reserves_stock_and_writes_the_ledger(
    catalog: CatalogService, orders: OrderService, store: FakeStore
) -> None:
    a = await catalog.create_product(STAFF, create("A", 5))
    b = await catalog.create_product(STAFF, create("B", 5, price=Money("EUR", 120)))
    order = await orders.create_order(ALICE, order_of((b.id, 2), (a.id, 1)))
    assert (order.owner, order.status, order.total) == ("alice", OrderStatus.PLACED, Money("EUR", 740))
    assert [line.product_id for line in order.lines] == [b.id, a.id]
    assert store.database.products[a.id].stock_on_hand == 4
    assert store.database.products[b.id].stock_on_hand == 3
    assert store.opened[-1].lock_orders == [sorted([a.id, b.id])]
    assert_ledger_exact(store)


async def test_an_order_that_cannot_be_served_names_every_line_and_changes_nothing(
    catalog: CatalogService, orders: OrderService, store: FakeStore
) -> None:
    fine = await catalog.create_product(STAFF, create("FINE", 5))
    low = await catalog.create_product(STAFF, create("LOW", 1))
    gone = await catalog.create_product(STAFF, create("GONE", 5))
    await catalog.archive_product(commands.ArchiveProduct(gone.id))
    missing = new_id()
    before = (dict(store.database.products), dict(store.database.movements))

    with pytest.raises(OrderNotServable) as raised:
        await orders.create_order(ALICE, order_of((fine.id, 1), (low.id, 2), (gone.id, 1), (missing, 1)))

    assert {(v.type, v.subject) for v in raised.value.violations} == {
        ("INSUFFICIENT_STOCK", f"products/{low.id}"),
        ("ARCHIVED", f"products/{gone.id}"),
        ("NOT_FOUND", f"products/{missing}"),
    }
    assert (store.database.products, store.database.movements) == before
    assert store.database.orders == {}
    assert store.events[-1] == "rollback"


async def test_a_repeated_order_request_returns_the_first_order(
    catalog: CatalogService, orders: OrderService, store: FakeStore
) -> None:
    product = await catalog.create_product(STAFF, create(units=5))
    request_id = uuid.uuid4()
    first = await orders.create_order(ALICE, order_of((product.id, 2), request_id=request_id))
    again = await orders.create_order(ALICE, order_of((product.id, 2), request_id=request_id))
    assert again == first
    assert store.database.products[product.id].stock_on_hand == 3
    with pytest.raises(RequestIdReused):
        await orders.create_order(ALICE, order_of((product.id, 1), request_id=request_id))


async def test_cancel_restocks_once_and_a_second_cancel_is_refused(
    catalog: CatalogService, orders: OrderService, store: FakeStore
) -> None:
    product = await catalog.create_product(STAFF, create(units=5))
    order = await orders.create_order(ALICE, order_of((product.id, 4)))
    cancelled = await orders.cancel_order(ALICE, commands.ChangeOrderStatus(order.id, order.version))
    assert (cancelled.status, cancelled.version) == (OrderStatus.CANCELLED, 2)
    assert store.database.products[product.id].stock_on_hand == 5
    reasons = sorted(m.reason for m in store.database.movements.values())
    assert reasons == [MovementReason.CANCELLATION, MovementReason.ORDER, MovementReason.RESTOCK]
    with pytest.raises(InvalidOrderStatus):
        await orders.cancel_order(ALICE, commands.ChangeOrderStatus(order.id))
    assert store.database.products[product.id].stock_on_hand == 5
    assert_ledger_exact(store)


async def test_fulfilled_orders_are_final(
    catalog: CatalogService, orders: OrderService, store: FakeStore
) -> None:
    product = await catalog.create_product(STAFF, create(units=5))
    order = await orders.create_order(ALICE, order_of((product.id, 1)))
    fulfilled = await orders.fulfill_order(STAFF, commands.ChangeOrderStatus(order.id))
    assert fulfilled.status is OrderStatus.FULFILLED
    for change in (orders.cancel_order, orders.fulfill_order):
        with pytest.raises(InvalidOrderStatus):
            await change(STAFF, commands.ChangeOrderStatus(order.id))
    assert store.database.products[product.id].stock_on_hand == 4


async def test_a_stale_order_etag_is_aborted(catalog: CatalogService, orders: OrderService) -> None:
    product = await catalog.create_product(STAFF, create(units=5))
    order = await orders.create_order(ALICE, order_of((product.id, 1)))
    with pytest.raises(EtagMismatch):
        await orders.cancel_order(ALICE, commands.ChangeOrderStatus(order.id, expected_version=7))


async def test_a_racing_status_change_is_retried_and_reports_the_new_status(
    catalog: CatalogService, orders: OrderService, store: FakeStore
) -> None:
    product = await catalog.create_product(STAFF, create(units=5))
    order = await orders.create_order(ALICE, order_of((product.id, 1)))
    store.lose_compare_and_set = 1
    cancelled = await orders.cancel_order(ALICE, commands.ChangeOrderStatus(order.id))
    assert cancelled.status is OrderStatus.CANCELLED
    assert store.database.products[product.id].stock_on_hand == 5


async def test_other_customers_orders_do_not_exist_for_them(
    catalog: CatalogService, orders: OrderService
) -> None:
    product = await catalog.create_product(STAFF, create(units=5))
    order = await orders.create_order(ALICE, order_of((product.id, 1)))
    with pytest.raises(OrderNotFound) as foreign:
        await orders.get_order(BOB, order.id)
    with pytest.raises(OrderNotFound):
        await orders.cancel_order(BOB, commands.ChangeOrderStatus(order.id))
    missing_id = new_id()
    with pytest.raises(OrderNotFound) as missing:
        await orders.get_order(BOB, missing_id)
    assert foreign.value.message.replace(str(order.id), "ID") == missing.value.message.replace(
        str(missing_id), "ID"
    )
    assert (await orders.get_order(STAFF, order.id)).id == order.id
    assert (
        await orders.cancel_order(STAFF, commands.ChangeOrderStatus(order.id))
    ).status is OrderStatus.CANCELLED


async def test_customers_list_their_own_orders_and_cannot_filter_by_owner(
    catalog: CatalogService, orders: OrderService
) -> None:
    product = await catalog.create_product(STAFF, create(units=50))
    mine = [await orders.create_order(ALICE, order_of((product.id, 1))) for _ in range(3)]
    await orders.create_order(BOB, order_of((product.id, 1)))
    page = await orders.list_orders(ALICE, commands.ListOrders(page_size=10))
    assert [o.id for o in page.items] == [o.id for o in reversed(mine)]
    with pytest.raises(OwnerFilterForbidden):
        await orders.list_orders(ALICE, commands.ListOrders(page_size=10, owner="bob"))
    everybody = await orders.list_orders(STAFF, commands.ListOrders(page_size=10))
    assert len(everybody.items) == 4
    bobs = await orders.list_orders(STAFF, commands.ListOrders(page_size=10, owner="bob"))
    assert [o.owner for o in bobs.items] == ["bob"]


async def test_fulfil_and_report_need_orders_admin(orders: OrderService) -> None:
    with pytest.raises(PermissionDenied):
        await orders.fulfill_order(ALICE, commands.ChangeOrderStatus(new_id()))
    with pytest.raises(PermissionDenied):
        await orders.sales_report(ALICE, commands.SalesReport(FakeClock()(), FakeClock()(), 10))


async def test_serialization_conflicts_rerun_the_whole_use_case(
    catalog: CatalogService, orders: OrderService, store: FakeStore
) -> None:
    product = await catalog.create_product(STAFF, create(units=5))
    store.conflicts_on_commit = 2
    await orders.create_order(ALICE, order_of((product.id, 2)))
    assert store.events[-6:] == ["begin", "rollback", "begin", "rollback", "begin", "commit"]
    assert store.database.products[product.id].stock_on_hand == 3
    assert len(store.database.orders) == 1


async def test_conflicts_that_never_end_give_up_with_nothing_changed(
    catalog: CatalogService, orders: OrderService, store: FakeStore
) -> None:
    product = await catalog.create_product(STAFF, create(units=5))
    store.conflicts_on_commit = 100
    with pytest.raises(TransactionConflict):
        await orders.create_order(ALICE, order_of((product.id, 2)))
    assert store.events.count("rollback") == 4
    assert store.database.products[product.id].stock_on_hand == 5
