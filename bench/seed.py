"""Seeding the data service's database at scale, and checking its stock invariants afterwards.

Each table is filled by one set-based `INSERT ... SELECT ... FROM generate_series(...)`: a million rows
in seconds, where row-by-row inserts (or the API) would take an hour. Every value is a closed-form
function of the row number `i`, so the harness knows ids and SKUs without reading them back and the
seeded ledger already satisfies the invariants the run checks at the end:

- product `i`: id `{_PRODUCT_ID}`, SKU `BENCH-00000001`..., price 100 + i % 9900
  cents; every 50th (i % 50 = 25) is archived;
- one order per product (order `i` is one unit of product `i`, owner `bench-owner-{i % 1000}`, created
  `i * 31 s` before the seed time, so a million orders span a year); i % 10 = 3 is CANCELLED, 1 and 2
  FULFILLED, the rest PLACED;
- the ledger: a RESTOCK per product, an ORDER movement (-1) per order and a CANCELLATION (+1) per
  cancelled one; every 20th product (i % 20 = 0) gets one unit and sells it, so it is out of stock.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

# Enough for every order a run can place: stock never runs out during a measurement.
PLENTY = 1_000_000_000
OWNERS = 1000
SEED_TIME = datetime(2026, 11, 1, tzinfo=UTC)
ORDER_SPACING_SECONDS = 31

# Ids shaped like the UUIDv7 the service generates: time-ordered, so the seed appends to the primary-key
# B-trees as production inserts do, instead of writing them at random places (and twice as fast).
_UUID7 = "('{prefix}-0000-7000-8000-' || lpad(to_hex({number}), 12, '0'))::uuid"
_PREFIXES = {
    "product": "01900000",
    "order": "01910000",
    "restock": "01920000",
    "sale": "01930000",
    "cancel": "01940000",
}
_PRODUCT_ID = _UUID7.format(prefix=_PREFIXES["product"], number="i")
_ORDER_ID = _UUID7.format(prefix=_PREFIXES["order"], number="i")
_MOVEMENT_ID = (
    "CASE kind WHEN 'restock' THEN "
    + _UUID7.format(prefix=_PREFIXES["restock"], number="i")
    + " WHEN 'order' THEN "
    + _UUID7.format(prefix=_PREFIXES["sale"], number="i")
    + " ELSE "
    + _UUID7.format(prefix=_PREFIXES["cancel"], number="i")
    + " END"
)

_STATUS = "CASE WHEN i % 10 = 3 THEN 'CANCELLED' WHEN i % 10 IN (1, 2) THEN 'FULFILLED' ELSE 'PLACED' END"
_INITIAL_STOCK = f"CASE WHEN i % 20 = 0 THEN 1 ELSE {PLENTY} END"

SEED_STATEMENTS: tuple[tuple[str, str], ...] = (
    (
        "products",
        f"""
        INSERT INTO products (id, sku, name, description, price_currency, price_minor_units,
                              stock_on_hand, archived, version, create_time, update_time)
        SELECT {_PRODUCT_ID}, 'BENCH-' || lpad(i::text, 8, '0'),
               'Bench product ' || i, 'Seeded by make bench', 'EUR', 100 + i % 9900,
               {_INITIAL_STOCK} - CASE WHEN i % 10 = 3 THEN 0 ELSE 1 END,
               i % 50 = 25, 1, $2::timestamptz, $2::timestamptz
        FROM generate_series(1, $1::bigint) AS i
        """,
    ),
    (
        "orders",
        f"""
        INSERT INTO orders (id, owner, status, version, create_time, update_time)
        SELECT {_ORDER_ID}, 'bench-owner-' || (i % {OWNERS}), {_STATUS}, 1,
               $2::timestamptz - make_interval(secs => i * {ORDER_SPACING_SECONDS}),
               $2::timestamptz - make_interval(secs => i * {ORDER_SPACING_SECONDS})
        FROM generate_series(1, $1::bigint) AS i
        """,
    ),
    (
        "order_lines",
        f"""
        INSERT INTO order_lines (order_id, product_id, line_number, sku, quantity,
                                 unit_price_currency, unit_price_minor_units)
        SELECT {_ORDER_ID}, {_PRODUCT_ID}, 0,
               'BENCH-' || lpad(i::text, 8, '0'), 1, 'EUR', 100 + i % 9900
        FROM generate_series(1, $1::bigint) AS i
        """,
    ),
    (
        "stock_movements",
        f"""
        INSERT INTO stock_movements (id, product_id, delta, reason, order_id, create_time)
        SELECT {_MOVEMENT_ID}, {_PRODUCT_ID},
               CASE kind WHEN 'restock' THEN {_INITIAL_STOCK} WHEN 'order' THEN -1 ELSE 1 END,
               CASE kind WHEN 'restock' THEN 'RESTOCK' WHEN 'order' THEN 'ORDER' ELSE 'CANCELLATION' END,
               CASE kind WHEN 'restock' THEN NULL ELSE {_ORDER_ID} END,
               $2::timestamptz - make_interval(secs => i * {ORDER_SPACING_SECONDS})
                  + CASE kind WHEN 'restock' THEN interval '-1 day'
                              WHEN 'order' THEN interval '0' ELSE interval '1 hour' END
        FROM generate_series(1, $1::bigint) AS i
        CROSS JOIN (VALUES ('restock'), ('order'), ('cancel')) AS kinds (kind)
        WHERE kind <> 'cancel' OR i % 10 = 3
        """,
    ),
)

# stock_on_hand must equal the sum of the product's ledger and never be negative, whatever ran.
INVARIANT_VIOLATIONS_SQL = """
    SELECT count(*) FILTER (WHERE p.stock_on_hand < 0) AS negative,
           count(*) FILTER (WHERE p.stock_on_hand <> coalesce(m.total, 0)) AS mismatched
    FROM products AS p
    LEFT JOIN (SELECT product_id, sum(delta) AS total FROM stock_movements GROUP BY product_id) AS m
           ON m.product_id = p.id
