"""``orderbridge connections …`` and ``orderbridge push …``: the same use cases as the API,
from the shell."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orderbridge.cli.main import main
from tests.conftest import Api


@pytest.fixture
async def ready(api: Api, order_payload: dict[str, Any]) -> dict[str, Any]:
    return await api.ready_order(order_payload)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connections_and_push_from_the_command_line(
    ready: dict[str, Any], database_url: str, tmp_path: Path
) -> None:
    runner = CliRunner(
        env={
            "ORDERBRIDGE_DATABASE_URL": database_url,
            "ORDERBRIDGE_DATA_DIR": str(tmp_path),
            "ORDERBRIDGE_WORKER_MODE": "off",
            "ORDERBRIDGE_SECRET_KEYS": "test-key",
            "ORDERBRIDGE_OUTBOUND_ALLOW_PRIVATE": "true",
        }
    )
    store, order_id = ready["store_id"], ready["id"]
    url = f"http://127.0.0.1:{closed_port()}/orders"

    def cli(*args: str) -> Any:
        return runner.invoke(main, [*args, "--store", store])

    made = cli(
        "connections", "set", "--platform", "custom", "--url", url, "--generate-secret",
        "--failure-policy", "cancel", "--retry-delays", "30,120", "--json",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    connection = json.loads(made.output)
    secret = connection["signing_secret"]
    assert secret.startswith("whsec_")
    assert (connection["failure_policy"], connection["retry_delays"]) == ("cancel", [30, 120])

    shown = cli("connections", "show")
    assert shown.exit_code == 0, shown.output
    assert secret not in shown.output
    assert "signing_secret" in shown.output and "cancel" in shown.output

    tested = cli("connections", "test")
    assert tested.exit_code == 1
    assert "FAILED" in tested.output

    refused = cli("connections", "set", "--platform", "custom", "--url", "ftp://x/")
    assert refused.exit_code != 0
    assert "validation_error: base_url" in refused.output

    retried = runner.invoke(main, ["push", "retry", order_id, "--store", store, "--json"])
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.output)["push_status"] == "pending"
    again = runner.invoke(main, ["push", "retry", order_id, "--store", store])
    assert again.exit_code != 0 and "push_in_progress" in again.output

    log = runner.invoke(main, ["push", "log", order_id, "--store", store])
    assert log.exit_code == 0, log.output
    assert log.output.split()[:4] == [order_id, "READY", "push:", "pending"]

    deleted = cli("connections", "delete")
    assert deleted.exit_code == 0, deleted.output
    gone = cli("connections", "show")
    assert gone.exit_code != 0 and "no_connection" in gone.output
