"""`tessera-auth`: serve, migrate, create-user, create-client."""

from __future__ import annotations

from auth_service.app import create_server
from auth_service.migrations import SCRIPT_LOCATION
from shared import cli
from shared.config import AuthSettings


def main(argv: list[str] | None = None) -> None:
    parser, _commands = cli.subcommands("Tessera auth service")
    args = parser.parse_args(argv)
    settings = cli.load_settings(AuthSettings)
    if args.command == "serve":
        cli.run(cli.serve(settings, SCRIPT_LOCATION, create_server))
    elif args.command == "migrate":
        cli.run(cli.migrate(settings, SCRIPT_LOCATION))