"""


def _seeded_id(kind: str, i: int) -> uuid.UUID:
    return uuid.UUID(f"{_PREFIXES[kind]}-0000-7000-8000-{i:012x}")


def product_id(i: int) -> uuid.UUID:
    """The id the seed gave product `i` (1-based)."""
    return _seeded_id("product", i)


def order_id(i: int) -> uuid.UUID:
    """The id the seed gave order `i` (1-based)."""
    return _seeded_id("order", i)


def product_sku(i: int) -> str:
    return f"BENCH-{i:08d}"


def orderable(i: int) -> bool:
    """Product `i` is neither archived nor sold out, so an order for it succeeds."""
    return i % 50 != 25 and i % 20 != 0


@dataclass(frozen=True)
class SeedTimings:
    seconds_by_table: dict[str, float]

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds_by_table.values())


async def seed(dsn: str, products: int) -> SeedTimings:
    """Fill the (migrated, empty) data database with `products` products and as many orders."""
    connection = await asyncpg.connect(dsn)
    timings: dict[str, float] = {}
    try:
        # Bulk load only: the rows are consistent by construction, so the per-row foreign-key triggers
        # (the bulk of the cost) are skipped, and nothing here needs to survive a crash.
        await connection.execute("SET session_replication_role = replica")
        await connection.execute("SET synchronous_commit = off")
        await connection.execute("SET maintenance_work_mem = '256MB'")
        for table, statement in SEED_STATEMENTS:
            started = time.perf_counter()
            arguments = (products, SEED_TIME) if "$2" in statement else (products,)
            await connection.execute(statement, *arguments)
            timings[table] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        # Fresh statistics: the planner must see a million rows, not an empty table.
        await connection.execute("VACUUM (ANALYZE)")
        timings["vacuum analyze"] = round(time.perf_counter() - started, 2)
    finally:
        await connection.close()
    return SeedTimings(timings)


@dataclass(frozen=True)
class Invariants:
    negative: int
    mismatched: int

    @property
    def hold(self) -> bool:
        return self.negative == 0 and self.mismatched == 0


async def check_invariants(dsn: str) -> Invariants:
    """No product below zero, and every product's stock equal to the sum of its movements."""
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(INVARIANT_VIOLATIONS_SQL)
    finally:
        await connection.close()
    assert row is not None
    return Invariants(negative=int(row["negative"]), mismatched=int(row["mismatched"]))


async def count_rows(dsn: str, table: str, where: str = "TRUE", *args: object) -> int:
    """Rows of `table` matching `where`: what a scenario's calls really wrote."""
    connection = await asyncpg.connect(dsn)
    try:
        value = await connection.fetchval(f"SELECT count(*) FROM {table} WHERE {where}", *args)
    finally:
        await connection.close()
    return int(value)
