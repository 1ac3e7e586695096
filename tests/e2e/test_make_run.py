"""`make run` as a developer uses it: in a terminal, both services start; Ctrl-C stops them cleanly, make
exits 0 and prints no "make: ***" error line.

A real pseudo-terminal: make runs as its controlling process and the test types Ctrl-C (0x03) into it, so
the terminal delivers SIGINT to its foreground process group exactly as it would for a person. Databases
and the signing key live in the test's folder; the ports are free ones. ~5 s.
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.logs import wait_until
from tests.support.ops import free_port
from tests.support.signing_keys import SigningKeys

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent
CTRL_C = b"\x03"


async def _serving(health: health_pb2_grpc.HealthStub) -> bool:
    try:
        response = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
    except grpc.aio.AioRpcError:
        return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


class Terminal:
    """A child process on its own pseudo-terminal; what it prints is collected."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.output = b""
        pid, self._fd = pty.fork()
        if pid == 0:  # the child: nothing but exec
            os.execvpe(argv[0], argv, env)  # noqa: S606 - make, with fixed arguments
        self.pid = pid

    def _read_available(self, wait: float) -> bool:
        """Read what is there (waiting up to `wait` s); False once the terminal is closed."""
        ready, _, _ = select.select([self._fd], [], [], wait)
        if ready:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:  # EIO: every process on the terminal is gone
                return False
            if not chunk:
                return False
            self.output += chunk
        return True

    async def wait_for_output(self, text: bytes, count: int, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.output.count(text) < count:
            assert loop.time() < deadline, f"no {count}x {text!r} within {timeout}s:\n{self.text}"
            await asyncio.to_thread(self._read_available, 0.1)

    def type(self, keys: bytes) -> None:
        os.write(self._fd, keys)

    async def exit_code(self, timeout: float) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            await asyncio.to_thread(self._read_available, 0.1)
            pid, status = os.waitpid(self.pid, os.WNOHANG)  # noqa: ASYNC222 - WNOHANG never blocks
            if pid:
                while await asyncio.to_thread(self._read_available, 0.1):
                    pass
                os.close(self._fd)
                return os.waitstatus_to_exitcode(status)
            assert loop.time() < deadline, f"still running after {timeout}s:\n{self.text}"

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")


async def test_ctrl_c_stops_make_run_with_exit_zero_and_no_make_error(tmp_path: Path) -> None:
    auth_port, data_port = free_port(), free_port()
    env = {
        **os.environ,
        "AUTH_LISTEN": f"127.0.0.1:{auth_port}",
        "DATA_LISTEN": f"127.0.0.1:{data_port}",
        "DATA_AUTH_TARGET": f"127.0.0.1:{auth_port}",
        "AUTH_METRICS_PORT": "0",
        "DATA_METRICS_PORT": "0",
        "AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}",
        "DATA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'data.db'}",
        "AUTH_SIGNING_KEY_FILE": str(SigningKeys().write_pem(tmp_path / "signing-key.pem")),
        "AUTH_LOG_FORMAT": "json",
        "DATA_LOG_FORMAT": "json",
    }
    make = Terminal(["make", "--no-print-directory", "-C", str(REPO), "run", f"VENV={VENV}"], env)
    try:
        await make.wait_for_output(b'"event": "server_started"', 2, timeout=60)
        # SERVING means the data service has the auth service's keys: both are really up.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{data_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            await wait_until(lambda: _serving(health), within=30)
        make.type(CTRL_C)
        code = await make.exit_code(timeout=30)
    except BaseException:
        # make passes SIGTERM on to the recipe, whose runner stops both services.
        os.kill(make.pid, signal.SIGTERM)
        await make.exit_code(timeout=30)
        raise
    assert code == 0, make.text
    assert "make: ***" not in make.text
    assert make.text.count('"event": "server_stopped"') == 2, make.text
