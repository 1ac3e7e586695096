"""`tessera-auth`: serve, migrate, create-user, create-client."""

from __future__ import annotations

import argparse
import json
import sys

from auth_service.app import AuthCore, build_core, create_server
from auth_service.domain.scopes import Role
from auth_service.migrations import SCRIPT_LOCATION
from auth_service.service.keys import SigningKeyError
from shared import cli
from shared.config import AuthSettings
from shared.db import is_sqlite
from shared.errors import InvalidArgument, TesseraError


def _read_password() -> str:
    """The password from stdin: one line, its line ending removed (so `echo pw |` works)."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("password: ")
    line = sys.stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")


async def _with_core(settings: AuthSettings, args: argparse.Namespace) -> None:
    if is_sqlite(settings.database_url):
        # As `serve` does: the embedded database has no separate deploy step that migrates it.
        await cli.migrate(settings, SCRIPT_LOCATION)
    core: AuthCore = build_core(settings)
    try:
        if args.command == "create-user":
            user = await core.registration.register(
                email=args.email,
                password=_read_password(),
                display_name=args.display_name,
                roles=[Role(args.role)],
            )
            print(json.dumps({"id": str(user.id), "email": user.email, "roles": sorted(user.roles)}))
        else:
            created = await core.service_clients.create(name=args.name, scopes=args.scopes)
            # The only time the secret is ever shown: only its hash is stored.
            print(json.dumps({"client_id": str(created.client.id), "client_secret": created.secret}))
    finally:
        await core.close()


def _fail(error: TesseraError) -> None:
    details = ""
    if isinstance(error, InvalidArgument) and error.violations:
        details = "".join(f"\n  {v.field}: {v.description}" for v in error.violations)
    print(f"error: {error.message}{details}", file=sys.stderr)
    raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    parser, commands = cli.subcommands("Tessera auth service")
    create_user = commands.add_parser(
        "create-user", help="create a user; the password is read from stdin (one line)"
    )
    create_user.add_argument("--email", required=True)
    create_user.add_argument("--role", required=True, choices=[role.value for role in Role])
    create_user.add_argument("--display-name", default="")
    create_client = commands.add_parser(
        "create-client", help='create a service account; prints {"client_id", "client_secret"} once'
    )
    create_client.add_argument("--name", required=True)
    create_client.add_argument(
        "--scopes", required=True, help='space-delimited, e.g. "catalog.read stock.write"'
    )
    args = parser.parse_args(argv)
    settings = cli.load_settings(AuthSettings)
    try:
        if args.command == "serve":
            cli.run(cli.serve(settings, SCRIPT_LOCATION, create_server))
        elif args.command == "migrate":
            cli.run(cli.migrate(settings, SCRIPT_LOCATION))
        else:
            cli.run(_with_core(settings, args))
    except TesseraError as error:
        _fail(error)
    except SigningKeyError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
