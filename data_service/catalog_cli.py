"""`tessera-data import-products`, `export-products` and `seed-demo`: the use cases, run from a shell.

They work on the service's database directly (`DATA_DATABASE_URL`), through the same use cases and
repositories as the RPCs, so a product imported here obeys every rule CreateProduct enforces.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any

from sqlalchemy.exc import SQLAlchemyError

from data_service.catalog_files import (
    BadFile,
    FileFormat,
    ImportProgress,
    RecordWriter,
    RejectFile,
    count_rows,
    format_of,
    read_records,
)
from data_service.demo import DemoResult, seed_demo
from data_service.migrations import SCRIPT_LOCATION
from data_service.repository.unit_of_work import InventoryUnitOfWork
from data_service.service.catalog_import import (
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    BatchResult,
    CatalogImport,
    ImportRecord,
    ImportTotals,
    Rejection,
    export_products,
    record_of,
)
from data_service.service.ports import UnitOfWorkFactory
from shared import cli
from shared.config import DataSettings
from shared.db import create_engine, is_sqlite, session_factory
from shared.errors import TesseraError

# While PostgreSQL writes one batch, the next is parsed and checked: the import's Python work and the
# database's work overlap instead of taking turns (~1.5x measured). SQLite writes one transaction at a
# time, and a second one only waits for the lock, so there batches go one by one.
BATCHES_IN_FLIGHT = 2
# Exit statuses of import-products.
EXIT_ALL_LOADED = 0
EXIT_SOME_REJECTED = 1
EXIT_BAD_INPUT = 2


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    importing = commands.add_parser(
        "import-products",
        help="load products from a CSV (with header) or JSON-lines file; idempotent",
        description=(
            "Columns: sku, name, description, price_currency, price_minor_units, initial_stock. "
            "Rows are checked like CreateProduct and loaded in batches, one transaction each. A SKU that "
            "exists with the same data is left alone; with other data it is rejected unless --update. "
            "Exit status: 0 all rows loaded or already there, 1 some rows rejected (see the reject "
            "file), 2 the file could not be read."
        ),
    )
    importing.add_argument("file", help="the file to import")
    importing.add_argument("--format", choices=[f.value for f in FileFormat], help="default: by suffix")
    importing.add_argument(
        "--update", action="store_true", help="overwrite name, description and price of existing SKUs"
    )
    importing.add_argument("--rejects", help="the reject file (JSON lines); default: FILE.rejects.jsonl")
    importing.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        choices=range(1, MAX_BATCH_SIZE + 1),
        metavar=f"1..{MAX_BATCH_SIZE}",
        help=f"rows per transaction (default {DEFAULT_BATCH_SIZE})",
    )
    exporting = commands.add_parser(
        "export-products", help="write every product in the format import-products reads"
    )
    exporting.add_argument("file", nargs="?", default="-", help="default: standard output")
    exporting.add_argument("--format", choices=[f.value for f in FileFormat], help="default: by suffix, csv")
    exporting.add_argument("--include-archived", action="store_true")
    commands.add_parser("seed-demo", help="load a small demo catalogue and a few orders (idempotent)")


class CommandFailed(Exception):
    """The command could not run (database unreachable or not migrated): a message, not a traceback."""


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        cli.run(main)
    except (TesseraError, SQLAlchemyError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CommandFailed(f"{type(exc).__name__}: {first_line}") from exc


def batched(items: Iterable[ImportRecord | Rejection], size: int) -> Iterator[list[ImportRecord | Rejection]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


@contextlib.asynccontextmanager
async def unit_of_work_for(settings: DataSettings, connections: int = 1) -> AsyncIterator[UnitOfWorkFactory]:
    """Units of work over the service's database (migrated first when it is the embedded SQLite)."""
    if is_sqlite(settings.database_url):
        await cli.migrate(settings, SCRIPT_LOCATION)
    engine = create_engine(
        settings.database_url, pool_size=connections, max_overflow=0, application_name="tessera-data-cli"
    )
    sessions, readers = session_factory(engine), session_factory(engine, read_only=True)

    def unit_of_work(*, read_only: bool = False, stale_ok: bool = False) -> InventoryUnitOfWork:
        # A command-line run has no read replica: every read is the primary's.
        return InventoryUnitOfWork(readers if read_only else sessions)

    try:
        yield unit_of_work
    finally:
        await engine.dispose()


