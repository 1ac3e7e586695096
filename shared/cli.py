"""What both services' command lines share: logging set-up, the event loop, `serve` and `migrate`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import structlog
from pydantic import ValidationError

from shared.config import ServiceSettings
from shared.db import is_sqlite
from shared.logging import configure_logging
from shared.migrations import upgrade_to_head
from shared.server import GrpcServer, install_uvloop, run_until_signalled

S = TypeVar("S", bound=ServiceSettings)
log = structlog.get_logger("tessera.cli")


def load_settings(factory: Callable[[], S]) -> S:
    """Settings from the environment, or a readable message and exit 2 (never a traceback)."""
    try:
        settings = factory()
    except (ValidationError, ValueError) as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.effective_log_format, settings.log_level, settings.service_name)
    return settings


def subcommands(description: str) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:  # type: ignore[type-arg]
    parser = argparse.ArgumentParser(description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC server until SIGTERM/SIGINT")
    commands.add_parser("migrate", help="upgrade the service's database to the latest schema")
    return parser, commands


async def migrate(settings: ServiceSettings, script_location: Path) -> None:
    await upgrade_to_head(script_location, settings.database_url)
    log.info("migrated", database=_redacted(settings.database_url))


async def serve(
    settings: S,
    script_location: Path,
    create_server: Callable[[S], Awaitable[GrpcServer]],
) -> None:
    if is_sqlite(settings.database_url):
        # The embedded default has no operator to run `migrate`; a real database gets it from a deploy
        # step (the compose file's one-shot migration services).
        await migrate(settings, script_location)
    server = await create_server(settings)
    await run_until_signalled(server, exit_when_stopped=True)


def run(main: Awaitable[None]) -> None:
    install_uvloop()
    asyncio.run(main)  # type: ignore[arg-type]


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
