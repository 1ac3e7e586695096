"""`tessera-data`: serve, migrate, import-products, export-products, seed-demo."""

from __future__ import annotations

from data_service import catalog_cli
from data_service.app import create_server
from data_service.migrations import SCRIPT_LOCATION
from shared import cli
from shared.config import DataSettings


def main(argv: list[str] | None = None) -> None:
    parser, commands = cli.subcommands("Tessera data service")
    catalog_cli.add_commands(commands)
    args = parser.parse_args(argv)
    settings = cli.load_settings(DataSettings)
    if args.command == "serve":
        cli.run(cli.serve(settings, SCRIPT_LOCATION, create_server))
    elif args.command == "migrate":
        cli.run(cli.migrate(settings, SCRIPT_LOCATION))
    elif args.command == "import-products":
        raise SystemExit(catalog_cli.run_import(settings, args))
    elif args.command == "export-products":
        raise SystemExit(catalog_cli.run_export(settings, args))
    elif args.command == "seed-demo":
        raise SystemExit(catalog_cli.run_seed_demo(settings))
