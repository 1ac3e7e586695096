"""`python -m bench [run|soak] [--quick]` — what `make bench` and `make soak` call.

Exit status: 0 when every measurement was verified and every correctness check held; 1 otherwise.
Missed speed targets are reported in the table and the JSON but only fail the run with `--strict`
(on a shared 2-core machine a single noisy run should not turn a build red); `soak` always fails on
memory growth, since that is the one thing it checks.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bench.h2load import H2LoadMissing, h2load_path
from bench.plan import Plan
from bench.report import Report

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Tessera's benchmark harness")
    parser.add_argument(
        "command",
        nargs="?",
        choices=["run", "soak"],
        default="run",
        help="run: every configuration and target (default); soak: memory under a bounded load",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the harness")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of the plan (bench/plan.py), e.g. --set repetitions=5 --set products=50000",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated configurations to measure (echo, pk, get_product, list_page_1, "
        "list_page_deep, order_spread, order_hot, jwks_idle, jwks_storm); for profiling sessions",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record a py-spy profile of the server during each configuration (bench/results/profiles/); "
        "the figures of such a run are not comparable",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a speed target is missed")
    args = parser.parse_args(argv)

    try:
        h2load_path()
    except H2LoadMissing as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    plan = (Plan.smoke() if args.quick else Plan.full()).with_overrides(args.set)

    # Imported here: they pull in the data service's repositories, which `--help` does not need.
    if args.command == "soak":
        from bench.soak import soak

        report: Report = asyncio.run(soak(plan, args.results))
    else:
        from bench.run import run

        only = frozenset(name.strip() for name in args.only.split(",") if name.strip())
        profile = args.results / "profiles" if args.profile else None
        report = asyncio.run(run(plan, args.results, only, profile))
    print()
    print(report.render())
    if plan.quick:
        print("\n(quick run: tiny sizes, the figures mean nothing; it proves the harness works)")
    failed = not report.correct or (args.command == "soak" and not report.targets_met)
    if args.strict and not report.targets_met:
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
