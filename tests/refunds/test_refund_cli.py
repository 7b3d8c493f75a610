"""``orderbridge refunds create|list``: the same use case as the API, from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orderbridge.cli.main import main
from tests.refunds.conftest import RefundApi


@pytest.fixture
async def completed(refunds: RefundApi) -> dict[str, Any]:
    return await refunds.completed_order()


def test_refunds_create_and_list_from_the_command_line(
    completed: dict[str, Any], database_url: str, tmp_path: Path
) -> None:
    runner = CliRunner(
        env={
            "ORDERBRIDGE_DATABASE_URL": database_url,
            "ORDERBRIDGE_DATA_DIR": str(tmp_path),
            "ORDERBRIDGE_WORKER_MODE": "off",
        }
    )
    store, order_id = completed["store_id"], completed["id"]

    def cli(*args: str) -> Any:
        return runner.invoke(main, ["refunds", *args, "--store", store])

    made = cli("create", order_id, "--item", "1:2", "--shipping", "--reason", "broken", "--json")
    assert made.exit_code == 0, made.output
    refund = json.loads(made.output)
    assert (refund["amount"], refund["status"], refund["shipping"]) == ("35.87", "pending", True)

    again = cli("create", order_id, "--amount", "99.00")
    assert again.exit_code != 0
    assert "refund_exceeds_captured" in again.output
    bad = cli("create", order_id, "--amount", "1.00", "--shipping")
    assert bad.exit_code == 2 and "not both" in bad.output

    listed = cli("list", order_id)
    assert listed.exit_code == 0, listed.output
    assert listed.output.split()[:4] == [refund["id"], "refund", "pending", "35.87"]
