"""An integration written only from the contract, against the real service.

The service runs as ``orderbridge serve`` in a subprocess with its embedded worker; stores
and keys come from the CLI; orders are submitted over HTTP with the checkout key; the
merchant side is ``examples/merchant_poller.py``. An independent feed reader in this module
checks what the merchant sees: every order's ``order.received``, ``order.ready``,
``order.accepted`` and ``order.completed`` exactly once, in that order. Runs on SQLite and
on PostgreSQL."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from orderbridge.demo import sample_order
from tests.support import databases

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
POLLER_PATH = REPO / "examples" / "merchant_poller.py"
BATCH = 10  # orders per batch; the test submits two
LIFECYCLE = ["order.received", "order.ready", "order.accepted", "order.completed"]
EVENT_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{16}")  # Crockford base32, upper case
WAIT_SECONDS = 30.0


def _orderbridge_executable() -> str:
    found = shutil.which("orderbridge", path=str(Path(sys.executable).parent)) or shutil.which(
        "orderbridge"
    )
    if found is None:
        pytest.fail("the orderbridge command is not installed next to this Python")
    return found


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _wait_until(service: Service, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {WAIT_SECONDS:.0f} s waiting for {what}; server log:\n"
                + service.log_tail()
            )
        time.sleep(0.1)


# ---- the service under test --------------------------------------------------------------


@dataclass
class Service:
    base_url: str
    env: dict[str, str]
    log_path: Path

    def cli(self, *commands: list[str]) -> list[Any]:
        """Run ``orderbridge`` commands against the service's database, all at once (each
        start costs seconds of imports), and parse their ``--json`` output."""
        processes = [
            subprocess.Popen(
                [_orderbridge_executable(), *command, "--json"],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for command in commands
        ]
        outputs = []
        try:
            for command, process in zip(commands, processes, strict=True):
                stdout, stderr = process.communicate(timeout=60)
                assert process.returncode == 0, f"orderbridge {' '.join(command)}: {stderr}"
                outputs.append(json.loads(stdout))
        finally:
            for process in processes:
                _stop(process)
        return outputs

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


def _service_environment(data_dir: Path, database_url: str) -> dict[str, str]:
    # Only our settings reach the service, whatever the developer's shell exports.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERBRIDGE_")}
    env.update(
        ORDERBRIDGE_DATA_DIR=str(data_dir),
        ORDERBRIDGE_DATABASE_URL=database_url,
        ORDERBRIDGE_HOST="127.0.0.1",
        ORDERBRIDGE_WORKER_MODE="embedded",
        # Jobs enqueued by a request wake the embedded worker at once; the poll interval
        # only bounds how late it notices anything else.
        ORDERBRIDGE_WORKER_POLL_INTERVAL="0.2",
        # Every process sharing the database needs the same key for secrets at rest.
        ORDERBRIDGE_SECRET_KEYS=secrets.token_urlsafe(32),
        # Revocation must show at once, not after the key cache expires.
        ORDERBRIDGE_AUTH_CACHE_SECONDS="0",
    )
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _became_healthy(process: subprocess.Popen[bytes], base_url: str) -> bool:
    """True once /healthz answers; False if the process exited (e.g. the port was taken)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while process.poll() is None:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the server at {base_url} did not become healthy")
        time.sleep(0.1)
    return False


