"""`tessera-data import-products` / `export-products` as an operator runs them, on both databases.

A generated file with good rows and every kind of bad line: the good rows load, each bad line is in the
reject file with its line number and reason, the exit status says something was rejected, and each new
product's stock is its ledger. Running the same file again changes nothing; a changed row is reported
and only applied with --update; export → import into an empty database gives the same catalogue. ~15 s
per database (each command is a process of its own).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from data_service.migrations import SCRIPT_LOCATION
from shared.migrations import upgrade_to_head
from tests.support.databases import fresh_database

TESSERA_DATA = str(Path(sys.executable).with_name("tessera-data"))
HEADER = "sku,name,description,price_currency,price_minor_units,initial_stock"
GOOD_ROWS = 150


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


async def tessera_data(database_url: str, *args: str, cwd: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATA_")}
    env.update(DATA_DATABASE_URL=database_url, DATA_LOG_LEVEL="WARNING")
    process = await asyncio.create_subprocess_exec(
        TESSERA_DATA, *args, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode(), stderr.decode())


async def migrated(backend: str, tmp_path: Path, label: str) -> AsyncIterator[str]:
    async with fresh_database(backend, tmp_path, label) as url:
        await upgrade_to_head(SCRIPT_LOCATION, url)
        yield url


@pytest.fixture
async def database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    async for url in migrated(backend, tmp_path, "data"):
        yield url


@pytest.fixture
async def second_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    async for url in migrated(backend, tmp_path, "copy"):
        yield url


async def query(database_url: str, sql: str) -> list[Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(text(sql))).all())
    finally:
        await engine.dispose()


async def catalogue(database_url: str) -> list[tuple[Any, ...]]:
    rows = await query(
        database_url,
        "SELECT sku, name, description, price_currency, price_minor_units, stock_on_hand, version"
        " FROM products ORDER BY sku",
    )
    return [tuple(row) for row in rows]


def good_row(i: int) -> str:
    # Quotes, commas and non-ASCII in the description: CSV quoting must hold.
    return f'gen-{i:04d},Product {i},"Grade ""{i % 3}"", café, {i}",EUR,{100 + i},{i % 7}'


# (line text, what the reject reason must mention); the line numbers follow from the file's layout.
BAD_ROWS = [
    ("bad sku!,Broken,,EUR,100,1", "sku must be"),
    ("neg-price,Negative,,EUR,-5,1", "must not be negative"),
    ("low-currency,Lower,,eur,100,1", "ISO 4217"),
    ("no-name,,,EUR,100,1", "name: is required"),
    ("words-stock,Words,,EUR,100,lots", "initial_stock must be a whole number"),
    ("too-few,Fields,EUR,100", "has 4 fields; the header has 6"),
    (f"long-name,{'n' * 201},,EUR,100,1", "name must be at most 200 characters"),
    ("gen-0003,Duplicate,,EUR,1,1", "GEN-0003 appears again (first on line 5)"),
    ("huge-stock,Huge,,EUR,100,1000000001", "initial_stock must be at most"),
]


def generated_csv(path: Path) -> tuple[Path, dict[int, str]]:
    """GOOD_ROWS good rows, one of them spanning two lines, with the bad rows spread among them;
    returns the file and {line number: expected reason fragment}."""
    lines = [HEADER]
    expected: dict[int, str] = {}
    bad = iter(BAD_ROWS)
    for i in range(GOOD_ROWS):
        if i == 10:
            lines.append(f'gen-{i:04d},Two lines,"first line\nsecond line",EUR,500,3')
        else:
            lines.append(good_row(i))
        if i % 15 == 14:
            row = next(bad, None)
            if row is not None:
                # A quoted description spanning two lines counts as two lines of the file.
                line_number = len("\n".join(lines).split("\n")) + 1
                lines.append(row[0])
                expected[line_number] = row[1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(expected) == len(BAD_ROWS)
    return path, expected


def rejects_of(path: Path) -> dict[int, str]:
    return {entry["line"]: entry["reason"] for entry in map(json.loads, path.read_text().splitlines())}


async def test_good_rows_load_and_every_bad_line_is_reported_with_its_number(
    database: str, tmp_path: Path
) -> None:
    source, expected = generated_csv(tmp_path / "catalogue.csv")

    # Small batches: several are in flight at once, and the duplicate SKU is in a later one.
    run = await tessera_data(database, "import-products", "--batch-size", "20", str(source), cwd=tmp_path)

    assert run.code == 1, run.stderr
    assert f"created {GOOD_ROWS}, unchanged 0, updated 0, rejected {len(BAD_ROWS)}" in run.stdout
    rejected = rejects_of(tmp_path / "catalogue.csv.rejects.jsonl")
    assert set(rejected) == set(expected)
    for line, fragment in expected.items():
        assert fragment in rejected[line], (line, rejected[line])
    # Not a terminal: plain progress lines with the rate.
    assert "rows/s" in run.stderr

    products = await catalogue(database)
    assert len(products) == GOOD_ROWS
    by_sku = {row[0]: row for row in products}
    assert by_sku["GEN-0007"][1:6] == ("Product 7", 'Grade "1", café, 7', "EUR", 107, 0)
    assert by_sku["GEN-0010"][2] == "first line\nsecond line"
    # As CreateProduct does: stock is the sum of the product's ledger, one RESTOCK per stocked product.
    ledger = await query(
        database,
        "SELECT p.sku, p.stock_on_hand, COALESCE(SUM(m.delta), 0), COUNT(m.id), MIN(m.reason)"
        " FROM products p LEFT JOIN stock_movements m ON m.product_id = p.id GROUP BY p.sku, p.stock_on_hand",
    )
    for sku, stock, total, movements, reason in ledger:
        assert stock == total, sku
        assert (movements, reason) == ((1, "RESTOCK") if stock else (0, None)), sku


async def test_running_the_same_file_again_changes_nothing(database: str, tmp_path: Path) -> None:
    source, _ = generated_csv(tmp_path / "catalogue.csv")
    await tessera_data(database, "import-products", str(source), cwd=tmp_path)
    before = await catalogue(database)
    movements_before = await query(database, "SELECT COUNT(*) FROM stock_movements")

    again = await tessera_data(database, "import-products", "--batch-size", "7", str(source), cwd=tmp_path)

    assert again.code == 1  # the bad lines are still bad
    assert f"created 0, unchanged {GOOD_ROWS}, updated 0, rejected {len(BAD_ROWS)}" in again.stdout
    assert await catalogue(database) == before
    assert await query(database, "SELECT COUNT(*) FROM stock_movements") == movements_before


async def test_a_changed_row_is_reported_and_only_applied_with_update(database: str, tmp_path: Path) -> None:
    first = tmp_path / "first.jsonl"
    rows = [
        {
            "sku": f"j-{i}",
            "name": f"J {i}",
            "price_currency": "EUR",
            "price_minor_units": 100 + i,
            "initial_stock": 5,
        }
        for i in range(5)
    ]
    first.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert (await tessera_data(database, "import-products", str(first), cwd=tmp_path)).code == 0
    changed = tmp_path / "changed.jsonl"
    rows[1] = {**rows[1], "price_minor_units": 999}
    rows[3] = {**rows[3], "name": "Renamed", "initial_stock": 50}
    changed.write_text("".join(json.dumps(row) + "\n" for row in rows))
    before = await catalogue(database)

    reported = await tessera_data(database, "import-products", str(changed), cwd=tmp_path)

    assert reported.code == 1
    assert "created 0, unchanged 3, updated 0, rejected 2" in reported.stdout
    reasons = rejects_of(tmp_path / "changed.jsonl.rejects.jsonl")
    assert "J-1 exists with another price" in reasons[2]
    assert "J-3 exists with another name" in reasons[4]
    assert "--update" in reasons[2]
    assert await catalogue(database) == before

    updated = await tessera_data(database, "import-products", "--update", str(changed), cwd=tmp_path)

    assert updated.code == 0, updated.stderr
    assert "created 0, unchanged 3, updated 2, rejected 0" in updated.stdout
    assert not (tmp_path / "changed.jsonl.rejects.jsonl").exists()
    after = {row[0]: row for row in await catalogue(database)}
    # The catalog data changed (and with it the version, so old etags go stale); the stock did not.
    assert after["J-1"][4:] == (999, 5, 2)
    assert after["J-3"][1] == "Renamed"
    assert after["J-3"][5:] == (5, 2)
    assert after["J-0"][6] == 1


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
async def test_export_then_import_gives_the_same_catalogue(
    database: str, second_database: str, tmp_path: Path, file_format: str
) -> None:
    source, _ = generated_csv(tmp_path / "catalogue.csv")
    await tessera_data(database, "import-products", str(source), cwd=tmp_path)
    exported = tmp_path / f"export.{file_format}"

    export = await tessera_data(database, "export-products", str(exported), cwd=tmp_path)
    assert export.code == 0, export.stderr
    assert f"exported {GOOD_ROWS} products" in export.stderr
    imported = await tessera_data(second_database, "import-products", str(exported), cwd=tmp_path)

    assert imported.code == 0, imported.stderr
    assert f"created {GOOD_ROWS}, unchanged 0, updated 0, rejected 0" in imported.stdout
    assert await catalogue(second_database) == await catalogue(database)
    again = await tessera_data(second_database, "export-products", "-", "--format", file_format, cwd=tmp_path)
    assert again.stdout == exported.read_text()


async def test_a_file_that_cannot_be_read_imports_nothing(database: str, tmp_path: Path) -> None:
    wrong_header = tmp_path / "wrong.csv"
    wrong_header.write_text("sku,title,price\nA,B,1\n")

    run = await tessera_data(database, "import-products", str(wrong_header), cwd=tmp_path)

    assert run.code == 2
    assert "missing name, price_currency, price_minor_units" in run.stderr
    assert "unknown price, title" in run.stderr
    assert await catalogue(database) == []


async def test_two_imports_of_the_same_file_at_once_create_each_product_once(
    database: str, tmp_path: Path
) -> None:
    """Two operators load the same file at the same moment: the SKU's unique key decides each row, the
    loser's batch runs again and finds the row there (unchanged), and every ledger has one entry."""
    source, _ = generated_csv(tmp_path / "catalogue.csv")

    first, second = await asyncio.gather(
        *(
            tessera_data(
                database,
                "import-products",
                "--batch-size",
                "10",
                "--rejects",
                str(tmp_path / f"r{i}"),
                str(source),
                cwd=tmp_path,
            )
            for i in range(2)
        )
    )

    created = []
    for run in (first, second):
        assert run.code == 1, run.stderr  # the bad lines, in both
        summary = run.stdout.strip().splitlines()[-1]
        counts = dict(part.split(" ", 1) for part in summary.split(" (")[0].split(", "))
        assert int(counts["created"]) + int(counts["unchanged"]) == GOOD_ROWS, summary
        assert counts["rejected"] == str(len(BAD_ROWS)), summary
        created.append(int(counts["created"]))
    assert sum(created) == GOOD_ROWS
    assert len(await catalogue(database)) == GOOD_ROWS
    ledger = await query(
        database,
        "SELECT p.sku, p.stock_on_hand, COUNT(m.id), COALESCE(SUM(m.delta), 0) FROM products p"
        " LEFT JOIN stock_movements m ON m.product_id = p.id GROUP BY p.sku, p.stock_on_hand",
    )
    for sku, stock, movements, total in ledger:
        assert (movements, total) == ((1, stock) if stock else (0, 0)), sku
