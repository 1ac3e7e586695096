"""Running real Tessera servers in tests: in-process on port 0, or as processes via the console scripts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.server import GrpcServer

BIN = Path(sys.executable).parent


@asynccontextmanager
async def running(server: GrpcServer, grace: float = 1.0) -> AsyncIterator[int]:
    """Start `server` on an ephemeral port, yield the port, stop it afterwards."""
    port = await server.start("127.0.0.1:0")
    try:
        yield port
    finally:
        await server.stop(grace)


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    port: int
    log_path: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_lines(self) -> list[dict[str, object]]:
        lines = []
        for raw in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
        return lines

    def terminate_and_wait(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


async def start_process(
    script: str, env: Mapping[str, str], log_path: Path, *, startup_timeout: float = 30.0
) -> ServerProcess:
    """Run `<script> serve` with JSON logs and wait for its `server_started` line to learn the port."""
    full_env = {**os.environ, **env}
    log_file = log_path.open("w")
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, waited for outside the loop
        [str(BIN / script), "serve"],
        env=full_env,
        # ./var/ (dev key, SQLite files) lands in the test's folder, never in the checkout.
        cwd=log_path.parent,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{script} exited with {process.returncode}:\n{log_path.read_text()}")
        for raw in log_path.read_text().splitlines():
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if line.get("event") == "server_started":
                return ServerProcess(process=process, port=int(line["port"]), log_path=log_path)
        await asyncio.sleep(0.05)
    process.kill()
    raise TimeoutError(f"{script} did not start within {startup_timeout}s:\n{log_path.read_text()}")
