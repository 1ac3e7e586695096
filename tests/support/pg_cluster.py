"""A PostgreSQL cluster of the test's own, which it may stop and start like an operator would.

    async with throwaway_cluster() as cluster:
        url = await cluster.create_database("data")      # postgresql+asyncpg://postgres@127.0.0.1:PORT/data
        await cluster.stop()                             # pg_ctl stop -m fast
        await cluster.start()                            # same port, same data

The shared cluster on 5432 serves every other test running at the same time, so a test that stops a
database server creates this one instead: `initdb` into a temporary folder, `pg_ctl start` on a free
loopback port, trust authentication, no Unix socket outside its folder. PostgreSQL refuses to run as
root, so when the tests run as root the cluster belongs to the `postgres` OS user.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from tests.support.ops import free_port

OS_USER = "postgres"


def postgres_bin_dir() -> Path | None:
    """Where `initdb` and `pg_ctl` live: `pg_config --bindir`, else Debian's newest version folder."""
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(found.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    return versions[-1].parent if versions else None


def _as_cluster_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", OS_USER, "--", *command]


class ThrowawayCluster:
    def __init__(self, bin_dir: Path, directory: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.directory = directory
        self.port = port
        self.data_dir = directory / "data"
        self.log_file = directory / "postgres.log"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str, user: str = "postgres") -> str:
        """The SQLAlchemy URL of one of this cluster's databases."""
        return f"postgresql+asyncpg://{user}@127.0.0.1:{self.port}/{database}"

    async def execute(self, sql: str) -> None:
        """One statement as the cluster's superuser (CREATE ROLE, ALTER ROLE ... CONNECTION LIMIT)."""
        admin = await asyncpg.connect(self.admin_dsn)
        try:
            await admin.execute(sql)
        finally:
            await admin.close()

    async def _run(self, *command: str) -> str:
        process = await asyncio.create_subprocess_exec(
            *_as_cluster_owner([str(self.bin_dir / command[0]), *command[1:]]),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self.directory,
        )
        output, _ = await process.communicate()
        text = output.decode(errors="replace")
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{text}")
        return text

    async def init(self) -> None:
        await self._run(
            "initdb", "--pgdata", str(self.data_dir), "--username", "postgres", "--auth", "trust",
            "--encoding", "UTF8", "--no-sync",
        )  # fmt: skip

    async def start(self) -> None:
        """Start (again) on the same port and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories='{self.directory}' "
            # A test cluster: durability is not what is tested, speed on a shared machine is.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        await self._run(
            "pg_ctl", "start", "--wait", "--timeout", "60", "--pgdata", str(self.data_dir),
            "--log", str(self.log_file), "-o", options,
        )  # fmt: skip

    async def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast`: the server ends every session (57P01) and goes away."""
        await self._run(
            "pg_ctl", "stop", "--wait", "--timeout", "60", "--pgdata", str(self.data_dir), "-m", mode
        )

    async def is_running(self) -> bool:
        process = await asyncio.create_subprocess_exec(
            *_as_cluster_owner([str(self.bin_dir / "pg_ctl"), "status", "--pgdata", str(self.data_dir)]),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await process.wait() == 0

    async def create_database(self, name: str, owner: str = "postgres") -> str:
        """A database owned by `owner` (which then migrates and uses it); returns its URL as `owner`."""
        await self.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        return self.url(name, owner)


@asynccontextmanager
async def throwaway_cluster() -> AsyncIterator[ThrowawayCluster]:
    """A running cluster of the caller's own; stopped and deleted afterwards, whatever happened."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL's initdb/pg_ctl are not installed (scripts/ensure-postgres)")
    # Not under pytest's tmp_path: that folder is private to root, and the cluster's owner must enter it.
    directory = Path(tempfile.mkdtemp(prefix="tessera-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam(OS_USER)
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    cluster = ThrowawayCluster(bin_dir, directory, free_port())
    try:
        await cluster.init()
        await cluster.start()
        yield cluster
    finally:
        if await cluster.is_running():
            await cluster.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
