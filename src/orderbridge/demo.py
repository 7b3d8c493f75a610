"""Demo data: realistic checkout orders, a demo store with printed keys, and a trickle of
orders so that a newcomer sees the feed move. Also used by the benchmarks."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

from orderbridge.accounts import service as accounts
from orderbridge.bootstrap import Container
from orderbridge.money import format_amount
from orderbridge.orders.lifecycle import Actor, ActorKind, CancellationReason
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.stores import service as stores

log = logging.getLogger("orderbridge.demo")

_PEOPLE = [
    ("Camille", "Durand", "FR", "Paris", "75011", "12 rue Oberkampf"),
    ("Lukas", "Schmidt", "DE", "Berlin", "10115", "Invalidenstraße 5"),
    ("Sofia", "Rossi", "IT", "Milano", "20121", "Via Brera 7"),
    ("Emma", "Jansen", "NL", "Amsterdam", "1015 CJ", "Prinsengracht 263"),
    ("Olivia", "Smith", "GB", "London", "N1 9GU", "22 Upper Street"),
    ("Mateo", "García", "ES", "Madrid", "28004", "Calle de Fuencarral 45"),
]
_PRODUCTS = [
    ("TSHIRT-BLUE-M", "Organic cotton T-shirt", "29.90", "610910", "apparel"),
    ("SNEAKER-42", "Canvas sneakers", "79.00", "640411", "footwear"),
    ("MUG-STONE", "Stoneware mug", "18.50", "691200", "homeware"),
    ("SCARF-WOOL", "Merino scarf", "45.00", "611710", "apparel"),
    ("BOOK-ATLAS", "Illustrated atlas", "34.00", "490199", "books"),
]
_VAT = {"FR": "20", "DE": "19", "IT": "22", "NL": "21", "GB": "20", "ES": "21"}


def sample_order(
    rng: random.Random,
    *,
    currency: str = "EUR",
    items: int | None = None,
    payment_reference: str | None = None,
) -> dict[str, Any]:
    """A valid checkout order whose sums add up, as a JSON-ready dict."""
    first, last, country, city, postal, line1 = rng.choice(_PEOPLE)
    rate = Decimal(_VAT[country])
    lines = []
    gross = discount_total = tax_total = Decimal(0)
    for sku, name, price, hs, category in rng.sample(_PRODUCTS, items or rng.randint(1, 3)):
        quantity = rng.randint(1, 3)
        unit = Decimal(price)
        discount = Decimal("5.00") if rng.random() < 0.2 else Decimal("0.00")
        net = unit * quantity - discount
        tax = Decimal(format_amount(net * rate / 100, currency))
        lines.append(
            {
                "sku": sku,
                "name": name,
                "quantity": quantity,
                "unit_price": price,
                "discount": str(discount),
                "tax_rate": str(rate),
                "tax": str(tax),
                "duty": "0.00",
                "total": str(net + tax),
                "hs_code": hs,
                "category": category,
                "origin_country": "FR",
            }
        )
        gross += unit * quantity
        discount_total += discount
        tax_total += tax
    shipping_price, shipping_tax = Decimal("9.90"), Decimal("1.98")
    tax_total += shipping_tax
    total = gross - discount_total + shipping_price + tax_total
    # Every demo buyer is someone else (own email, address and IP), so that fraud velocity
    # rules see ordinary traffic.
    buyer = rng.randrange(1_000_000)
    address = {
        "first_name": first,
        "last_name": last,
        "line1": f"{buyer % 200 + 1}, {line1}",
        "line2": f"Apt {buyer}",
        "city": city,
        "postal_code": postal,
        "country": country,
    }
    reference = payment_reference or f"pay_{rng.getrandbits(64):016x}"
    return {
        "currency": currency,
        "language": f"{country.lower()}-{country}" if country != "GB" else "en-GB",
        "environment": "test",
        "exchange_rates": {"USD": {"rate": "0.9102"}},
        "customer": {
            "email": f"{first.lower()}.{last.lower()}.{buyer}@example.com",
            "first_name": first,
            "last_name": last,
        },
        "billing_address": address,
        "shipping_address": address,
        "items": lines,
        "shipping": {
            "method": "Standard international",
            "carrier": "DHL",
            "price": str(shipping_price),
            "tax": str(shipping_tax),
        },
        "totals": {
            "items": str(gross),
            "discount": str(discount_total),
            "shipping": str(shipping_price),
            "tax": str(tax_total),
            "duties": "0.00",
            "total": str(total),
        },
        "payment": {"method": "card", "provider": "test", "reference": reference},
        "client": {
            "ip": f"198.51.{buyer % 256}.{buyer // 256 % 256}",
            "user_agent": "Mozilla/5.0 (demo)",
        },
    }


DEMO_EMAIL = "demo@example.com"


async def ensure_demo_user(container: Container, state: dict[str, str]) -> dict[str, str]:
    """The Merchant Account user of the demo store (owner), made once with a random
    password that the demo prints (and keeps in the state file, demo only)."""
    if "user_email" in state:
        return state
    password = secrets.token_urlsafe(12)
    now = container.clock.now()
    async with container.db.transaction() as session:
        user = await accounts.find_by_email(session, DEMO_EMAIL)
        if user is None:
            user = await accounts.create_user(
                session, email=DEMO_EMAIL, password=password, now=now, name="Demo Merchant"
            )
        else:
            await accounts.set_password(session, user=user, password=password)
        await accounts.add_membership(
            session, user=user, store_id=state["store_id"], role=accounts.Role.OWNER, now=now
        )
    return {**state, "user_email": DEMO_EMAIL, "user_password": password}


async def ensure_demo_store(container: Container, state_file: Path) -> dict[str, str]:
    """Create the demo store, its keys and its Merchant Account user once; keep their
    plaintext in the data folder (demo only: real keys are shown once and stored hashed)."""
    if state_file.exists():
        state = dict(json.loads(state_file.read_text()))
        if "user_email" not in state:  # a demo folder from before the Merchant Account
            state = await ensure_demo_user(container, state)
            state_file.write_text(json.dumps(state, indent=2))
        return state
    now = container.clock.now()
    async with container.db.transaction() as session:
        store = await stores.create_store(
            session, name="Demo Store", currency="EUR", country="FR", now=now
        )
        merchant = await stores.issue_key(
            session, store_id=store.id, kind=stores.KeyKind.MERCHANT, now=now, label="demo"
        )
        checkout = await stores.issue_key(
            session, store_id=store.id, kind=stores.KeyKind.CHECKOUT, now=now, label="demo"
        )
    state = {"store_id": store.id, "merchant_key": merchant.secret, "checkout_key": checkout.secret}
    state = await ensure_demo_user(container, state)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state, indent=2))
    state_file.chmod(0o600)
    return state


async def submit_demo_order(container: Container, store_id: str, rng: random.Random) -> str:
    payload = CheckoutOrder.model_validate(sample_order(rng))
    async with container.db.transaction() as session:
        outcome = await container.orders.receive(
            session, store_id, f"demo-{rng.getrandbits(64):016x}", payload
        )
        return f"{store_id}-{outcome.order.id}"


async def demo_traffic(
    container: Container, store_id: str, *, initial: int = 8, interval: float = 30.0
) -> None:
    """A few orders at once, then one every ``interval`` seconds; some get accepted or
    cancelled by a pretend merchant so that every status shows up."""
    rng = random.Random()
    merchant = Actor(ActorKind.MERCHANT, "demo-merchant")
    count = 0
    while True:
        order_id = await submit_demo_order(container, store_id, rng)
        count += 1
        await asyncio.sleep(1.0 if count <= initial else interval)
        try:
            async with container.db.transaction() as session:
                if count % 4 == 0:
                    await container.orders.cancel(
                        session,
                        store_id,
                        order_id,
                        note="demo: buyer changed their mind",
                        reason=CancellationReason.MERCHANT_REQUEST,
                        actor=merchant,
                    )
                elif count % 4 != 1:
                    await container.orders.accept(
                        session,
                        store_id,
                        order_id,
                        external_order_id=str(1000 + count),
                        external_order_number=f"D{1000 + count:05d}",
                        actor=merchant,
                    )
        except Exception as error:
            log.info("demo merchant could not act on %s: %s", order_id, error)
