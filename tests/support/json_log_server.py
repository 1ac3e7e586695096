"""`python -m tests.support.json_log_server`: the shared server with production logging, in its own process.

Logging is configured exactly as `tessera-auth serve` does it (`shared.cli.load_settings` from `AUTH_*`
env), in a process of its own so that structlog's process-wide configuration cannot leak into, or be
spoiled by, other tests. Prints one JSON line on stdout when ready: the port and a token the server
accepts. Logs go to stderr; SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import json
import sys

from shared import cli
from shared.config import AuthSettings
from shared.db import create_engine
from shared.server import run_until_signalled
from tests.support.ops import build_server
from tests.support.tokens import TokenMinter


async def main() -> None:
    settings = cli.load_settings(AuthSettings)
    minter = TokenMinter()
    engine = create_engine(settings.database_url)
    server = build_server(settings, minter, engine=engine)

    def ready(port: int) -> None:
        print(json.dumps({"port": port, "token": minter.mint("user-42", [])}), flush=True)

    try:
        await run_until_signalled(server, ready=ready)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
