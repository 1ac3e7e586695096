"""The container files, checked for structure: no Docker engine runs here, so nothing can run them.

What would break `make up` without anyone noticing until a deploy: an env name the settings do not read,
a production configuration the settings refuse, a health check pointing at the wrong port, a Dockerfile
entrypoint that is not a console script, a dependency that does not wait for migrations.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from shared import healthcheck
from shared.cli import subcommands
from shared.config import AuthSettings, DataSettings, ServiceSettings
from tests.support.certs import DEV_SECRET_FILES

ROOT = Path(__file__).resolve().parents[2]
SECRETS_MOUNT = "/run/secrets/tessera"
TESSERA_SERVICES: dict[str, type[ServiceSettings]] = {
    "auth-migrate": AuthSettings,
    "auth": AuthSettings,
    "data-migrate": DataSettings,
    "data": DataSettings,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def env_names(settings_class: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads, derived from its fields."""
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in settings_class.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def interpolated(value: object) -> str:
    """Compose's `${VAR:-default}` with no VAR set, as on a machine that sets nothing."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def settings_of(service: dict[str, Any], settings_class: type[ServiceSettings], monkeypatch: Any) -> Any:
    for name in env_names(settings_class):
        monkeypatch.delenv(name, raising=False)
    for name, value in service["environment"].items():
        monkeypatch.setenv(name, interpolated(value))
    return settings_class()


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def published(service: dict[str, Any]) -> set[int]:
    """Container ports published to the host (`[ip:]host:container`)."""
    return {int(str(mapping).rsplit(":", 1)[1]) for mapping in service.get("ports", [])}


def test_the_stack_has_postgres_16_migrations_and_both_services(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", "auth-migrate", "data-migrate", "auth", "data"}
    assert str(services["postgres"]["image"]).startswith("postgres:16")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


@pytest.mark.parametrize("name", sorted(TESSERA_SERVICES))
def test_every_env_name_is_one_the_settings_read(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_class = TESSERA_SERVICES[name]
    unknown = set(services[name]["environment"]) - env_names(settings_class)
    assert not unknown, f"{name} sets env names {settings_class.__name__} never reads: {sorted(unknown)}"
    # And the values form a production configuration the settings accept (nothing insecure left).
    settings = settings_of(services[name], settings_class, monkeypatch)
    assert settings.is_production
    assert settings.database_url.startswith("postgresql+asyncpg://")


@pytest.mark.parametrize("name", sorted(TESSERA_SERVICES))
def test_mounted_secret_files_are_the_ones_make_up_creates(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mounts = services[name]["volumes"]
    assert [(m["source"], m["target"], m["read_only"]) for m in mounts] == [
        ("./deploy/secrets", SECRETS_MOUNT, True)
    ]
    settings = settings_of(services[name], TESSERA_SERVICES[name], monkeypatch)
    files = [value for value in settings.model_dump().values() if isinstance(value, Path)]
    assert files, "a production service mounts TLS files and keys"
    for file in files:
        assert file.parent == Path(SECRETS_MOUNT)
        assert file.name in DEV_SECRET_FILES, f"{file} is not created by scripts/dev-secrets"


def test_migrations_run_once_after_postgres_and_before_the_services(services: dict[str, Any]) -> None:
    for service, migration in (("auth", "auth-migrate"), ("data", "data-migrate")):
        assert services[migration]["command"] == ["migrate"]
        assert services[migration]["restart"] == "no"
        assert services[migration]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert services[migration]["build"] == services[service]["build"]
        assert services[service]["command"] == ["serve"]
        depends_on = services[service]["depends_on"]
        assert depends_on["postgres"] == {"condition": "service_healthy"}
        assert depends_on[migration] == {"condition": "service_completed_successfully"}
    # Tokens are verified with the auth service's published keys: the data service waits for it.
    assert services["data"]["depends_on"]["auth"] == {"condition": "service_healthy"}


def test_each_service_gets_its_own_database_created_by_the_init_script(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    mount = next(v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v)
    init_sql = (ROOT / mount.split(":")[0]).read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+);", init_sql))
    databases = {
        settings_of(services[name], TESSERA_SERVICES[name], monkeypatch).database_url.rsplit("/", 1)[1]
        for name in ("auth", "data")
    }
    assert databases == created
    assert len(databases) == 2


@pytest.mark.parametrize("name", ["auth", "data"])
def test_health_checks_ask_grpc_health_over_mtls_on_the_listening_port(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(services[name], TESSERA_SERVICES[name], monkeypatch)
    command = services[name]["healthcheck"]["test"]
    assert command[:4] == ["CMD", "python", "-m", "shared.healthcheck"]
    args = healthcheck.parser().parse_args(command[4:])
    assert port_of(args.address) == port_of(settings.listen)
    assert args.tls_ca_file == settings.tls_client_ca_file
    assert args.tls_cert_file.name in DEV_SECRET_FILES
    assert args.tls_key_file.name in DEV_SECRET_FILES


@pytest.mark.parametrize("name", ["auth", "data"])
def test_grpc_and_metrics_ports_are_published(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(services[name], TESSERA_SERVICES[name], monkeypatch)
    assert published(services[name]) == {port_of(settings.listen), settings.metrics_port}


def test_the_data_service_reaches_auth_by_its_compose_name_and_port(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = settings_of(services["data"], DataSettings, monkeypatch)
    auth = settings_of(services["auth"], AuthSettings, monkeypatch)
    host, port = data.auth_target.rsplit(":", 1)
    assert host == "auth"
    assert int(port) == port_of(auth.listen)
    assert (data.issuer, data.audience) == (auth.issuer, auth.audience)


# --- Dockerfile -------------------------------------------------------------------------------------


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions per stage name, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    logical = re.sub(
        r"\\\n\s*", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in logical.splitlines():
        if not line.strip():
            continue
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            parts = arguments.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else f"stage{len(stages)}"
            current = stages.setdefault(name, [])
        current.append((instruction.upper(), arguments.strip()))
    return stages


def instructions(stage: list[tuple[str, str]], kind: str) -> list[str]:
    return [arguments for instruction, arguments in stage if instruction == kind]


def console_scripts() -> dict[str, str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return dict(pyproject["project"]["scripts"])


def test_each_console_script_has_an_image_whose_entrypoint_is_that_script() -> None:
    stages = dockerfile_stages()
    assert set(console_scripts()) == {"tessera-auth", "tessera-data"}
    for script in console_scripts():
        stage = stages[script.removeprefix("tessera-")]
        assert instructions(stage, "FROM") == ["runtime AS " + script.removeprefix("tessera-")]
        assert [json.loads(e) for e in instructions(stage, "ENTRYPOINT")] == [[script]]
        assert [json.loads(c) for c in instructions(stage, "CMD")] == [["serve"]]


def test_compose_builds_the_image_of_each_service_and_runs_commands_the_cli_knows(
    services: dict[str, Any],
) -> None:
    stages = dockerfile_stages()
    parser, _ = subcommands("check")
    for name in TESSERA_SERVICES:
        build = services[name]["build"]
        assert build["context"] == "."
        target = build["target"]
        assert target in stages
        assert name.startswith(target)
        parser.parse_args(services[name]["command"])


def test_the_runtime_image_runs_unprivileged_without_build_tools() -> None:
    stages = dockerfile_stages()
    assert "build-essential" in " ".join(instructions(stages["builder"], "RUN"))
    for name in ("runtime", "auth", "data"):
        runs = " ".join(instructions(stages[name], "RUN"))
        assert not re.search(r"build-essential|gcc|g\+\+|\bmake\b|apt-get install", runs), name
    runtime = stages["runtime"]
    users = instructions(runtime, "USER")
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    # Only the finished virtualenv crosses from the builder.
    copies = instructions(runtime, "COPY")
    assert copies == ["--from=builder /opt/tessera /opt/tessera"]
    env = " ".join(instructions(runtime, "ENV"))
    assert "TESSERA_ENV=production" in env


def test_make_up_writes_the_secrets_and_starts_compose() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nup:", 1)[1].split("\n\n", 1)[0]
    commands = [shlex.split(line.strip()) for line in recipe.splitlines()[1:]]
    assert ["$(BIN)/python", "scripts/dev-secrets", ">/dev/null"] in commands
    assert ["docker", "compose", "up", "--build"] in commands
