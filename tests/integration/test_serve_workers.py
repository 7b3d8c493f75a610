"""``orderbridge serve --workers N``: N API processes on one port, each with its embedded
worker, all on the one embedded database. Started from a fresh data folder the way an
operator would: the CLI creates the store and keys (the embedded default upgrades itself
for any command), checkout orders go in over HTTP, and every one of them is processed."""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from orderbridge.demo import sample_order
from tests.browser.service import environment, executable, new_secret_keys, running

pytestmark = pytest.mark.timeout(180)


def _cli(env: dict[str, str], *arguments: str) -> dict[str, Any]:
    done = subprocess.run(
        [executable(), *arguments, "--json"], env=env, capture_output=True, check=True, timeout=60
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _server_processes(log: str) -> set[str]:
    """The server processes uvicorn reports started (it also forks a resource tracker)."""
    return {
        line.rsplit("[", 1)[1].rstrip("]")
        for line in log.splitlines()
        if "Started server process" in line
    }


def test_several_api_processes_serve_and_process_every_order(tmp_path: Path) -> None:
    data_dir, secret_keys = tmp_path / "data", new_secret_keys()
    env = environment(data_dir, secret_keys)
    store = _cli(env, "stores", "create", "--name", "Two", "--currency", "EUR", "--country", "DE")
    checkout = _cli(env, "keys", "create", "--store", store["id"], "--kind", "checkout")
    merchant = _cli(env, "keys", "create", "--store", store["id"], "--kind", "merchant")
    rng = random.Random(5)

    with (
        running(data_dir, secret_keys, "--workers", "2") as service,
        httpx.Client(base_url=service.base_url, timeout=30) as client,
    ):
        deadline = time.monotonic() + 60
        while len(_server_processes(service.log_tail())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_server_processes(service.log_tail())) == 2, service.log_tail()
        ids = []
        for number in range(12):
            answer = client.post(
                f"/v2/checkout/{store['id']}/orders",
                json=sample_order(rng),
                headers={
                    "Authorization": f"Bearer {checkout['key']}",
                    "Idempotency-Key": f"order-{number}",
                },
            )
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
        deadline = time.monotonic() + 60
        statuses: list[str] = []
        while time.monotonic() < deadline:
            statuses = [
                client.get(
                    f"/v2/orders/{store['id']}/{order_id}",
                    headers={"Authorization": f"Bearer {merchant['key']}"},
                ).json()["status"]
                for order_id in ids
            ]
            if "RECEIVED" not in statuses:
                break
            time.sleep(0.2)
        assert statuses and "RECEIVED" not in statuses, service.log_tail()
