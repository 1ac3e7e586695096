"""Driving h2load as a gRPC load generator, and refusing to believe its success count.

h2load speaks HTTP/2, not gRPC: a call that ends with `grpc-status: 16` is still an HTTP 200 and counts
as "succeeded". Every run here therefore carries an expectation about the response DATA bytes (a gRPC
error sends none, our servers answer errors with headers and trailers only) that `verify` checks, and
scenarios that write add a check of what reached the database.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

GRPC_FRAME_HEADER_BYTES = 5


class H2LoadMissing(RuntimeError):
    """h2load is not installed (Debian package `nghttp2-client`)."""


class VerificationFailed(AssertionError):
    """A load figure whose calls did not all really succeed at the gRPC level."""


def h2load_path() -> str:
    path = shutil.which("h2load")
    if path is None:
        raise H2LoadMissing("h2load is not installed: apt-get install -y nghttp2-client (or `make bench`)")
    return path


def grpc_frame(message: bytes) -> bytes:
    """A request body as gRPC sends it: uncompressed flag, 4-byte big-endian length, the message."""
    return b"\x00" + struct.pack(">I", len(message)) + message


@dataclass(frozen=True)
class Target:
    """Where one gRPC method is served and how to call it."""

    port: int
    method: str  # "/pkg.Service/Method"
    request: bytes  # serialized request message
    token: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.method}"

    def headers(self) -> list[str]:
        headers = ["content-type: application/grpc", "te: trailers"]
        if self.token is not None:
            headers.append(f"authorization: Bearer {self.token}")
        return headers


@dataclass(frozen=True)
class Load:
    """How hard to push: h2load's -n / -c / -m, or a duration with an optional per-client rate."""

    requests: int = 0
    clients: int = 16
    streams: int = 4
    duration_s: float = 0.0
    warm_up_s: float = 0.0
    rate_per_client: int = 0

    def arguments(self) -> list[str]:
        args = ["-c", str(self.clients), "-m", str(self.streams)]
        if self.duration_s > 0:
            args += ["-D", f"{self.duration_s:g}"]
            if self.warm_up_s > 0:
                args += ["--warm-up-time", f"{self.warm_up_s:g}"]
        else:
            args += ["-n", str(self.requests)]
        if self.rate_per_client > 0:
            args += ["--rps", str(self.rate_per_client)]
        return args


@dataclass
class H2LoadResult:
    """What one (or several merged) h2load runs reported."""

    done: int
    succeeded: int
    failed: int
    errored: int
    elapsed_s: float
    data_bytes: int
    latencies_us: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.succeeded / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, p: float) -> float:
        return percentile(self.latencies_us, p) / 1000.0

    def verify(self, response_bytes: int | tuple[int, int]) -> None:
        """Check that every call got a real gRPC response of the expected size.

        An exact size proves each call got one data frame of that size (an error has none). A range
        (min, max), for responses with varying fields such as timestamps, only proves that nearly all did;
        such scenarios also check the database.
        """
        if self.done == 0 or self.failed or self.errored or self.succeeded != self.done:
            raise VerificationFailed(
                f"h2load: {self.done} done, {self.succeeded} succeeded, {self.failed} failed, "
                f"{self.errored} errored"
            )
        low, high = (response_bytes, response_bytes) if isinstance(response_bytes, int) else response_bytes
        low, high = low + GRPC_FRAME_HEADER_BYTES, high + GRPC_FRAME_HEADER_BYTES
        if not self.done * low <= self.data_bytes <= self.done * high:
            raise VerificationFailed(
                f"response data is {self.data_bytes} bytes for {self.done} calls, expected "
                f"{low}..{high} each: some calls answered with a gRPC error"
            )


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by the nearest-rank method; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored"
)
_FINISHED = re.compile(r"finished in ([\d.]+)(s|ms|us),")
_DATA = re.compile(r"traffic: .*?, .*? headers .*?, [\d.]+\w*B \((\d+)\) data")
_SECONDS_PER_UNIT = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def parse_output(text: str, log_file: Path | None) -> H2LoadResult:
    """The counts, elapsed time and DATA bytes from h2load's summary, latencies from its log file."""
    requests, finished, data = _REQUESTS.search(text), _FINISHED.search(text), _DATA.search(text)
    if requests is None or finished is None or data is None:
        raise RuntimeError(f"unexpected h2load output:\n{text}")
    latencies: list[float] = []
    if log_file is not None and log_file.exists():
        for line in log_file.read_text().splitlines():
            # start time (µs since epoch), HTTP status, µs until the end of the response
            columns = line.split("\t")
            if len(columns) >= 3 and columns[1] != "-1":
                latencies.append(float(columns[2]))
    return H2LoadResult(
        done=int(requests.group(3)),
        succeeded=int(requests.group(4)),
        failed=int(requests.group(5)),
        errored=int(requests.group(6)),
        elapsed_s=float(finished.group(1)) * _SECONDS_PER_UNIT[finished.group(2)],
        data_bytes=int(data.group(1)),
        latencies_us=latencies,
    )


async def run(target: Target, load: Load, *, timeout_s: float = 600.0) -> H2LoadResult:
    """One h2load run against `target`."""
    return (await run_many([target], load, timeout_s=timeout_s))[0]


async def run_many(targets: Sequence[Target], load: Load, *, timeout_s: float = 600.0) -> list[H2LoadResult]:
    """One h2load process per target, all started together (h2load sends one body per process)."""
    binary = h2load_path()
    with tempfile.TemporaryDirectory(prefix="tessera-h2load-") as tmp:
        folder = Path(tmp)
        processes = []
        for index, target in enumerate(targets):
            body, log_file = folder / f"body-{index}.bin", folder / f"latency-{index}.tsv"
            body.write_bytes(grpc_frame(target.request))
            header_args = [arg for header in target.headers() for arg in ("-H", header)]
            process = await asyncio.create_subprocess_exec(
                binary,
                *load.arguments(),
                "-d",
                str(body),
                *header_args,
                "--log-file",
                str(log_file),
                target.url,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            processes.append((process, log_file))
        outputs = await asyncio.wait_for(
            asyncio.gather(*(process.communicate() for process, _ in processes)), timeout_s
        )
        results = []
        for (process, log_file), (stdout, _) in zip(processes, outputs, strict=True):
            text = stdout.decode(errors="replace")
            if process.returncode != 0:
                raise RuntimeError(f"h2load exited with {process.returncode}:\n{text}")
            results.append(parse_output(text, log_file))
        return results


def merge(results: Sequence[H2LoadResult]) -> H2LoadResult:
    """Runs that went on side by side, as one: counts add up, the slowest run's time is the wall time."""
    return H2LoadResult(
        done=sum(r.done for r in results),
        succeeded=sum(r.succeeded for r in results),
        failed=sum(r.failed for r in results),
        errored=sum(r.errored for r in results),
        elapsed_s=max(r.elapsed_s for r in results),
        data_bytes=sum(r.data_bytes for r in results),
        latencies_us=[latency for r in results for latency in r.latencies_us],
    )


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0
