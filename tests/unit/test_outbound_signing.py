"""Standard Webhooks signatures, checked against two independent verifiers."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest
import standardwebhooks.webhooks
import svix.webhooks
from standardwebhooks.exceptions import WebhookVerificationError as StandardVerificationError
from svix.webhooks import WebhookVerificationError as SvixVerificationError

from orderbridge.outbound.signing import (
    MalformedSecret,
    Signer,
    UnsignableMessage,
    decode_secret,
    generate_secret,
    headers,
    sign,
)

BODY = b'{"type":"order.accepted","data":{"id":"ord_1","total":"12.50 \xe2\x82\xac"}}'
MSG_ID = "evt_01J9ZQ3W8M4T6"

Verify = Callable[[str, bytes, dict[str, str]], None]


def verify_with_standardwebhooks(secret: str, body: bytes, hdrs: dict[str, str]) -> None:
    standardwebhooks.webhooks.Webhook(secret).verify(body, hdrs, json_parse=False)


def verify_with_svix(secret: str, body: bytes, hdrs: dict[str, str]) -> None:
    svix.webhooks.Webhook(secret).verify(body, hdrs)


def verify_with_svix_prefixed_headers(secret: str, body: bytes, hdrs: dict[str, str]) -> None:
    # Svix's own deliveries use svix-* names; its verifier must accept ours renamed too.
    renamed = {name.replace("webhook-", "svix-"): value for name, value in hdrs.items()}
    svix.webhooks.Webhook(secret).verify(body, renamed)


VERIFIERS = pytest.mark.parametrize(
    "verify",
    [verify_with_standardwebhooks, verify_with_svix, verify_with_svix_prefixed_headers],
    ids=["standardwebhooks", "svix", "svix-headers"],
)
VERIFICATION_ERRORS = (StandardVerificationError, SvixVerificationError)


def now() -> int:
    # Both verifiers refuse timestamps more than five minutes from their clock.
    return int(time.time())


def test_generated_secret_is_prefixed_base64_of_32_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert generate_secret() != secret


@VERIFIERS
def test_signature_verifies(verify: Verify) -> None:
    secret = generate_secret()
    verify(secret, BODY, headers([secret], MSG_ID, now(), BODY))


@VERIFIERS
def test_empty_body_verifies(verify: Verify) -> None:
    secret = generate_secret()
    verify(secret, b"", headers([secret], MSG_ID, now(), b""))


@VERIFIERS
def test_during_rotation_each_secret_alone_verifies_the_same_header(verify: Verify) -> None:
    old, new = generate_secret(), generate_secret()
    hdrs = Signer([new, old]).headers(MSG_ID, now(), BODY)
    assert len(hdrs["webhook-signature"].split(" ")) == 2
    verify(old, BODY, hdrs)
    verify(new, BODY, hdrs)


@VERIFIERS
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: (h, b + b" "), id="body-appended"),
        pytest.param(lambda h, b: (h, b.replace(b"12.50", b"99.50")), id="body-changed"),
        pytest.param(lambda h, b: ({**h, "webhook-id": MSG_ID + "x"}, b), id="other-id"),
        pytest.param(
            lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b),
            id="other-timestamp",
        ),
    ],
)
def test_tampered_message_fails(
    verify: Verify,
    tamper: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]],
) -> None:
    secret = generate_secret()
    hdrs, body = tamper(headers([secret], MSG_ID, now(), BODY), BODY)
    with pytest.raises(VERIFICATION_ERRORS):
        verify(secret, body, hdrs)


@VERIFIERS
def test_wrong_secret_fails(verify: Verify) -> None:
    hdrs = headers([generate_secret()], MSG_ID, now(), BODY)
    with pytest.raises(VERIFICATION_ERRORS):
        verify(generate_secret(), BODY, hdrs)


def test_known_answer() -> None:
    # From openssl: printf 'msg_1.1700000000.{}' | openssl dgst -sha256 -mac HMAC
    #   -macopt hexkey:000102...1f -binary | base64
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    assert sign([secret], "msg_1", 1700000000, b"{}") == (
        "v1,fhksJF5ElKjlPoT/jtefCO5XjQPvhf7Dhf/8R1ad9yU="
    )


def test_signer_and_functions_agree() -> None:
    secrets = [generate_secret(), generate_secret()]
    signer = Signer(secrets)
    ts = now()
    assert signer.signature(MSG_ID, ts, BODY) == sign(secrets, MSG_ID, ts, BODY)
    assert signer.headers(MSG_ID, ts, BODY) == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secrets, MSG_ID, ts, BODY),
    }
    # Signing is deterministic and a reused Signer does not carry state between messages.
    assert signer.signature(MSG_ID, ts, BODY) == signer.signature(MSG_ID, ts, BODY)


def test_unpadded_secret_is_accepted() -> None:
    key = bytes(range(25))  # 25 bytes -> base64 needs padding
    padded = "whsec_" + base64.b64encode(key).decode()
    assert padded.endswith("=")
    assert decode_secret(padded.rstrip("=")) == key == decode_secret(padded)


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (base64.b64encode(bytes(32)).decode(), "start with"),
        ("whsk_" + base64.b64encode(bytes(32)).decode(), "start with"),
        ("whsec_", "hold 24 to 64 bytes"),
        ("whsec_" + base64.b64encode(bytes(23)).decode(), "hold 24 to 64 bytes"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "hold 24 to 64 bytes"),
        ("whsec_not*base64!", "base64"),
        ("whsec_" + base64.urlsafe_b64encode(b"\xfb" * 32).decode(), "base64"),
    ],
)
def test_malformed_secret_is_refused(secret: str, reason: str) -> None:
    with pytest.raises(MalformedSecret, match=reason) as caught:
        Signer([secret])
    encoded = secret.removeprefix("whsec_")
    if encoded:  # errors end up in logs: they must not repeat the secret
        assert encoded not in str(caught.value)


def test_secret_bounds_are_inclusive() -> None:
    for size in (24, 64):
        secret = "whsec_" + base64.b64encode(bytes(size)).decode()
        Signer([secret])


def test_no_secret_is_refused() -> None:
    with pytest.raises(MalformedSecret):
        Signer([])


def test_a_single_string_is_not_taken_for_a_list_of_secrets() -> None:
    with pytest.raises(TypeError):
        Signer(generate_secret())


@pytest.mark.parametrize(
    ("msg_id", "timestamp"),
    [
        ("", 1700000000),
        ("evt.1", 1700000000),
        ("evt 1", 1700000000),
        ("evt\r\nx-injected: 1", 1700000000),
        ("évt", 1700000000),
        (MSG_ID, -1),
        (MSG_ID, True),
    ],
)
def test_unsignable_message_is_refused(msg_id: str, timestamp: int) -> None:
    with pytest.raises(UnsignableMessage):
        Signer([generate_secret()]).signature(msg_id, timestamp, BODY)
