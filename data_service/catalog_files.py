"""Catalogue files on disk: CSV with a header or JSON lines, their reject files, and import progress.

Both formats carry the columns of `data_service.service.catalog_import.COLUMNS`; export writes what
import reads. Reading is streamed: a file of a million rows is never held in memory.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from data_service.service.catalog_import import COLUMNS, REQUIRED_COLUMNS, ImportRecord, Rejection


class FileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class BadFile(Exception):
    """The file as a whole cannot be read (no header, unknown columns): nothing is imported."""


_SUFFIXES = {".csv": FileFormat.CSV, ".jsonl": FileFormat.JSONL, ".ndjson": FileFormat.JSONL}


def format_of(path: str, explicit: str | None) -> FileFormat:
    """`--format` when given, else the file's suffix (.csv, .jsonl, .ndjson)."""
    if explicit:
        return FileFormat(explicit)
    found = _SUFFIXES.get(Path(path).suffix.lower())
    if found is None:
        raise BadFile(f"cannot tell the format of {path!r} from its name: pass --format csv or jsonl")
    return found


def read_records(stream: IO[str], file_format: FileFormat) -> Iterator[ImportRecord | Rejection]:
    """Each row as an `ImportRecord`, or a `Rejection` for a line that is not even a row."""
    if file_format is FileFormat.CSV:
        yield from _read_csv(stream)
    else:
        yield from _read_jsonl(stream)


def _read_csv(stream: IO[str]) -> Iterator[ImportRecord | Rejection]:
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise BadFile("the file is empty: a CSV file starts with a header line") from None
    header = [column.strip() for column in header]
    missing = sorted(REQUIRED_COLUMNS - set(header))
    unknown = sorted(set(header) - set(COLUMNS))
    if missing or unknown or len(set(header)) != len(header):
        raise BadFile(
            f"bad header {header}: the columns are {', '.join(COLUMNS)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else "")
        )
    next_line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line, next_line = next_line, reader.line_num + 1
            yield Rejection(line, f"not valid CSV: {exc}", {})
            continue
        line, next_line = next_line, reader.line_num + 1
        if not row:
            continue
        if len(row) != len(header):
            reason = f"has {len(row)} fields; the header has {len(header)}"
            yield Rejection(line, reason, {"fields": row})
            continue
        yield ImportRecord(line, dict(zip(header, row, strict=True)))


def _read_jsonl(stream: IO[str]) -> Iterator[ImportRecord | Rejection]:
    for line, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Rejection(line, f"not valid JSON: {exc.msg} (column {exc.colno})", {"text": text[:500]})
            continue
        if not isinstance(value, dict):
            yield Rejection(line, "not a JSON object", {"text": text[:500]})
            continue
        yield ImportRecord(line, value)


def count_rows(path: Path, file_format: FileFormat) -> int:
    """Rows in the file, for the progress bar's total and ETA (one fast pass over its bytes)."""
    lines = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            lines += chunk.count(b"\n")
    size = path.stat().st_size
    if size and not _ends_with_newline(path):
        lines += 1
    return max(0, lines - 1) if file_format is FileFormat.CSV else lines


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as stream:
        stream.seek(-1, 2)
        return stream.read(1) == b"\n"


class RecordWriter:
    """Writes rows in the format import reads back."""

    def __init__(self, stream: IO[str], file_format: FileFormat) -> None:
        self._stream = stream
        self._csv: csv.DictWriter[str] | None = None
        if file_format is FileFormat.CSV:
            self._csv = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
            self._csv.writeheader()

    def write(self, record: dict[str, object]) -> None:
        if self._csv is not None:
            self._csv.writerow(record)
        else:
            self._stream.write(json.dumps(record, ensure_ascii=False) + "\n")


class RejectFile:
    """The reject file: one JSON line per rejected row — `line`, `reason` and the row as read.

    Created on the first rejection only, so a clean import leaves no file behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream: IO[str] | None = None

    def write(self, rejection: Rejection) -> None:
        if self._stream is None:
            self._stream = self.path.open("w", encoding="utf-8")
        entry = {"line": rejection.line, "reason": rejection.reason, "record": rejection.record}
        self._stream.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    def __enter__(self) -> Self:
        # A reject file of an earlier run would otherwise be mistaken for this run's.
        self.path.unlink(missing_ok=True)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stream is not None:
            self._stream.close()


class _RowRate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rows/s")


class ImportProgress:
    """A progress bar with rate and ETA on a terminal; a plain line every `interval` seconds otherwise
    (a log file or CI output gets a few readable lines, not a bar redrawn thousands of times)."""

    def __init__(
        self, total: int | None, *, stream: IO[str] = sys.stderr, interval: float = 5.0, label: str = "import"
    ) -> None:
        self._total = total
        self._stream = stream
        self._interval = interval
        self._label = label
        self._done = 0
        self._started = time.monotonic()
        self._last_line = self._started
        self._bar: Progress | None = None
        if stream.isatty():
            self._bar = Progress(
                TextColumn(f"[bold]{label}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RowRate(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=stream),
                transient=False,
            )
            self._task = self._bar.add_task(label, total=total)

    def __enter__(self) -> Self:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif exc_type is None:
            self._print_line()

    def advance(self, rows: int) -> None:
        self._done += rows
        if self._bar is not None:
            self._bar.advance(self._task, rows)
            return
        now = time.monotonic()
        if now - self._last_line >= self._interval:
            self._last_line = now
            self._print_line()

    def _print_line(self) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self._done / elapsed
        of = f"/{self._total:,}" if self._total is not None else ""
        eta = ""
        if self._total is not None and rate > 0 and self._done < self._total:
            eta = f", ETA {(self._total - self._done) / rate:,.0f} s"
        print(
            f"{self._label}: {self._done:,}{of} rows, {rate:,.0f} rows/s{eta}", file=self._stream, flush=True
        )
