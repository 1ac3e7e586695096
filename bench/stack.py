"""The system under test, set up the way production runs it and torn down afterwards.

Two PostgreSQL databases made for this run (dropped at the end, also on failure or Ctrl-C), migrated by
`tessera-auth migrate` / `tessera-data migrate`; an Ed25519 signing key in a PEM file; a user made with
`tessera-auth create-user`; `tessera-auth serve` and `tessera-data serve` as processes with JSON logs
(uvloop is what `serve` installs); and the two baselines beside them, same interpreter, same loop.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from bench import client
from bench.processes import ServerProcess, console_script, run_command, start_server

REPOSITORY = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("TESSERA_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_EMAIL = "bench-admin@example.com"


@dataclass
class Stack:
    """Everything a scenario needs to reach: servers, databases, a logged-in user."""

    folder: Path
    auth_dsn: str
    data_dsn: str
    auth: ServerProcess
    data: ServerProcess
    echo: ServerProcess | None
    pk: ServerProcess | None
    email: str
    password: str

    @property
    def services(self) -> list[ServerProcess]:
        return [self.auth, self.data]

    async def token(self) -> str:
        """A fresh access token of the bench user (every scope: the user is an admin)."""
        return await client.access_token(self.auth.port, self.email, self.password)

    def ensure_running(self) -> None:
        for server in (self.auth, self.data, self.echo, self.pk):
            if server is not None:
                server.ensure_running()

    @property
    def baselines(self) -> tuple[ServerProcess, ServerProcess]:
        if self.echo is None or self.pk is None:
            raise RuntimeError("this stack runs without baselines")
        return self.echo, self.pk


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def dsn_of(database: str) -> str:
    return f"{ADMIN_DSN.rsplit('/', 1)[0]}/{database}"


def free_port() -> int:
    """A port nobody listens on now (for the metrics endpoints, which need a fixed number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def database(label: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for this run; dropped when the block ends, however it ends."""
    name = f"tessera_bench_{label}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield dsn_of(name)
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def write_signing_key(folder: Path) -> Path:
    """An Ed25519 key as production gets it (AUTH_SIGNING_KEY_FILE, PKCS#8 PEM)."""
    path = folder / "signing-key.pem"
    pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def auth_environment(auth_dsn: str, key_file: Path) -> dict[str, str]:
    return {
        "AUTH_DATABASE_URL": sqlalchemy_url(auth_dsn),
        "AUTH_LISTEN": "127.0.0.1:0",
        "AUTH_METRICS_PORT": str(free_port()),
        "AUTH_LOG_FORMAT": "json",
        "AUTH_SIGNING_KEY_FILE": str(key_file),
        # Long enough for one token to outlive a full run (scenarios still fetch fresh ones).
        "AUTH_ACCESS_TOKEN_TTL": "3600",
        # The registration scenario sends thousands of Register calls from one address.
        "AUTH_REGISTRATIONS_PER_ADDRESS": "1000000000",
    }


def data_environment(data_dsn: str, auth_port: int) -> dict[str, str]:
    return {
        "DATA_DATABASE_URL": sqlalchemy_url(data_dsn),
        "DATA_LISTEN": "127.0.0.1:0",
        "DATA_METRICS_PORT": str(free_port()),
        "DATA_LOG_FORMAT": "json",
        "DATA_AUTH_TARGET": f"127.0.0.1:{auth_port}",
    }


async def migrate(auth_dsn: str, data_dsn: str, folder: Path) -> None:
    """Both schemas, by the console scripts' `migrate`, as a deploy step runs them."""
    await asyncio.gather(
        run_command(
            [console_script("tessera-auth"), "migrate"],
            {"AUTH_DATABASE_URL": sqlalchemy_url(auth_dsn), "AUTH_LOG_FORMAT": "json"},
            cwd=folder,
        ),
        run_command(
            [console_script("tessera-data"), "migrate"],
            {"DATA_DATABASE_URL": sqlalchemy_url(data_dsn), "DATA_LOG_FORMAT": "json"},
            cwd=folder,
        ),
    )


async def create_user(auth_dsn: str, folder: Path, email: str, password: str, role: str) -> None:
    await run_command(
        [console_script("tessera-auth"), "create-user", "--email", email, "--role", role],
        {"AUTH_DATABASE_URL": sqlalchemy_url(auth_dsn), "AUTH_LOG_FORMAT": "json"},
        cwd=folder,
        stdin=(password + "\n").encode(),
    )


@asynccontextmanager
async def databases() -> AsyncIterator[tuple[str, str]]:
    """The auth and data databases of one run."""
    async with database("auth") as auth_dsn, database("data") as data_dsn:
        yield auth_dsn, data_dsn


@asynccontextmanager
async def running_stack(
    auth_dsn: str, data_dsn: str, folder: Path, *, baselines: bool = True, pool_size: int = 10
) -> AsyncIterator[Stack]:
    """User created, the services (and the baselines) up; stopped with SIGTERM when the block ends.

    The databases must be migrated (and seeded: see `bench.seed`) before.
    """
    async with AsyncExitStack() as stack:
        key_file = write_signing_key(folder)
        password = secrets.token_urlsafe(18)
        await create_user(auth_dsn, folder, BENCH_EMAIL, password, "admin")

        auth = await start_server(
            "tessera-auth",
            [console_script("tessera-auth"), "serve"],
            auth_environment(auth_dsn, key_file),
            folder / "auth.log",
            cwd=folder,
        )
        stack.callback(auth.stop)
        data = await start_server(
            "tessera-data",
            [console_script("tessera-data"), "serve"],
            data_environment(data_dsn, auth.port),
            folder / "data.log",
            cwd=folder,
        )
        stack.callback(data.stop)
        echo = pk = None
        if baselines:
            baseline = [sys.executable, "-m", "bench.baselines"]
            echo = await start_server(
                "baseline A (echo)", [*baseline, "echo"], {}, folder / "echo.log", cwd=REPOSITORY
            )
            stack.callback(echo.stop)
            pk = await start_server(
                "baseline B (asyncpg)",
                [*baseline, "pk", "--dsn", data_dsn, "--pool-size", str(pool_size)],
                {},
                folder / "pk.log",
                cwd=REPOSITORY,
            )
            stack.callback(pk.stop)
        yield Stack(
            folder=folder,
            auth_dsn=auth_dsn,
            data_dsn=data_dsn,
            auth=auth,
            data=data,
            echo=echo,
            pk=pk,
            email=BENCH_EMAIL,
            password=password,
        )
