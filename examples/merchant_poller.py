"""A merchant integration of the orderbridge Order API v2, written only from the contract.

It polls the store's event feed and, for every ``order.ready`` event, fetches the order,
creates it in the merchant's own system and accepts it with the external id and number that
system gave it. orderbridge then completes the order (``order.accepted``, then
``order.completed`` appear in the feed).

Run it against a running service::

    python examples/merchant_poller.py --base-url http://127.0.0.1:8000 \\
        --store 310678 --key GL.xxxx --once

``--once`` drains the feed and exits; without it the poller keeps polling every
``--interval`` seconds until interrupted. The key can also come from the environment
(``ORDERBRIDGE_MERCHANT_KEY``), which keeps it out of the process list.

What an integrator should take from it:

* **Follow ``links.next``.** The feed is gap-free only for a consumer that follows
  ``links.next`` (or, equivalently, resumes after the last event it handled). Never build
  cursors from timestamps. The very first call is ``after_event_id=`` (empty: from the
  beginning); on an empty page ``links.next`` stays on the same cursor, so it can be called
  again and again.
* **Remember the cursor after each handled event**, in durable storage (here a small JSON
  file written atomically). After a crash the poller resumes where it stopped; at most the
  event it was handling is seen twice, which is why handling must be idempotent.
* **Make "create the order in my system" idempotent**, keyed by the orderbridge order id.
  Then a replayed ``order.ready`` re-sends the same external id and number, and the accept
  call answers ``200`` with the order unchanged. A ``409`` means the order cannot be
  accepted (cancelled in the meantime, or accepted before with other values); it is
  logged and skipped, never retried in a loop.

The "merchant's system" here is a stand-in: it hands out increasing order numbers and
keeps them in the same state file. Only httpx and the standard library are used.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

log = logging.getLogger("merchant_poller")

# The events this integration acts on. The feed repeats the filter in its links.
SUBSCRIBED_EVENTS = ("order.ready", "order.cancelled")
PAGE_SIZE = 100  # the contract's maximum: fewer round trips while catching up
FIRST_NUMBER = 1001


class PollerError(Exception):
    """A condition the poller cannot fix by retrying (bad key, wrong store, bad cursor)."""


@dataclass
class PollerState:
    """What survives a restart: the feed cursor and the stand-in merchant system's orders."""

    after_event_id: str = ""  # empty: start from the beginning of the feed
    next_number: int = FIRST_NUMBER
    # orderbridge order id -> {"order_id": ..., "order_number": ..., "status": ...}
    orders: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> PollerState:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(
            after_event_id=data["after_event_id"],
            next_number=data["next_number"],
            orders=data["orders"],
        )

    def save(self, path: Path) -> None:
        # Write a temporary file and rename it over the old one: a crash mid-write never
        # leaves a truncated state file behind.
        data = {
            "after_event_id": self.after_event_id,
            "next_number": self.next_number,
            "orders": self.orders,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "w") as file:
            json.dump(data, file, indent=2, sort_keys=True)
        os.replace(temporary, path)


class MerchantSystem:
    """Stand-in for the merchant's shop or ERP. ``create_order`` is idempotent: the same
    orderbridge order always gets the same external id and number."""

    def __init__(self, state: PollerState) -> None:
        self.state = state

    def create_order(self, order: dict[str, Any]) -> dict[str, str]:
        known = self.state.orders.get(order["id"])
        if known is not None:
            return {"order_id": known["order_id"], "order_number": known["order_number"]}
        number = self.state.next_number
        self.state.next_number += 1
        external = {"order_id": str(number), "order_number": f"WEB-{number:06d}"}
        self.state.orders[order["id"]] = {**external, "status": "created"}
        return external

    def mark(self, order_id: str, status: str) -> None:
        if order_id in self.state.orders:
            self.state.orders[order_id]["status"] = status


class OrderApi:
    """The three calls this integration needs, over one authenticated httpx client."""

    def __init__(self, client: httpx.Client, store_id: str) -> None:
        self.client = client
        self.store_id = store_id

    def first_page_url(self, after_event_id: str) -> str:
        params = [("event", name) for name in SUBSCRIBED_EVENTS]
        params += [("limit", str(PAGE_SIZE)), ("after_event_id", after_event_id)]
        return f"/v2/events/{self.store_id}?{urlencode(params)}"

    def events_page(self, url: str) -> dict[str, Any]:
        response = self.client.get(url)
        _raise_for_status(response)
        page: dict[str, Any] = response.json()
        return page

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v2/orders/{self.store_id}/{order_id}")
        _raise_for_status(response)
        order: dict[str, Any] = response.json()
        return order

    def accept(self, order_id: str, external: dict[str, str]) -> httpx.Response:
        """Returns the response: 200 and 409 are both answers the caller handles."""
        response = self.client.post(
            f"/v2/orders/{self.store_id}/{order_id}/accept", json={"external": external}
        )
        if response.status_code != 409:
            _raise_for_status(response)
        return response


