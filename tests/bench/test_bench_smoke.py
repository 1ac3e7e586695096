"""`make bench BENCH_QUICK=1` end to end: both services and both baselines start, h2load runs every
configuration, each load figure is verified as real gRPC successes, and the results JSON is written.

Toy sizes, one run (~30 s). No figure is asserted: timings on a shared machine mean nothing in a test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.databases import enabled_backends

REPOSITORY = Path(__file__).resolve().parents[2]
CONFIGURATIONS = {
    "echo",
    "pk",
    "get_product",
    "list_page_1",
    "list_page_deep",
    "order_spread",
    "order_hot",
    "jwks_idle",
    "jwks_storm",
    "token",
}

pytestmark = [pytest.mark.bench, pytest.mark.slow]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], str]:
    """One quick harness run for the module: its results JSON and what it printed."""
    if "postgres" not in enabled_backends():
        pytest.skip("the benchmark harness runs on PostgreSQL only (TESSERA_TEST_DATABASES has no postgres)")
    if shutil.which("h2load") is None:
        pytest.skip("h2load is not installed: `make bench` installs it (apt-get install -y nghttp2-client)")
    results = tmp_path_factory.mktemp("bench-results")
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--quick", "--results", str(results)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-6000:]
    (path,) = results.glob("bench-*-quick.json")
    return json.loads(path.read_text()), completed.stdout


def test_every_configuration_is_measured_and_verified(quick_run: tuple[dict[str, object], str]) -> None:
    report, _ = quick_run
    figures = report["figures"]
    assert isinstance(figures, dict)
    assert set(figures) == CONFIGURATIONS
    for key, figure in figures.items():
        assert figure["samples"], f"{key} has no verified run"
        assert all(sample["calls"] > 0 for sample in figure["samples"]), key


def test_the_verifier_rejects_calls_that_h2load_counts_as_successes(
    quick_run: tuple[dict[str, object], str],
) -> None:
    report, _ = quick_run
    checks = report["checks"]
    assert isinstance(checks, list)
    teeth = [check for check in checks if check["name"].startswith("verification catches gRPC errors")]
    assert len(teeth) == 1
    assert teeth[0]["verdict"] == "PASS"
    # Nothing that ran under load was left unverified, and the stock ledger survived it.
    assert [check["name"] for check in checks if check["verdict"] != "PASS"] == []
    names = " ".join(check["name"] for check in checks)
    assert "no oversell" in names
    assert "sell-out" in names


def test_every_target_is_judged_and_printed(quick_run: tuple[dict[str, object], str]) -> None:
    report, printed = quick_run
    targets = report["targets"]
    assert isinstance(targets, list)
    assert len(targets) == 7
    for target in targets:
        assert target["verdict"] in {"PASS", "FAIL"}, target
        assert target["name"] in printed


def test_list_filter_and_report_queries_are_explained(quick_run: tuple[dict[str, object], str]) -> None:
    report, _ = quick_run
    explained = report["explain"]
    assert isinstance(explained, list)
    names = " ".join(entry["name"] for entry in explained)
    for query in ("ListProducts", "ListStockMovements", "ListOrders", "GetSalesReport"):
        assert query in names
    assert all(entry["plan"] for entry in explained)


def test_import_throughput_is_measured_on_a_first_run_and_a_repeat(
    quick_run: tuple[dict[str, object], str],
) -> None:
    report, printed = quick_run
    figures = report["import_products"]
    assert isinstance(figures, dict)
    assert figures["rows"] == 2_000
    assert figures["first_run_rows_per_second"] > 0
    assert figures["second_run_rows_per_second"] > 0
    assert "import-products of 2 000 rows" in printed
