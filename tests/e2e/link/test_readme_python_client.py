"""The README's Python client example, run as written against both services (only the ports differ)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.link_servers import AuthServerHandle, StartData

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_example() -> str:
    section = README.read_text().split("\n## Python client\n", 1)[1]
    return section.split("<<'PY'\n", 1)[1].split("\nPY\n", 1)[0]


async def test_the_readme_python_client_example_runs_against_both_services(
    auth_server: AuthServerHandle, start_data_server: StartData, capsys: pytest.CaptureFixture[str]
) -> None:
    await auth_server.start()
    data = await start_data_server(auth_server.target)
    code = readme_example()
    assert code.endswith("asyncio.run(main())")
    code = code.replace("127.0.0.1:50051", auth_server.target).replace("127.0.0.1:50052", data.target)
    namespace: dict[str, Any] = {}

    # `asyncio.run` cannot nest in the test's loop: define everything, then await `main()` here.
    exec(code.removesuffix("asyncio.run(main())"), namespace)  # noqa: S102 - the README's own example
    await namespace["main"]()
    await namespace["main"]()  # a second run finds the user registered

    printed = capsys.readouterr().out
    assert printed.count("logged in as ada@example.com with roles ['customer']") == 2
    assert printed.count("0 products on the first page") == 2
    assert printed.count("NotFoundError") == 2
