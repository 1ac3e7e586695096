"""Bulk import throughput: `tessera-data import-products` of a generated CSV, then the same file again.

The file has `Plan.import_products` rows (SKUs of their own, next to the seeded catalogue, so the import
meets a table of realistic size). The first run creates every product with its ledger entry; the second
finds each one unchanged and writes nothing, which is what an operator re-running a file pays.

The target compares the import with the seed's set-based `INSERT ... SELECT` of as many products: the
database generating rows itself is the floor. The import also reads and
parses a file, checks every row in Python with CreateProduct's rules, makes ids and ships each row over
the wire (twice: product and movement), in one process on one core; within 10x of the floor is the bar.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.processes import console_script, run_command
from bench.report import Check
from bench.stack import sqlalchemy_url

FLOOR_FACTOR = 10.0
HEADER = "sku,name,description,price_currency,price_minor_units,initial_stock\n"


@dataclass(frozen=True)
class ImportFigures:
    rows: int
    first_seconds: float
    again_seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.first_seconds

    def as_dict(self) -> dict[str, float | int]:
        return {
            "rows": self.rows,
            "first_run_seconds": round(self.first_seconds, 2),
            "first_run_rows_per_second": round(self.rows_per_second),
            "second_run_seconds": round(self.again_seconds, 2),
            "second_run_rows_per_second": round(self.rows / self.again_seconds),
        }


def write_catalogue(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as stream:
        stream.write(HEADER)
        for i in range(rows):
            stream.write(
                f'IMPORT-{i:08d},Imported product {i},"Bulk, imported",EUR,{100 + i % 9900},{i % 50}\n'
            )
    return path


async def measure_import(data_dsn: str, folder: Path, rows: int) -> ImportFigures:
    source = write_catalogue(folder / "import-products.csv", rows)
    command = [console_script("tessera-data"), "import-products", str(source)]
    env = {"DATA_DATABASE_URL": sqlalchemy_url(data_dsn), "DATA_LOG_FORMAT": "json"}
    timings = []
    for expected in (f"created {rows}, unchanged 0", f"created 0, unchanged {rows}"):
        started = time.perf_counter()
        output = await run_command(command, env, cwd=folder)
        timings.append(time.perf_counter() - started)
        if f"{expected}, updated 0, rejected 0" not in output:
            raise RuntimeError(f"import-products did not report {expected!r}:\n{output[-2000:]}")
    return ImportFigures(rows=rows, first_seconds=timings[0], again_seconds=timings[1])


def import_target(figures: ImportFigures, seed_seconds_by_table: dict[str, float], seeded: int) -> Check:
    """The import's time against the seed's set-based insert of as many products."""
    floor_per_row = (
        seed_seconds_by_table.get("products", 0.0) + seed_seconds_by_table.get("stock_movements", 0.0)
    ) / max(seeded, 1)
    floor = floor_per_row * figures.rows
    return Check(
        f"import-products of {figures.rows:,} rows vs the seed's INSERT ... SELECT".replace(",", " "),
        f"{figures.first_seconds:.1f} s ({figures.rows_per_second:,.0f} rows/s); "
        f"again {figures.again_seconds:.1f} s",
        f"≤ {FLOOR_FACTOR:g}x {floor:.1f} s",
        figures.first_seconds <= FLOOR_FACTOR * floor if floor > 0 else None,
    )