async def import_products(
    settings: DataSettings,
    records: Iterator[ImportRecord | Rejection],
    rejects: RejectFile,
    progress: ImportProgress,
    *,
    update: bool,
    batch_size: int,
) -> ImportTotals:
    in_flight_at_most = 1 if is_sqlite(settings.database_url) else BATCHES_IN_FLIGHT
    async with unit_of_work_for(settings, connections=in_flight_at_most) as unit_of_work:
        run = CatalogImport(unit_of_work, update=update)
        in_flight: deque[tuple[asyncio.Task[BatchResult], int]] = deque()

        async def finish_oldest() -> None:
            task, rows = in_flight.popleft()
            for rejection in (await task).rejections:
                rejects.write(rejection)
            progress.advance(rows)

        try:
            for chunk in batched(records, batch_size):
                rows = [item for item in chunk if isinstance(item, ImportRecord)]
                unreadable = [item for item in chunk if isinstance(item, Rejection)]
                # Tasks start in creation order, so each batch is checked against the SKUs of the batches
                # before it (duplicates in the file) before any of them waits for the database.
                in_flight.append((asyncio.create_task(run.add_batch(rows, unreadable)), len(chunk)))
                if len(in_flight) >= in_flight_at_most:
                    await finish_oldest()
            while in_flight:
                await finish_oldest()
        finally:
            for task, _ in in_flight:
                task.cancel()
        return run.totals


def run_import(settings: DataSettings, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        file_format = format_of(args.file, args.format)
        total = count_rows(path, file_format)
        rejects_path = Path(args.rejects) if args.rejects else path.with_name(path.name + ".rejects.jsonl")
        with (
            path.open(encoding="utf-8", newline="") as stream,
            RejectFile(rejects_path) as rejects,
            ImportProgress(total, label=f"import {path.name}") as progress,
        ):
            totals: ImportTotals | None = None

            async def main() -> None:
                nonlocal totals
                totals = await import_products(
                    settings,
                    read_records(stream, file_format),
                    rejects,
                    progress,
                    update=args.update,
                    batch_size=args.batch_size,
                )

            _run(main())
    except (BadFile, CommandFailed, OSError, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    assert totals is not None
    print(
        f"created {totals.created}, unchanged {totals.unchanged}, updated {totals.updated}, "
        f"rejected {totals.rejected}" + (f" (reasons in {rejects_path})" if totals.rejected else "")
    )
    return EXIT_SOME_REJECTED if totals.rejected else EXIT_ALL_LOADED


def run_export(settings: DataSettings, args: argparse.Namespace) -> int:
    to_stdout = args.file == "-"
    try:
        file_format = (
            FileFormat(args.format)
            if args.format
            else (FileFormat.CSV if to_stdout else format_of(args.file, None))
        )
    except BadFile as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with contextlib.ExitStack() as stack:
        stream: IO[str] = (
            sys.stdout
            if to_stdout
            else stack.enter_context(open(args.file, "w", encoding="utf-8", newline=""))
        )
        writer = RecordWriter(stream, file_format)
        exported = 0

        async def main() -> None:
            nonlocal exported
            async with unit_of_work_for(settings) as unit_of_work:
                async for product in export_products(unit_of_work, include_archived=args.include_archived):
                    writer.write(record_of(product))
                    exported += 1

        try:
            _run(main())
        except CommandFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    print(f"exported {exported} products", file=sys.stderr)
    return EXIT_ALL_LOADED


def run_seed_demo(settings: DataSettings) -> int:
    result: DemoResult | None = None

    async def main() -> None:
        nonlocal result
        async with unit_of_work_for(settings) as unit_of_work:
            result = await seed_demo(unit_of_work)

    try:
        _run(main())
    except CommandFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    assert result is not None
    totals = result.catalogue
    print(
        f"demo catalogue: created {totals.created}, unchanged {totals.unchanged}, "
        f"rejected {totals.rejected}; {result.orders} demo orders in place"
    )
    return EXIT_SOME_REJECTED if totals.rejected else EXIT_ALL_LOADED
