"""Reading catalogue files and showing import progress (no database: the import itself is tested end to
end in tests/e2e/data/test_import_products.py)."""

from __future__ import annotations

import io

import pytest

from data_service.catalog_files import BadFile, FileFormat, ImportProgress, format_of, read_records
from data_service.domain.values import InvalidValue
from data_service.service.catalog_import import ImportRecord, Rejection, product_from_record


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_csv_rows_keep_the_line_they_start_on_across_quoted_line_breaks() -> None:
    text = 'sku,name,price_currency,price_minor_units\na,"two\nlines",EUR,1\nb,B,EUR,2\n\nc,C,EUR\n'

    items = list(read_records(io.StringIO(text), FileFormat.CSV))

    assert [(type(item).__name__, item.line) for item in items] == [
        ("ImportRecord", 2),
        ("ImportRecord", 4),
        ("Rejection", 6),
    ]
    first = items[0]
    assert isinstance(first, ImportRecord)
    assert first.fields["name"] == "two\nlines"


def test_a_csv_header_with_unknown_or_missing_columns_refuses_the_whole_file() -> None:
    with pytest.raises(BadFile, match="missing price_minor_units; unknown cost"):
        list(read_records(io.StringIO("sku,name,price_currency,cost\n"), FileFormat.CSV))


def test_json_lines_that_are_not_objects_are_rejected_with_their_line() -> None:
    text = '{"sku": "a"}\n\n[1, 2]\n{not json\n'

    items = list(read_records(io.StringIO(text), FileFormat.JSONL))

    assert isinstance(items[0], ImportRecord)
    rejected = {item.line: item.reason for item in items if isinstance(item, Rejection)}
    assert rejected[3] == "not a JSON object"
    assert rejected[4].startswith("not valid JSON")


def test_the_format_comes_from_the_suffix_unless_given() -> None:
    assert format_of("a.CSV", None) is FileFormat.CSV
    assert format_of("a.ndjson", None) is FileFormat.JSONL
    assert format_of("a.txt", "jsonl") is FileFormat.JSONL
    with pytest.raises(BadFile, match="--format"):
        format_of("a.txt", None)


def test_a_row_is_checked_with_create_products_rules_and_every_bad_field_is_named() -> None:
    with pytest.raises(InvalidValue) as error:
        product_from_record(
            {"sku": "ok", "name": " ", "price_currency": "EURO", "price_minor_units": 1.5, "colour": "red"}
        )
    reasons = str(error.value)
    for fragment in ("colour: unknown column", "name is required", "currency_code", "whole number"):
        assert fragment in reasons
    command = product_from_record(
        {"sku": "tea-1", "name": "Tea", "price_currency": "EUR", "price_minor_units": "450"}
    )
    assert (command.sku.value, command.price.minor_units, command.initial_stock) == ("TEA-1", 450, 0)


def test_on_a_terminal_progress_is_a_bar_with_rate_and_eta() -> None:
    screen = Terminal()
    with ImportProgress(1000, stream=screen, label="import x.csv") as progress:
        progress.advance(400)
        progress.advance(600)
    shown = screen.getvalue()
    assert "import x.csv" in shown
    assert "1000/1000" in shown
    assert "rows/s" in shown
    assert "ETA" in shown


def test_elsewhere_progress_is_plain_lines() -> None:
    log = io.StringIO()
    with ImportProgress(1000, stream=log, interval=0, label="import x.csv") as progress:
        progress.advance(500)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("import x.csv: 500/1,000 rows, ")
    assert "rows/s, ETA" in lines[0]
    assert lines[-1].startswith("import x.csv: 500/1,000 rows")
    assert "\x1b" not in log.getvalue()
