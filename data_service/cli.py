"""`tessera-data`: serve, migrate."""

from __future__ import annotations

from data_service.app import create_server
from data_service.migrations import SCRIPT_LOCATION
from shared import cli
from shared.config import DataSettings


def main(argv: list[str] | None = None) -> None:
    parser, _commands = cli.subcommands("Tessera data service")
    args = parser.parse_args(argv)
    settings = cli.load_settings(DataSettings)
    if args.command == "serve":
        cli.run(cli.serve(settings, SCRIPT_LOCATION, create_server))
    elif args.command == "migrate":
        cli.run(cli.migrate(settings, SCRIPT_LOCATION))
