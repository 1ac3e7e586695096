"""Domain rules without any I/O: value objects, the order state machine, planning an order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from data_service.domain.errors import InvalidOrderStatus, OrderNotServable, ProductArchived
from data_service.domain.orders import LineRequest, Order, OrderLine, OrderStatus, order_quantity, plan_lines
from data_service.domain.products import Product, ProductChanges
from data_service.domain.reports import report_limit
from data_service.domain.stock import adjustment_delta, initial_stock
from data_service.domain.values import (
    Caller,
    InvalidValue,
    Money,
    Sku,
    etag_of,
    new_id,
    parse_uuid,
    product_name,
    sku_prefix,
    version_of_etag,
)

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def product(stock: int = 10, *, archived: bool = False, currency: str = "EUR", price: int = 250) -> Product:
    made = Product.new(
        id=new_id(),
        sku=Sku(f"P-{uuid.uuid4().hex[:8].upper()}"),
        name="Thing",
        description="",
        price=Money(currency, price),
        initial_stock=stock,
        now=NOW,
    )
    return made.archived_at(NOW) if archived else made


@pytest.mark.parametrize(("raw", "stored"), [("abc-1_x", "ABC-1_X"), ("Z" * 64, "Z" * 64), ("0", "0")])
def test_skus_are_stored_upper_case(raw: str, stored: str) -> None:
    assert Sku.parse(raw).value == stored


@pytest.mark.parametrize("raw", ["", "A B", "A/B", "Ä", "Z" * 65, "A.B"])
def test_skus_outside_the_alphabet_or_length_are_refused(raw: str) -> None:
    with pytest.raises(InvalidValue):
        Sku.parse(raw)


def test_sku_prefix_may_be_empty_and_is_upper_cased() -> None:
    assert sku_prefix("") == ""
    assert sku_prefix("ab_") == "AB_"
    with pytest.raises(InvalidValue):
        sku_prefix("a%")


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "a\x00b"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidValue):
        product_name(name)


def test_money_needs_an_iso_code_and_prices_are_never_negative() -> None:
    assert Money.price("EUR", 0) == Money("EUR", 0)
    for code in ("eur", "EURO", "", "E1R"):
        with pytest.raises(InvalidValue):
            Money(code, 1)
    with pytest.raises(InvalidValue):
        Money.price("EUR", -1)
    with pytest.raises(InvalidValue):
        Money("EUR", 1).plus(Money("USD", 1))


def test_etags_round_trip_and_foreign_text_is_refused() -> None:
    assert version_of_etag(etag_of(42)) == 42
    for raw in ("42", "v", "vx", "v-1", "v²", 'W/"v1"', "v" + "9" * 19):
        with pytest.raises(InvalidValue):
            version_of_etag(raw)


def test_ids_are_time_ordered_uuid7() -> None:
    first, second = new_id(), new_id()
    assert first.version == 7
    assert first.hex[:12] <= second.hex[:12]
    assert parse_uuid(str(first)) == first
    assert parse_uuid(str(first).upper()) == first
    misplaced = (
        first.hex[:8]
        + "-"
        + first.hex[8:11]
        + "-"
        + first.hex[11:16]
        + "-"
        + first.hex[16:20]
        + "-"
        + first.hex[20:]
    )
    for raw in ("", "not-a-uuid", first.hex, "{" + str(first) + "}", f"urn:uuid:{first}", misplaced):
        with pytest.raises(InvalidValue):
            parse_uuid(raw)


def test_limits_of_quantities_adjustments_stock_and_reports() -> None:
    assert order_quantity(1) == 1
    assert order_quantity(10_000) == 10_000
    for bad in (0, -1, 10_001):
        with pytest.raises(InvalidValue):
            order_quantity(bad)
    assert adjustment_delta(-1_000_000) == -1_000_000
    for bad in (0, 1_000_001, -1_000_001):
        with pytest.raises(InvalidValue):
            adjustment_delta(bad)
    with pytest.raises(InvalidValue):
        initial_stock(-1)
    assert report_limit(0) == 10
    assert report_limit(100) == 100
    for bad in (-1, 101):
        with pytest.raises(InvalidValue):
            report_limit(bad)


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        (OrderStatus.PLACED, OrderStatus.FULFILLED, True),
        (OrderStatus.PLACED, OrderStatus.CANCELLED, True),
        (OrderStatus.PLACED, OrderStatus.PLACED, False),
        (OrderStatus.FULFILLED, OrderStatus.CANCELLED, False),
        (OrderStatus.FULFILLED, OrderStatus.FULFILLED, False),
        (OrderStatus.FULFILLED, OrderStatus.PLACED, False),
        (OrderStatus.CANCELLED, OrderStatus.FULFILLED, False),
        (OrderStatus.CANCELLED, OrderStatus.CANCELLED, False),
        (OrderStatus.CANCELLED, OrderStatus.PLACED, False),
    ],
)
def test_order_state_machine(start: OrderStatus, target: OrderStatus, allowed: bool) -> None:
    line = OrderLine(new_id(), Sku("A"), 1, Money("EUR", 5))
    order = Order(new_id(), "alice", start, (line,), 3, NOW, NOW)
    if allowed:
        moved = order.moved_to(target, NOW)
        assert (moved.status, moved.version, order.status) == (target, 4, start)
    else:
        with pytest.raises(InvalidOrderStatus):
            order.moved_to(target, NOW)


def test_order_total_and_visibility() -> None:
    lines = (
        OrderLine(new_id(), Sku("A"), 3, Money("EUR", 150)),
        OrderLine(new_id(), Sku("B"), 1, Money("EUR", 5)),
    )
    order = Order.place(id=new_id(), owner="alice", lines=lines, now=NOW)
    assert order.total == Money("EUR", 455)
    assert order.visible_to(Caller("alice", frozenset()))
    assert not order.visible_to(Caller("bob", frozenset({"orders.read", "orders.write"})))
    assert order.visible_to(Caller("staff", frozenset({"orders.admin"})))


def test_planning_names_every_line_that_cannot_be_served_in_request_order() -> None:
    ok, low, archived, dollars = product(5), product(1), product(9, archived=True), product(9, currency="USD")
    missing = new_id()
    requests = [
        LineRequest(ok.id, 2),
        LineRequest(missing, 1),
        LineRequest(low.id, 2),
        LineRequest(archived.id, 1),
        LineRequest(dollars.id, 1),
    ]
    with pytest.raises(OrderNotServable) as raised:
        plan_lines(requests, {p.id: p for p in (ok, low, archived, dollars)})
    assert [(v.type, v.subject) for v in raised.value.violations] == [
        ("NOT_FOUND", f"products/{missing}"),
        ("INSUFFICIENT_STOCK", f"products/{low.id}"),
        ("ARCHIVED", f"products/{archived.id}"),
        ("CURRENCY_MISMATCH", f"products/{dollars.id}"),
    ]
    assert raised.value.reason == "ORDER_NOT_SERVABLE"


def test_planning_captures_sku_and_price() -> None:
    item = product(5, price=799)
    (line,) = plan_lines([LineRequest(item.id, 5)], {item.id: item})
    assert line == OrderLine(item.id, item.sku, 5, Money("EUR", 799))


def test_an_order_whose_total_overflows_money_is_not_servable() -> None:
    expensive = product(100, price=2**62)
    with pytest.raises(OrderNotServable):
        plan_lines([LineRequest(expensive.id, 2)], {expensive.id: expensive})


def test_catalog_changes_bump_the_version_but_not_for_archived_products() -> None:
    item = product()
    changed = item.changed(ProductChanges(name="New"), NOW)
    assert (changed.name, changed.description, changed.version) == ("New", item.description, 2)
    archived = changed.archived_at(NOW)
    assert archived.version == 3
    assert archived.archived_at(NOW) is archived
    with pytest.raises(ProductArchived):
        archived.changed(ProductChanges(name="Again"), NOW)
    with pytest.raises(ProductArchived):
        archived.stock_adjusted(1, NOW)
