"""Sessions in signed cookies (Starlette's SessionMiddleware: itsdangerous, HMAC-SHA1
timestamp signer). The cookie holds the user id, the user's ``session_version`` (a password
change or disabling moves it and ends older sessions), the CSRF token and pending flash
messages; nothing secret."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from starlette.requests import Request

from orderbridge.crypto import local_key
from orderbridge.settings import Settings

COOKIE = "orderbridge_session"
_CSRF = "csrf"
_USER = "uid"
_VERSION = "ver"
_FLASH = "flash"


def session_secret(settings: Settings) -> str:
    """The signing key: ``session_secret`` if set, else derived from the key that encrypts
    stored secrets (configured, or the local one in data_dir), so the embedded default needs
    no extra setting and a cluster shares it through ``ORDERBRIDGE_SECRET_KEYS``."""
    if settings.session_secret:
        return settings.session_secret
    keys = settings.secret_key_list()
    base = keys[0] if keys else local_key(settings.data_dir)
    return hashlib.sha256(b"orderbridge session cookies\0" + base.encode()).hexdigest()


def csrf_token(request: Request) -> str:
    token = request.session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


def signed_in(request: Request) -> tuple[str, int] | None:
    uid, version = request.session.get(_USER), request.session.get(_VERSION)
    if isinstance(uid, str) and isinstance(version, int):
        return uid, version
    return None


def sign_in(request: Request, user_id: str, version: int) -> None:
    """A fresh session (new CSRF token) for the user: a session fixed before sign-in is
    worth nothing after it."""
    flashes = request.session.get(_FLASH, [])
    request.session.clear()
    request.session.update({_USER: user_id, _VERSION: version, _FLASH: flashes})
    csrf_token(request)


def sign_out(request: Request) -> None:
    request.session.clear()


def flash(request: Request, message: str, kind: str = "success") -> None:
    messages: list[dict[str, Any]] = list(request.session.get(_FLASH, []))
    messages.append({"kind": kind, "message": message})
    request.session[_FLASH] = messages[-5:]


def pop_flashes(request: Request) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = request.session.pop(_FLASH, [])
    return messages
