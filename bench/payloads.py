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
