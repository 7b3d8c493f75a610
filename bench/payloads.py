"""Checkout bodies for the intake load: a pool of distinct, valid orders from
``orderbridge.demo.sample_order``, serialised once before the clock starts.

Each request still gets a distinct body and a distinct ``Idempotency-Key``: the payment
reference of the template is a fixed-width placeholder that is replaced by the request's
sequence number, a bytes substitution cheap enough not to load the generator's CPU.
"""

from __future__ import annotations

import random

import orjson

from orderbridge.demo import sample_order

PLACEHOLDER = b"pay_################"  # 20 bytes, replaced by f"pay_{n:016d}"


def order_templates(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    return [
        orjson.dumps(sample_order(rng, payment_reference=PLACEHOLDER.decode()))
        for _ in range(count)
    ]


def order_body(templates: list[bytes], sequence: int) -> bytes:
    template = templates[sequence % len(templates)]
    return template.replace(PLACEHOLDER, b"pay_%016d" % sequence)


# Buyer bodies for the pipeline: every order a distinct buyer (email, IP, street, card),
# so that the fraud rules' velocity counts see a crowd of first-time buyers, as a real
# checkout does, instead of a template pool's few hundred people ordering again and again
# (held for review after a few orders each, and never READY).
# Buyers live in France and pay with the test provider's French card: no country mismatch,
# so every order passes screening and goes all the way to READY.
BUYER_NUMBER = b"################"  # 16 bytes, replaced by f"{n:016d}"
# The fraud rules count IPv6 buyers by /64: the last 8 digits make the /64 prefix.
BUYER_IP = b"2001:db8:####:####::1"
BUYER_COUNTRY = "FR"


def buyer_templates(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    number, ip = BUYER_NUMBER.decode(), BUYER_IP.decode()
    templates: list[bytes] = []
    for _ in range(count * 50):  # a French buyer comes up once in six draws
        order = sample_order(rng, payment_reference=f"pay_{number}")
        if order["shipping_address"]["country"] != BUYER_COUNTRY:
            continue
        order["customer"]["email"] = f"b{number}@example.com"
        order["client"]["ip"] = ip
        street = f"{number} {order['shipping_address']['line1']}"
        order["billing_address"] = {**order["billing_address"], "line1": street}
        order["shipping_address"] = {**order["shipping_address"], "line1": street}
        templates.append(orjson.dumps(order))
        if len(templates) == count:
            return templates
    raise RuntimeError("not enough French buyers drawn")


def buyer_body(templates: list[bytes], sequence: int) -> bytes:
    digits = b"%016d" % sequence
    ip = b"2001:db8:%s:%s::1" % (digits[8:12], digits[12:16])
    template = templates[sequence % len(templates)]
    return template.replace(BUYER_IP, ip).replace(BUYER_NUMBER, digits)
