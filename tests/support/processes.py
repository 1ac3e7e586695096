"""Both services as real processes (`tessera-auth serve`, `tessera-data serve`), as an operator runs them.

    async with ServiceProcesses(tmp_path) as services:
        auth = await services.start_auth(auth_url)
        data = await services.start_data(data_url, auth.target)

Every process started is stopped afterwards (SIGTERM, then SIGKILL if it does not go). Each one logs JSON
to its own file under the directory; `ServerProcess.log_lines()` reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import TracebackType
from typing import Any

from auth_service.app import build_core
from auth_service.domain.scopes import Role
from auth_service.migrations import SCRIPT_LOCATION as AUTH_MIGRATIONS
from data_service.migrations import SCRIPT_LOCATION as DATA_MIGRATIONS
from shared.config import AuthSettings
from shared.migrations import upgrade_to_head
from tests.support.auth_server import CHEAP_ARGON2
from tests.support.servers import ServerProcess, start_process
from tests.support.signing_keys import SigningKeys


class ServiceProcesses:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.keys = SigningKeys()
        self.key_file = self.keys.write_pem(directory / "auth-signing-keys.pem")
        self.started: list[ServerProcess] = []
        self._migrated: set[str] = set()
        # Processes may be started concurrently; their database is migrated once.
        self._migrating = asyncio.Lock()

    async def _migrate(self, script_location: Path, database_url: str) -> None:
        # The deploy step of a real database (`serve` would migrate SQLite itself, finding it at head).
        async with self._migrating:
            if database_url not in self._migrated:
                await upgrade_to_head(script_location, database_url)
            self._migrated.add(database_url)

    def auth_settings(self, database_url: str) -> AuthSettings:
        return AuthSettings(
            database_url=database_url,
            listen="127.0.0.1:0",
            metrics_port=0,
            signing_key_file=self.key_file,
            **CHEAP_ARGON2,
        )

    async def start_auth(self, database_url: str, name: str = "auth", **env: str) -> ServerProcess:
        await self._migrate(AUTH_MIGRATIONS, database_url)
        values = {
            "AUTH_DATABASE_URL": database_url,
            "AUTH_LISTEN": "127.0.0.1:0",
            "AUTH_METRICS_PORT": "0",
            "AUTH_LOG_FORMAT": "json",
            "AUTH_SIGNING_KEY_FILE": str(self.key_file),
            "AUTH_ARGON2_MEMORY_KIB": str(CHEAP_ARGON2["argon2_memory_kib"]),
            "AUTH_ARGON2_TIME_COST": str(CHEAP_ARGON2["argon2_time_cost"]),
            **env,
        }
        return await self._start("tessera-auth", values, name)

    async def start_data(
        self, database_url: str, auth_target: str, name: str = "data", **env: str
    ) -> ServerProcess:
        await self._migrate(DATA_MIGRATIONS, database_url)
        values = {
            "DATA_DATABASE_URL": database_url,
            "DATA_LISTEN": "127.0.0.1:0",
            "DATA_METRICS_PORT": "0",
            "DATA_LOG_FORMAT": "json",
            "DATA_AUTH_TARGET": auth_target,
            **env,
        }
        return await self._start("tessera-data", values, name)

    async def _start(self, script: str, env: dict[str, str], name: str) -> ServerProcess:
        folder = self.directory / name
        folder.mkdir(parents=True, exist_ok=True)
        process = await start_process(script, env, folder / f"{name}.log")
        self.started.append(process)
        return process

    async def create_user(self, auth_database_url: str, email: str, password: str, role: str) -> str:
        """A user of any role in the auth database, as `tessera-auth create-user` makes one."""
        [user_id] = await self.create_users(auth_database_url, [(email, role)], password)
        return user_id

    async def create_users(
        self, auth_database_url: str, users: list[tuple[str, str]], password: str
    ) -> list[str]:
        """Users given as (email, role), all with `password`; returns their ids."""
        await self._migrate(AUTH_MIGRATIONS, auth_database_url)
        core = build_core(self.auth_settings(auth_database_url))
        try:
            created = [
                await core.registration.register(
                    email=email, password=password, display_name="", roles=[Role(role)]
                )
                for email, role in users
            ]
        finally:
            await core.close()
        return [str(user.id) for user in created]

    async def create_client(self, auth_database_url: str, name: str, scopes: str) -> tuple[str, str]:
        """A service account: (client_id, client_secret)."""
        await self._migrate(AUTH_MIGRATIONS, auth_database_url)
        core = build_core(self.auth_settings(auth_database_url))
        try:
            created = await core.service_clients.create(name=name, scopes=scopes)
        finally:
            await core.close()
        return str(created.client.id), created.secret

    async def __aenter__(self) -> ServiceProcesses:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.gather(*(asyncio.to_thread(_stop, process) for process in self.started))


def _stop(process: ServerProcess) -> Any:
    if process.process.poll() is not None:
        return process.process.returncode
    try:
        return process.terminate_and_wait(timeout=15)
    except Exception:
        with contextlib.suppress(ProcessLookupError):
            process.process.kill()
        return process.process.wait(timeout=5)
