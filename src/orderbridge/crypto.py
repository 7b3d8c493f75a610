"""Secrets at rest (webhook signing secrets, platform credentials) are encrypted with keys
from settings (``ORDERBRIDGE_SECRET_KEYS``: comma-separated, the first encrypts, all decrypt,
so keys can be rotated). Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBoxError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


def _fernet(passphrase: str) -> Fernet:
    # Any passphrase becomes a Fernet key; a random 32-byte one is what `generate` makes.
    digest = hashlib.sha256(passphrase.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one secret key is needed")
        self._box = MultiFernet([_fernet(key) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._box.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._box.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretBoxError("cannot decrypt: was ORDERBRIDGE_SECRET_KEYS changed?") from None


def local_key(data_dir: Path) -> str:
    """The embedded default's key: made once and kept in the data folder (mode 600)."""
    path = data_dir / "secret.key"
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        # O_EXCL: of several processes starting together on a fresh folder, exactly one
        # writes the key and the others read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            existing = path.read_text().strip()
            if existing:
                return existing
            time.sleep(0.01)  # the writer has created the file but not yet written it
        raise SecretBoxError(f"{path} is empty") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