@contextmanager
def _running_server(env: dict[str, str], log_path: Path) -> Iterator[str]:
    # Another process may grab the free port before the server binds it: try a few.
    for _ in range(3):
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [_orderbridge_executable(), "serve", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            if _became_healthy(process, base_url):
                yield base_url
                return
        finally:
            _stop(process)
    pytest.fail(f"the server did not start:\n{log_path.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp(f"e2e-{request.param}")
    database_url = ""  # empty: SQLite in the data directory
    if request.param == "postgresql":
        databases.require_postgres()
        database_url = databases.create_postgres_database()
    env = _service_environment(directory / "data", database_url)
    try:
        if database_url:
            # `serve` upgrades SQLite by itself; PostgreSQL is upgraded explicitly.
            upgrade = subprocess.run(
                [_orderbridge_executable(), "db", "upgrade"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert upgrade.returncode == 0, upgrade.stderr
        log_path = directory / "server.log"
        with _running_server(env, log_path) as base_url:
            yield Service(base_url, env, log_path)
    finally:
        if database_url:
            databases.drop_postgres_database(database_url)


# ---- what an integration does --------------------------------------------------------------


@dataclass
class StoreKeys:
    store_id: str
    merchant_key: str
    merchant_key_id: str
    checkout_key: str


@dataclass
class Tenants:
    shop: StoreKeys  # the merchant poller's store
    other: StoreKeys  # another store, whose keys must not reach the shop


@pytest.fixture(scope="module")
def tenants(service: Service) -> Tenants:
    """Two stores with a merchant and a checkout key each, made with the CLI as an operator
    would. The tests use them apart: one the shop, the other the other store."""
    stores = service.cli(
        *(
            ["stores", "create", "--name", name, "--currency", "EUR", "--country", "FR"]
            for name in ("E2E Shop", "E2E Other Shop")
        )
    )
    assert all(re.fullmatch(r"\d+", store["id"]) for store in stores), stores
    keys = service.cli(
        *(
            ["keys", "create", "--store", store["id"], "--kind", kind]
            for store in stores
            for kind in ("merchant", "checkout")
        )
    )
    merchant_keys = [key for key in keys if key["kind"] == "merchant"]
    assert all(key["key"].startswith("GL.") for key in merchant_keys), "merchant keys: GL."
    shop, other = (
        StoreKeys(store["id"], merchant["key"], merchant["id"], checkout["key"])
        for store, merchant, checkout in zip(stores, keys[::2], keys[1::2], strict=True)
    )
    return Tenants(shop, other)


@dataclass
class Submitted:
    order_id: str
    idempotency_key: str
    payload: dict[str, Any]


def _submit(
    checkout: httpx.Client, store_id: str, payload: dict[str, Any], key: str
) -> httpx.Response:
    return checkout.post(
        f"/v2/checkout/{store_id}/orders", json=payload, headers={"Idempotency-Key": key}
    )


def _submit_orders(
    checkout: httpx.Client, store_id: str, rng: random.Random, count: int
) -> list[Submitted]:
    submitted = []
    for _ in range(count):
        payload, key = sample_order(rng), f"e2e-{uuid.uuid4().hex}"
        response = _submit(checkout, store_id, payload, key)
        assert response.status_code == 201, response.text
        order = response.json()
        assert order["status"] == "RECEIVED"
        assert re.fullmatch(rf"{store_id}-\d+", order["id"]), order["id"]
        submitted.append(Submitted(order["id"], key, payload))
    return submitted


class FeedReader:
    """Reads a store's whole feed as the contract prescribes: the first call with an empty
    ``after_event_id``, then always ``links.next``, including after an empty page."""

    def __init__(self, merchant: httpx.Client, store_id: str) -> None:
        self.merchant = merchant
        self.url = f"/v2/events/{store_id}?after_event_id="
        self.events: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        while True:
            response = self.merchant.get(self.url)
            assert response.status_code == 200, response.text
            page = response.json()
            following = httpx.URL(page["links"]["next"])
            assert following.is_absolute_url, "links are absolute URLs"
            if not page["events"]:
                # An empty page's `next` stays on the cursor, so a poller can keep calling it.
                cursor = httpx.URL(self.url).params["after_event_id"]
                assert following.params["after_event_id"] == cursor, page["links"]
            self.url = str(following)
            new += page["events"]
            if not page["events"]:
                self.events += new
                return new

    def names_by_order(self) -> dict[str, list[str]]:
        names: dict[str, list[str]] = defaultdict(list)
        for event in self.events:
            names[event["order_id"]].append(event["event_name"])
        return names

    def has_for_all(self, event_name: str, orders: list[Submitted]) -> bool:
        self.drain()
        names = self.names_by_order()
        return all(event_name in names[order.order_id] for order in orders)


def _load_poller() -> ModuleType:
    """examples/ is not a package: load the example from its file, as a reader would run it."""
    spec = importlib.util.spec_from_file_location("merchant_poller", POLLER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _run_poller_once(service: Service, store_id: str, key: str, state: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(POLLER_PATH), "--base-url", service.base_url, "--store", store_id]
        + ["--state", str(state), "--once"],
        env={**os.environ, "ORDERBRIDGE_MERCHANT_KEY": key},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# ---- the tests ---------------------------------------------------------------------------


def test_merchant_poller_accepts_every_order_and_each_completes_exactly_once(
    service: Service, tenants: Tenants, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = tenants.shop
    rng = random.Random(20250702)
    state = tmp_path / "poller-state.json"
    with (
        httpx.Client(base_url=service.base_url, headers=_bearer(keys.checkout_key)) as checkout,
        httpx.Client(base_url=service.base_url, headers=_bearer(keys.merchant_key)) as merchant,
    ):
        feed = FeedReader(merchant, keys.store_id)
        bad_cursor = merchant.get(f"/v2/events/{keys.store_id}", params={"after_event_id": "x"})
        assert bad_cursor.status_code == 400, bad_cursor.text

        # First batch: the example runs as a process that drains the feed and exits.
        first = _submit_orders(checkout, keys.store_id, rng, BATCH)
        _wait_until(service, lambda: feed.has_for_all("order.ready", first), "1st batch ready")
        _run_poller_once(service, keys.store_id, keys.merchant_key, state)
        _wait_until(service, lambda: feed.has_for_all("order.completed", first), "1st completed")

        # Second batch: the poller, now in this process, resumes from its state file and
        # keeps polling while the orders are processed.
        second = _submit_orders(checkout, keys.store_id, rng, BATCH)
        merchant_poller = _load_poller()
        poller = merchant_poller.MerchantPoller(merchant, keys.store_id, state)
        handled: list[dict[str, Any]] = []

        def second_batch_completed() -> bool:
            handled.extend(poller.poll_once())
            return feed.has_for_all("order.completed", second)

        _wait_until(service, second_batch_completed, "2nd batch completed")
        resumed = sorted(e["order_id"] for e in handled if e["event_name"] == "order.ready")
        assert resumed == sorted(o.order_id for o in second), "resumed after the 1st batch"
        assert {e["event_name"] for e in handled} <= {"order.ready", "order.cancelled"}

        orders = first + second
        given = {o.order_id: poller.state.orders[o.order_id] for o in orders}
        assert {record["status"] for record in given.values()} == {"accepted"}
        externals = {o.order_id: _external(given[o.order_id]) for o in orders}
        assert len({e["order_id"] for e in externals.values()}) == len(orders)

        # The feed: each order's lifecycle exactly once and in order; ids sortable.
        ids = [event["event_id"] for event in feed.events]
        assert all(EVENT_ID.fullmatch(i) for i in ids), ids
        assert ids == sorted(ids) and len(set(ids)) == len(ids), "ids unique, in feed order"
        assert feed.names_by_order() == {o.order_id: LIFECYCLE for o in orders}
        for event in feed.events:
            if event["event_name"] in ("order.accepted", "order.completed"):
                assert event["external"] == externals[event["order_id"]], event

        # Each order: COMPLETED with the external ids the merchant's system gave it.
        for order in orders:
            response = merchant.get(f"/v2/orders/{keys.store_id}/{order.order_id}")
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["id"], body["status"]) == (order.order_id, "COMPLETED")
            assert body["external"] == externals[order.order_id]

        # Accepting again: the same values are answered 200 with the order unchanged,
        # other values are a conflict.
        target = first[0].order_id
        accept_url = f"/v2/orders/{keys.store_id}/{target}/accept"
        same = merchant.post(accept_url, json={"external": externals[target]})
        assert same.status_code == 200, same.text
        assert (same.json()["status"], same.json()["external"]) == ("COMPLETED", externals[target])
        other = {"order_id": "other", "order_number": "OTHER-1"}
        conflict = merchant.post(accept_url, json={"external": other})
        assert conflict.status_code == 409, conflict.text
        assert conflict.headers["content-type"].startswith("application/problem+json")

        # A merchant that lost its cursor (not its orders) replays every order.ready and
        # accepts each order again with the same values, without a single error.
        data = json.loads(state.read_text())
        state.write_text(json.dumps({**data, "after_event_id": ""}))
        with caplog.at_level(logging.INFO, logger="merchant_poller"):
            replayed = merchant_poller.MerchantPoller(merchant, keys.store_id, state).poll_once()
        assert len([e for e in replayed if e["event_name"] == "order.ready"]) == len(orders)
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []

        # A checkout retrying a submission gets the same order back.
        again = _submit(checkout, keys.store_id, first[1].payload, first[1].idempotency_key)
        assert again.status_code in (200, 201), again.text
        assert again.json()["id"] == first[1].order_id

        time.sleep(0.5)  # a few worker polls: anything wrongly enqueued would show now
        assert feed.drain() == [], "replays and repeats write no events"
        unchanged = merchant.get(f"/v2/orders/{keys.store_id}/{target}").json()
        assert unchanged["external"] == externals[target]


def _external(record: dict[str, str]) -> dict[str, str]:
    return {"order_id": record["order_id"], "order_number": record["order_number"]}


def test_keys_reach_only_their_own_store_and_revoked_keys_stop_working(
    service: Service, tenants: Tenants
) -> None:
    other, store = tenants.other, tenants.other.store_id
    with (
        httpx.Client(base_url=service.base_url, headers=_bearer(other.checkout_key)) as checkout,
        httpx.Client(base_url=service.base_url, headers=_bearer(other.merchant_key)) as merchant,
        httpx.Client(
            base_url=service.base_url, headers=_bearer(tenants.shop.merchant_key)
        ) as intruder,
        httpx.Client(base_url=service.base_url) as anonymous,
    ):
        [order] = _submit_orders(checkout, store, random.Random(7), 1)
        own_order = f"/v2/orders/{store}/{order.order_id}"
        assert merchant.get(own_order).status_code == 200

        # Another store's merchant key: 404 everywhere, the same 404 as for an order that
        # does not exist, so it learns nothing.
        for path in (f"/v2/events/{store}?after_event_id=", f"/v2/orders/{store}", own_order):
            response = intruder.get(path)
            assert response.status_code == 404, (path, response.text)
            assert order.order_id not in response.text
        existing = intruder.get(own_order)
        missing = intruder.get(f"/v2/orders/{store}/{store}-999999999")
        assert (existing.status_code, existing.json().get("code")) == (
            missing.status_code,
            missing.json().get("code"),
        )
        accept = intruder.post(
            f"{own_order}/accept", json={"external": {"order_id": "1", "order_number": "1"}}
        )
        assert accept.status_code == 404, accept.text

        # A checkout key only submits orders.
        assert checkout.get(f"/v2/events/{store}").status_code in (403, 404)

        # No key, or an unknown one: 401.
        assert anonymous.get(f"/v2/events/{store}").status_code == 401
        unknown = anonymous.get(f"/v2/events/{store}", headers=_bearer("GL.not-a-key"))
        assert unknown.status_code == 401

        # Revoking a key with the CLI makes it 401 at once (the test server caches nothing).
        feed = f"/v2/events/{store}?after_event_id="
        assert merchant.get(feed).status_code == 200
        service.cli(["keys", "revoke", other.merchant_key_id])
        revoked = merchant.get(feed)
        assert revoked.status_code == 401, revoked.text