def _raise_for_status(response: httpx.Response) -> None:
    """401, 403, 404 and 400 are permanent (wrong key, wrong store, bad cursor); anything
    else that is not a success is left to httpx, and retried by the polling loop."""
    if response.status_code in (400, 401, 403, 404):
        raise PollerError(f"{response.request.url}: {response.status_code} {response.text}")
    response.raise_for_status()


class MerchantPoller:
    """Follows the store's event feed and accepts every order that becomes ready."""

    def __init__(self, client: httpx.Client, store_id: str, state_path: Path) -> None:
        self.api = OrderApi(client, store_id)
        self.state_path = state_path
        self.state = PollerState.load(state_path)
        self.merchant = MerchantSystem(self.state)
        self._next_url: str | None = None  # links.next of the last page, once we have one

    def poll_once(self) -> list[dict[str, Any]]:
        """Read pages until an empty one; handle each event and move the cursor past it.
        Returns the events handled."""
        handled: list[dict[str, Any]] = []
        while True:
            url = self._next_url or self.api.first_page_url(self.state.after_event_id)
            try:
                page = self.api.events_page(url)
                for event in page["events"]:
                    self.handle(event)
                    self.state.after_event_id = event["event_id"]
                    self.state.save(self.state_path)
                    handled.append(event)
            except Exception:
                # Part of the page may be handled: restart from the saved cursor next time.
                self._next_url = None
                raise
            self._next_url = page["links"]["next"]
            if not page["events"]:
                return handled

    def handle(self, event: dict[str, Any]) -> None:
        if event["event_name"] == "order.ready":
            self.accept(event["order_id"])
        elif event["event_name"] == "order.cancelled":
            # A real integration would cancel (or never ship) its copy of the order.
            self.merchant.mark(event["order_id"], "cancelled")
            log.info("order %s was cancelled", event["order_id"])

    def accept(self, order_id: str) -> None:
        order = self.api.order(order_id)
        if order["status"] == "CANCELLED":
            # Cancelled after it became ready (and before we got to it): nothing to create.
            log.info("order %s was cancelled before we accepted it", order_id)
            return
        external = self.merchant.create_order(order)
        # Save now: if we crash after the accept call, the replay must send the same values.
        self.state.save(self.state_path)
        response = self.api.accept(order_id, external)
        if response.status_code == 200:
            self.merchant.mark(order_id, "accepted")
            log.info("accepted %s as %s", order_id, external["order_number"])
            return
        problem = _problem(response)
        if problem.get("code") == "order_cancelled":
            self.merchant.mark(order_id, "cancelled")
            log.info("order %s was cancelled before we accepted it", order_id)
        else:
            # Already accepted with other values (by someone else, or by an older copy of
            # this integration that lost its state), or not acceptable at all. Retrying
            # cannot change the answer: a person has to reconcile the two systems.
            log.error("could not accept %s: %s", order_id, problem.get("detail", response.text))


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def run(poller: MerchantPoller, *, once: bool, interval: float) -> None:
    while True:
        try:
            poller.poll_once()
        except httpx.HTTPError as error:
            # Network trouble or a 5xx: the cursor is safe on disk, so simply try again.
            if once:
                raise
            log.warning("poll failed, retrying in %.1f s: %s", interval, error)
        if once:
            return
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--store", required=True, help="store id")
    parser.add_argument(
        "--key",
        default=os.environ.get("ORDERBRIDGE_MERCHANT_KEY"),
        help="merchant key (GL.…); default $ORDERBRIDGE_MERCHANT_KEY",
    )
    parser.add_argument("--state", type=Path, default=Path("merchant_poller_state.json"))
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    parser.add_argument("--once", action="store_true", help="drain the feed and exit")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("give --key or set ORDERBRIDGE_MERCHANT_KEY")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    headers = {"Authorization": f"Bearer {args.key}"}
    with httpx.Client(base_url=args.base_url, headers=headers, timeout=10.0) as client:
        poller = MerchantPoller(client, args.store, args.state)
        try:
            run(poller, once=args.once, interval=args.interval)
        except (PollerError, httpx.HTTPError) as error:
            log.error("%s", error)
            return 1
        except KeyboardInterrupt:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
