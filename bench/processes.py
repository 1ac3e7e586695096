"""Server processes under test: started like production starts them, watched through /proc."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass
class ServerProcess:
    """A running server, the port it bound and where its (JSON) log goes."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU the process (all its threads) has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def rss_bytes(self) -> int:
        """Resident set size now."""
        resident_pages = int(Path(f"/proc/{self.pid}/statm").read_text().split()[1])
        return resident_pages * _PAGE_BYTES

    def ensure_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}; last log lines:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM (the graceful path), SIGKILL if it does not exit in time; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


async def start_server(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    log_path: Path,
    *,
    cwd: Path,
    startup_timeout_s: float = 60.0,
) -> ServerProcess:
    """Run `command`, wait for its JSON `server_started` log line and learn the port from it."""
    log_file = log_path.open("wb")
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped by ServerProcess.stop
        list(command),
        env={**os.environ, **env},
        cwd=cwd,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        # Ctrl-C on `make bench` reaches the harness, which stops its servers in order.
        start_new_session=True,
    )
    log_file.close()
    server = ServerProcess(name=name, process=process, port=0, log_path=log_path)
    deadline = time.monotonic() + startup_timeout_s
    while time.monotonic() < deadline:
        server.ensure_running()
        text = await asyncio.to_thread(log_path.read_text, errors="replace")
        for raw in text.splitlines():
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(line, dict) and line.get("event") == "server_started":
                server.port = int(line["port"])
                return server
        await asyncio.sleep(0.05)
    server.stop(timeout_s=2)
    raise TimeoutError(f"{name} did not start within {startup_timeout_s}s:\n{server.log_tail()}")


def console_script(name: str) -> str:
    """A console script of this venv (`tessera-auth`, `tessera-data`)."""
    return str(BIN / name)


async def run_command(
    command: Sequence[str], env: Mapping[str, str], *, cwd: Path, stdin: bytes | None = None
) -> str:
    """Run a one-shot command (migrate, create-user); its output, or an error with that output."""
    process = await asyncio.create_subprocess_exec(
        *command,
        env={**os.environ, **env},
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate(stdin)
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}:\n{text}")
    return text


class CpuMeter:
    """CPU time a set of processes used between `start()` and `stop()`."""

    def __init__(self, servers: Sequence[ServerProcess]) -> None:
        self._servers = list(servers)
        self._before: list[float] = []

    def start(self) -> None:
        self._before = [server.cpu_seconds() for server in self._servers]

    def stop(self) -> float:
        return sum(
            server.cpu_seconds() - before for server, before in zip(self._servers, self._before, strict=True)
        )


class Profiler:
    """py-spy sampling one server while a configuration runs (`--profile`); a no-op when not asked for.

    The output is py-spy's "raw" collapsed-stack format (one `frame;frame;... count` line per stack),
    which speedscope and flamegraph.pl read, and `top_frames` summarizes.
    """

    def __init__(self, folder: Path | None) -> None:
        self._folder = folder
        self._process: asyncio.subprocess.Process | None = None
        if folder is not None and shutil.which("py-spy", path=str(BIN)) is None:
            raise RuntimeError("--profile needs py-spy in the venv: .venv/bin/pip install py-spy")

    async def start(self, server: ServerProcess, name: str) -> None:
        if self._folder is None:
            return
        self._folder.mkdir(parents=True, exist_ok=True)
        self.output = self._folder / f"{name}.txt"
        self._process = await asyncio.create_subprocess_exec(
            str(BIN / "py-spy"),
            "record",
            "--pid",
            str(server.pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--output",
            str(self.output),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        # py-spy needs a moment to attach; samples before that would be lost, not wrong.
        await asyncio.sleep(0.5)

    async def stop(self) -> Path | None:
        if self._process is None:
            return None
        self._process.send_signal(signal.SIGINT)
        await self._process.wait()
        self._process = None
        return self.output


def top_frames(collapsed: Path, limit: int = 25) -> list[tuple[float, str]]:
    """The frames most samples were inside of (inclusive share), from a py-spy raw profile."""
    inclusive: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        for frame in set(stack.split(";")):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    ranked = sorted(inclusive.items(), key=lambda item: item[1], reverse=True)[:limit]
    return [(round(count / total, 3), frame) for frame, count in ranked] if total else []
