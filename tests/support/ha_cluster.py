"""A Patroni-managed PostgreSQL cluster of the test's own, driven through `scripts/ha-cluster`.

    async with ha_cluster(tmp_path) as cluster:
        cluster.auth_url, cluster.data_url     # multi-host URLs with target_session_attrs=read-write
        await cluster.kill_leader()            # SIGKILL the leader's Patroni and PostgreSQL
        await cluster.switchover()             # Patroni hands the lead to the synchronous standby

The test drives the same script an operator uses (`make ha`), so the script is proven too. The cluster
lives on free loopback ports in a temp directory of its own and is stopped afterwards, whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ha-cluster"
_URL = re.compile(r"^(AUTH|DATA)_DATABASE_URL='(.+)'$", re.MULTILINE)


def ha_tools_missing() -> str | None:
    """Why the HA cluster cannot run here (None when it can)."""
    for tool in ("patroni", "etcd", "psql"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (scripts/ensure-ha-tools installs it)"
    return None


@dataclass
class HaCluster:
    state_file: Path
    auth_url: str
    data_url: str

    async def run(self, command: str, timeout: float = 120.0) -> str:
        return await _script(command, "--state", str(self.state_file), "--timeout", str(timeout))

    async def kill_leader(self) -> dict[str, object]:
        return dict(json.loads((await self.run("kill-leader")).splitlines()[-1]))

    async def switchover(self) -> dict[str, object]:
        return dict(json.loads((await self.run("switchover")).splitlines()[-1]))

    async def status(self) -> str:
        return await self.run("status")

    async def service_connections(self, application_names: str = "tessera-%") -> dict[str, tuple[bool, int]]:
        """Member name → (is it the primary, how many connections of our services it holds), for
        every member that is up."""
        found = {}
        for name, port in self.member_ports().items():
            try:
                connection = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres")
            except (OSError, asyncpg.PostgresError):
                continue  # down (killed, or restarting as a standby)
            try:
                primary = not await connection.fetchval("SELECT pg_is_in_recovery()")
                ours = await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1", application_names
                )
            finally:
                await connection.close()
            found[name] = (primary, int(ours))
        return found

    def member_ports(self) -> dict[str, int]:
        state = json.loads(self.state_file.read_text())
        return {member["name"]: member["pg_port"] for member in state["members"]}

    async def on_standbys(self, sql: str, database: str = "postgres") -> list[object]:
        """Run `sql` on every standby that is up; the first column of each answer."""
        answers = []
        for port in self.member_ports().values():
            try:
                connection = await asyncpg.connect(
                    host="127.0.0.1", port=port, user="postgres", database=database
                )
            except (OSError, asyncpg.PostgresError):
                continue
            try:
                if await connection.fetchval("SELECT pg_is_in_recovery()"):
                    answers.append(await connection.fetchval(sql))
            finally:
                await connection.close()
        return answers


@asynccontextmanager
async def ha_cluster(directory: Path) -> AsyncIterator[HaCluster]:
    state_file = directory / "ha-cluster.json"
    try:
        urls = dict(_URL.findall(await _script("start", "--state", str(state_file))))
        yield HaCluster(state_file=state_file, auth_url=urls["AUTH"], data_url=urls["DATA"])
    except BaseException:
        _print_evidence(state_file)
        raise
    finally:
        await _script("stop", "--state", str(state_file))


def _print_evidence(state_file: Path, lines: int = 40) -> None:
    """The cluster's own account of a failed test (shown with the failure), before `stop` removes it."""
    if not state_file.exists():
        return
    directory = Path(json.loads(state_file.read_text())["dir"])
    for log in sorted(directory.glob("*.log")):
        print(f"--- {log.name} (last {lines} lines)")
        print("\n".join(log.read_text(errors="replace").splitlines()[-lines:]))


async def _script(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    text = output.decode()
    if process.returncode != 0:
        raise RuntimeError(f"scripts/ha-cluster {' '.join(args)} exited with {process.returncode}:\n{text}")
    return text
