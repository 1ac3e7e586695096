"""The README's walkthrough, run as written against both real services, with every answer checked.

The shell blocks of the "Walkthrough" section are taken from README.md itself; only the addresses (ports
are ephemeral here) and the path of the virtualenv are substituted, and `bcurl` is wrapped so that each
answer is kept for the checks below. If the README changes, this test runs the new text.

It runs twice: with buf curl as written, and with every call made by the real grpcurl instead (the README
says grpcurl works the same way). The grpcurl `bcurl` turns buf curl's arguments into grpcurl's and
answers with the JSON names buf curl uses (grpcurl prints the proto field names, `access_token` for
`accessToken`), so the blocks' `jq` lines and the checks below are the same for both. ~15 s per run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from data_service.app import create_server as create_data_server
from data_service.migrations import SCRIPT_LOCATION as DATA_MIGRATIONS
from shared.config import DataSettings
from shared.migrations import upgrade_to_head
from tests.support.auth_server import running_auth_server
from tests.support.databases import fresh_database
from tests.support.grpcurl import grpcurl_path
from tests.support.servers import running

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent
BCURL_DEFINITION = 'bcurl() { .venv/bin/buf curl --protocol grpc --http2-prior-knowledge "$@"; }'
# Same command, but each call's arguments, answer and error go to $CALLS/<n>.* as well.
RECORDING_BCURL = (
    # The counter lives in a file: calls inside $(...) run in subshells.
    'bcurl() { local n=$(( $(cat "$CALLS/count" 2>/dev/null || echo 0) + 1 )); '
    'echo "$n" > "$CALLS/count"; '
    'printf "%s\\n" "$*" > "$CALLS/$n.args"; '
    '.venv/bin/buf curl --protocol grpc --http2-prior-knowledge "$@" '
    '2> "$CALLS/$n.err" | tee "$CALLS/$n.out"; '
    'return "${PIPESTATUS[0]}"; }'
)

# The same calls made by grpcurl: `--list-methods` becomes `list` per service, `http://HOST/SERVICE/METHOD`
# becomes `HOST SERVICE/METHOD`; errors come as google.rpc.Status JSON (`-format-error`).
RECORDING_GRPCURL = r"""bcurl() {
  local n=$(( $(cat "$CALLS/count" 2>/dev/null || echo 0) + 1 ))
  echo "$n" > "$CALLS/count"
  printf "%s\n" "$*" > "$CALLS/$n.args"
  local flags=(-plaintext -format-error) target="" list=""
  while (( $# )); do
    case "$1" in
      -H|-d) flags+=("$1" "$2"); shift 2;;
      --list-methods) list=1; shift;;
      *) target="${1#http://}"; shift;;
    esac
  done
  local host="${target%%/*}"
  if [ -n "$list" ]; then
    local services
    services=$(__GRPCURL__ "${flags[@]}" "$host" list 2> "$CALLS/$n.err")
    for service in $services; do
      __GRPCURL__ "${flags[@]}" "$host" list "$service" 2>> "$CALLS/$n.err"
    done | sed -E 's|\.([^.]+)$|/\1|' | tee "$CALLS/$n.out"
    return "${PIPESTATUS[0]}"
  fi
  if __GRPCURL__ "${flags[@]}" "$host" "${target#*/}" > "$CALLS/$n.raw" 2> "$CALLS/$n.err"; then
    jq 'walk(if type == "object" then with_entries(.key |= gsub("_(?<c>[a-z0-9])"; .c | ascii_upcase))
             else . end)' "$CALLS/$n.raw" | tee "$CALLS/$n.out"
  else
    local code=$?
    : > "$CALLS/$n.out"
    return "$code"
  fi
}"""


def walkthrough_script(client: str = "buf curl") -> str:
    text = README.read_text()
    section = text.split("## Walkthrough", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "the README lost its walkthrough"
    script = "\n".join(blocks)
    assert BCURL_DEFINITION in script, (
        "the walkthrough's bcurl definition changed; update this test's wrapper"
    )
    if client == "grpcurl":
        return script.replace(BCURL_DEFINITION, RECORDING_GRPCURL)
    return script.replace(BCURL_DEFINITION, RECORDING_BCURL)


@dataclass
class Call:
    method: str
    text: str
    error: str

    @property
    def answer(self) -> dict[str, Any] | None:
        """The JSON answer of a successful call; None for a failed one."""
        return json.loads(self.text) if self.text.strip() and not self.error.strip() else None

    @property
    def failure(self) -> tuple[str, str]:
        """(code, ErrorInfo.reason) of a failed call, from buf curl's or grpcurl's error JSON."""
        error = json.loads(self.error)
        if isinstance(error["code"], int):  # grpcurl: google.rpc.Status with its details spelled out
            code = next(c for c in grpc.StatusCode if c.value[0] == error["code"]).name.lower()
            for detail in error.get("details", []):
                if detail["@type"].endswith("/google.rpc.ErrorInfo"):
                    return code, detail["reason"]
        for detail in error.get("details", []):
            if detail["type"] == "google.rpc.ErrorInfo":
                raw = base64.b64decode(detail["value"] + "=" * (-len(detail["value"]) % 4))
                return error["code"], error_details_pb2.ErrorInfo.FromString(raw).reason
        raise AssertionError(f"no ErrorInfo in {self.error}")


def recorded_calls(directory: Path) -> list[Call]:
    calls = []
    for args_file in sorted(directory.glob("*.args"), key=lambda p: int(p.stem)):
        args = args_file.read_text().strip()
        method = args.split()[-1].rsplit("/", 1)[-1]
        text = (directory / f"{args_file.stem}.out").read_text()
        calls.append(Call(method, text, (directory / f"{args_file.stem}.err").read_text()))
    return calls


@pytest.mark.parametrize("client", ["buf curl", "grpcurl"])
async def test_the_readme_walkthrough_works_as_written(backend: str, client: str, tmp_path: Path) -> None:
    script = walkthrough_script(client)
    async with (
        fresh_database(backend, tmp_path, "auth") as auth_url,
        fresh_database(backend, tmp_path, "data") as data_url,
        running_auth_server(auth_url, tmp_path) as auth,
    ):
        await upgrade_to_head(DATA_MIGRATIONS, data_url)
        data = await create_data_server(
            DataSettings(database_url=data_url, metrics_port=0, auth_target=auth.target)
        )
        async with running(data) as data_port:
            script = (
                script.replace("127.0.0.1:50051", auth.target)
                .replace("127.0.0.1:50052", f"127.0.0.1:{data_port}")
                .replace(".venv/bin/", f"{BIN}/")
            )
            if client == "grpcurl":
                script = script.replace("__GRPCURL__", grpcurl_path())
            calls_dir = tmp_path / "calls"
            calls_dir.mkdir()
            env = {
                **os.environ,
                "CALLS": str(calls_dir),
                # The CLI verbs (create-user, create-client) work on the running service's database.
                "AUTH_DATABASE_URL": auth_url,
                "AUTH_SIGNING_KEY_FILE": str(auth.key_file),
                "AUTH_LOG_LEVEL": "WARNING",
            }
            process = await asyncio.create_subprocess_exec(
                "bash",
                "-euo",
                "pipefail",
                "-c",
                script,
                cwd=tmp_path,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(process.communicate(), timeout=180)
            assert process.returncode == 0, output.decode()

    calls = recorded_calls(calls_dir)
    if client == "grpcurl":
        # The answers really came from grpcurl: it spells fields as in the .proto.
        assert any('"access_token"' in raw.read_text() for raw in calls_dir.glob("*.raw"))
    by_method: dict[str, list[Call]] = {}
    for call in calls:
        by_method.setdefault(call.method, []).append(call)

    listed_methods = calls[0].text.split()
    assert "tessera.inventory.v1.InventoryService/CreateOrder" in listed_methods
    assert "grpc.reflection.v1.ServerReflection/ServerReflectionInfo" in listed_methods
    assert by_method["Check"][0].answer == {"status": "SERVING"}

    [registered] = by_method["Register"]
    assert registered.answer is not None
    assert registered.answer["email"] == "ann@example.com"
    assert registered.answer["roles"] == ["customer"]

    login, refreshed, reused, staff_login, second_login, client_grant = by_method["Token"]
    assert login.answer is not None
    assert login.answer["tokenType"] == "Bearer"
    assert refreshed.answer is not None
    assert refreshed.answer["scope"] == "catalog.read"
    assert reused.answer is None
    assert reused.failure == ("unauthenticated", "invalid_grant")
    assert client_grant.answer is not None
    assert "refreshToken" not in client_grant.answer
    assert by_method["GetCurrentUser"][0].answer == {**registered.answer}
    assert {key["alg"] for key in by_method["GetJwks"][0].answer["keys"]} == {"EdDSA"}

    [created] = by_method["CreateProduct"]
    assert created.answer is not None
    assert (created.answer["sku"], created.answer["stockOnHand"]) == ("TEA-GREEN", "20")
    [listing] = by_method["ListProducts"]
    assert [p["id"] for p in listing.answer["products"]] == [created.answer["id"]]

    first_order, second_order = by_method["CreateOrder"]
    assert first_order.answer is not None
    assert first_order.answer["status"] == "ORDER_STATUS_PLACED"
    assert first_order.answer["total"] == {"currencyCode": "EUR", "minorUnits": "1350"}
    [orders] = by_method["ListOrders"]
    assert [o["id"] for o in orders.answer["orders"]] == [first_order.answer["id"]]
    [cancelled] = by_method["CancelOrder"]
    assert cancelled.answer is not None
    assert cancelled.answer["status"] == "ORDER_STATUS_CANCELLED"

    [adjusted] = by_method["AdjustStock"]
    assert adjusted.answer is not None
    assert adjusted.answer["product"]["stockOnHand"] == "25"
    [ledger] = by_method["ListStockMovements"]
    reasons = [m["reason"] for m in ledger.answer["movements"]]
    assert reasons == [
        "STOCK_MOVEMENT_REASON_RESTOCK",
        "STOCK_MOVEMENT_REASON_CANCELLATION",
        "STOCK_MOVEMENT_REASON_ORDER",
        "STOCK_MOVEMENT_REASON_RESTOCK",
    ]
    assert second_order.answer is not None
    assert second_order.answer["status"] == "ORDER_STATUS_PLACED"

    staff_report, customer_report = by_method["GetSalesReport"]
    assert staff_report.answer is not None
    [row] = staff_report.answer["rows"]
    assert (row["sku"], row["unitsSold"], row["revenue"]["minorUnits"]) == ("TEA-GREEN", "2", "900")
    assert customer_report.answer is None
    assert customer_report.failure == ("permission_denied", "insufficient_scope")
    assert staff_login.answer is not None
    assert second_login.answer is not None
