"""``orderbridge processing|review|payments``: the same use cases as the API, from the shell
(run in a thread: each command runs its own event loop, as it does from a terminal)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from orderbridge.cli.main import main
from orderbridge.clock import FrozenClock
from orderbridge.settings import Settings
from tests.processing.conftest import ProcessingApi, checkout_order
from tests.processing.test_screening_and_review import LOW_THRESHOLDS

pytestmark = pytest.mark.timeout(60)


class Cli:
    def __init__(self, settings: Settings, store_id: str) -> None:
        self.store_id = store_id
        self.env = {
            "ORDERBRIDGE_DATABASE_URL": settings.database_url or "",
            "ORDERBRIDGE_DATA_DIR": str(settings.data_dir),
            "ORDERBRIDGE_SECRET_KEYS": "test-key",
            "ORDERBRIDGE_WORKER_MODE": "off",
        }

    async def __call__(self, *args: str, ok: bool = True) -> Result:
        runner = CliRunner()
        result = await asyncio.to_thread(
            runner.invoke, main, [*args, "--store", self.store_id], env=self.env
        )
        if ok:
            assert result.exit_code == 0, result.output
        return result

    async def json(self, *args: str) -> Any:
        return json.loads((await self(*args, "--json")).output)


def catch_up(clock: FrozenClock) -> None:
    """The commands run on the system clock: bring the test's clock to it, so that the jobs
    they enqueued are due."""
    behind = (datetime.now(UTC) - clock.now()).total_seconds()
    clock.advance(seconds=max(0.0, behind) + 1)


@pytest.fixture
def cli(settings: Settings, processing: ProcessingApi) -> Cli:
    return Cli(settings, processing.store_id)


async def test_configuration_is_shown_and_set_from_a_file(
    cli: Cli, processing: ProcessingApi, tmp_path: Path
) -> None:
    shown = await cli.json("processing", "show")
    assert (shown["version"], shown["config"]["fraud"]["on_review_deadline"]) == (0, "reject")

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"fraud": {"on_review_deadline": "approve"}}))
    assert "saved as version 1" in (await cli("processing", "set", "--file", str(config))).output
    assert (
        "unchanged, still version 1"
        in (await cli("processing", "set", "--file", str(config))).output
    )
    api_view = (await processing.get_config()).json()
    assert (api_view["version"], api_view["config"]["fraud"]["on_review_deadline"]) == (
        1,
        "approve",
    )

    config.write_text(json.dumps({"fraud": {"rules": {"review_score": 0}}}))
    refused = await cli("processing", "set", "--file", str(config), ok=False)
    assert refused.exit_code == 1
    assert "fraud.rules.review_score" in refused.output
    config.write_text("[1, 2]")
    assert (await cli("processing", "set", "--file", str(config), ok=False)).exit_code == 1


async def test_reviews_are_listed_and_decided_and_transfers_confirmed(
    cli: Cli, processing: ProcessingApi, clock: FrozenClock
) -> None:
    await processing.configure(LOW_THRESHOLDS)
    approve = await processing.processed(checkout_order("pay_ok_cli_approve"))
    reject = await processing.processed(checkout_order("pay_ok_cli_reject"))

    queue = await cli.json("review", "list")
    assert sorted(r["order_id"] for r in queue) == sorted([approve["id"], reject["id"]])
    assert approve["id"] in (await cli("review", "list")).output

    decided = await cli.json("review", "approve", approve["id"], "--note", "regular")
    assert decided["review_status"] == "approved"
    await cli("review", "reject", reject["id"])
    catch_up(clock)
    await processing.api.run_jobs()
    assert (await processing.api.get(approve["id"]))["status"] == "READY"
    assert (await processing.api.get(reject["id"]))["cancellation"]["reason"] == "fraud_detected"
    [decision] = [e for e in await processing.timeline(approve["id"]) if e["step"] == "review"]
    assert decision["actor_id"].startswith("cli:")
    assert "no order is waiting" in (await cli("review", "list")).output
    again = await cli("review", "reject", approve["id"], ok=False)
    assert "order_not_in_review" in again.output

    await processing.configure({})
    transfer = await processing.processed(checkout_order("BT-CLI", method="bank_transfer"))
    total = transfer["totals"]["total"]
    confirm = ("payments", "confirm", transfer["id"], "--amount", total, "--reference", "SEPA-1")
    confirmed = await cli.json(*confirm)
    assert (confirmed["amount"], confirmed["created"]) == (total, True)
    repeat = await cli(*confirm)
    assert "already confirmed" in repeat.output
    bad = await cli("payments", "confirm", transfer["id"], "--amount", "x", ok=False)
    assert bad.exit_code == 2
    catch_up(clock)
    await processing.api.run_jobs()
    assert (await processing.api.get(transfer["id"]))["status"] == "READY"
