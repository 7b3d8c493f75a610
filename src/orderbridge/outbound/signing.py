"""Standard Webhooks signatures (symmetric ``v1``, HMAC-SHA256), as ORDER_API.md §6 specifies.

The signed content is ``f"{msg_id}.{timestamp}."`` followed by the raw body; the header
value is ``v1,<base64 MAC>``, one per live secret, space-separated, so that during a
secret rotation a receiver holding either the old or the new secret accepts the message.

Build one ``Signer`` per endpoint and reuse it: it decodes the secrets and keys the HMAC
once, and each message then costs one copy of the keyed state plus the hash of the body.
``sign`` and ``headers`` are conveniences that build a ``Signer`` per call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as random_source
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
# The spec's bounds for symmetric secrets: shorter is weak, longer buys nothing.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
GENERATED_SECRET_BYTES = 32


class MalformedSecret(ValueError):
    """A webhook secret is not ``whsec_`` + base64 of 24 to 64 bytes.

    The message never contains the secret, since errors end up in logs.
    """


class UnsignableMessage(ValueError):
    """The id or timestamp cannot be signed and sent as a header unambiguously."""


def generate_secret() -> str:
    """A new endpoint secret: ``whsec_`` + base64 of 32 random bytes."""
    key = random_source.token_bytes(GENERATED_SECRET_BYTES)
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_`` secret; raises ``MalformedSecret``."""
    if not secret.startswith(SECRET_PREFIX):
        raise MalformedSecret(f"a webhook secret must start with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    # Some generators omit the padding; the verifiers in the wild re-pad, so do we.
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedSecret("a webhook secret must be base64 after its prefix") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise MalformedSecret(
            f"a webhook secret must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes,"
            f" this one holds {len(key)}"
        )
    return key


class Signer:
    """Signs messages for one endpoint with all of its live secrets (newest first)."""

    __slots__ = ("_keyed",)

    def __init__(self, secrets: Sequence[str]) -> None:
        if isinstance(secrets, str):  # a lone str is a Sequence[str] of characters
            raise TypeError("pass a sequence of secrets, not a single string")
        if not secrets:
            raise MalformedSecret("at least one webhook secret is needed to sign")
        # HMAC's keyed inner and outer states, computed once; copy() reuses them per message.
        self._keyed = tuple(
            hmac.new(decode_secret(secret), digestmod=hashlib.sha256) for secret in secrets
        )

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The ``webhook-signature`` header value."""
        prefix = _signed_prefix(msg_id, timestamp)
        parts = []
        for keyed in self._keyed:
            mac = keyed.copy()
            # Two updates instead of prefix + body: no copy of a possibly large body.
            mac.update(prefix)
            mac.update(body)
            parts.append("v1," + base64.b64encode(mac.digest()).decode("ascii"))
        return " ".join(parts)

    def headers(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` for one attempt."""
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self.signature(msg_id, timestamp, body),
        }


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value; prefer a reused ``Signer`` on hot paths."""
    return Signer(secrets).signature(msg_id, timestamp, body)


def headers(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers; prefer a reused ``Signer`` on hot paths."""
    return Signer(secrets).headers(msg_id, timestamp, body)


def _signed_prefix(msg_id: str, timestamp: int) -> bytes:
    # "a.b" + "1" and "a" + "b.1" would sign the same bytes; the spec forbids "." in both
    # parts for that reason. The id also travels as a header, hence printable ASCII only.
    if not _is_header_token(msg_id) or "." in msg_id:
        raise UnsignableMessage("a webhook id must be printable ASCII without spaces or '.'")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise UnsignableMessage("a webhook timestamp must be a non-negative int (unix seconds)")
    return f"{msg_id}.{timestamp}.".encode()


def _is_header_token(value: str) -> bool:
    return bool(value) and value.isascii() and value.isprintable() and " " not in value
