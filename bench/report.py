"""Figures, targets and checks of one benchmark run: the printed table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.h2load import H2LoadResult


@dataclass(frozen=True)
class Sample:
    """One verified run of one configuration."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_call: float
    calls: int

    @classmethod
    def of(cls, result: H2LoadResult, cpu_seconds: float) -> Sample:
        return cls(
            rps=round(result.rps, 1),
            p50_ms=round(result.percentile_ms(50), 3),
            p99_ms=round(result.percentile_ms(99), 3),
            cpu_us_per_call=round(cpu_seconds / result.succeeded * 1e6, 1) if result.succeeded else 0.0,
            calls=result.succeeded,
        )


@dataclass
class Figure:
    """A configuration measured once per repetition; reported as the median of its runs."""

    key: str
    label: str
    load: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        values = [float(getattr(sample, attribute)) for sample in self.samples]
        return float(statistics.median(values)) if values else 0.0


@dataclass(frozen=True)
class Check:
    """A target or a correctness check, and whether this run met it (None: not measured)."""

    name: str
    measured: str
    required: str
    passed: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


@dataclass
class Report:
    """Everything one `make bench` (or `make soak`) run found."""

    kind: str
    quick: bool
    plan: dict[str, Any]
    figures: dict[str, Figure] = field(default_factory=dict)
    targets: list[Check] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    explains: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)

    def figure(self, key: str, label: str, load: str) -> Figure:
        if key not in self.figures:
            self.figures[key] = Figure(key=key, label=label, load=load)
        return self.figures[key]

    @property
    def correct(self) -> bool:
        """Every correctness check passed (targets are about speed and reported, not enforced)."""
        return all(check.passed is not False for check in self.checks)

    @property
    def targets_met(self) -> bool:
        return all(check.passed is not False for check in self.targets)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "quick": self.quick,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            "machine": machine(),
            "plan": self.plan,
            "figures": {
                key: {
                    "label": figure.label,
                    "load": figure.load,
                    "median": {
                        attribute: figure.median(attribute)
                        for attribute in ("rps", "p50_ms", "p99_ms", "cpu_us_per_call")
                    },
                    "samples": [asdict(sample) for sample in figure.samples],
                }
                for key, figure in self.figures.items()
            },
            "targets": [asdict(check) | {"verdict": check.verdict} for check in self.targets],
            "checks": [asdict(check) | {"verdict": check.verdict} for check in self.checks],
            "explain": self.explains,
            **self.extra,
        }

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self.started_at))
        suffix = "-quick" if self.quick else ""
        path = folder / f"{self.kind}-{stamp}{suffix}.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    def render(self) -> str:
        lines: list[str] = []
        if self.figures:
            lines.append(
                _table(
                    ["configuration", "load", "RPS", "p50 ms", "p99 ms", "CPU µs/call", "runs"],
                    [
                        [
                            figure.label,
                            figure.load,
                            f"{figure.median('rps'):,.0f}",
                            f"{figure.median('p50_ms'):.2f}",
                            f"{figure.median('p99_ms'):.2f}",
                            f"{figure.median('cpu_us_per_call'):,.0f}"
                            if figure.median("cpu_us_per_call")
                            else "-",
                            str(len(figure.samples)),
                        ]
                        for figure in self.figures.values()
                    ],
                )
            )
        for title, checks in (("target", self.targets), ("check", self.checks)):
            if checks:
                lines.append("")
                lines.append(
                    _table(
                        [title, "measured", "required", "result"],
                        [[c.name, c.measured, c.required, c.verdict] for c in checks],
                    )
                )
        if self.explains:
            lines.append("")
            lines.append(
                _table(
                    ["query (EXPLAIN)", "plan", "result"],
                    [[e["name"], e["summary"], explain_verdict(e)] for e in self.explains],
                )
            )
        return "\n".join(lines)


def explain_verdict(entry: dict[str, Any]) -> str:
    if not entry["judged"]:
        return "info"
    return "PASS" if entry["index_only_access"] else "FAIL"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 or not _numeric(cell) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def _numeric(cell: str) -> bool:
    return cell == "-" or (bool(cell) and cell.replace(",", "").replace(".", "", 1).isdigit())


def machine() -> dict[str, Any]:
    """What the figures were measured on: they mean little without it."""
    try:
        version = subprocess.run(
            ["h2load", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except FileNotFoundError:
        version = "absent"
    import grpc

    return {
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "h2load": version,
        "platform": platform.platform(),
    }
