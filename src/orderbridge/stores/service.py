"""Use cases for stores and keys. Services never commit: the caller's transaction does."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import pycountry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import ApiKey, Store
from orderbridge.errors import FieldError, NotFound, ValidationFailed
from orderbridge.ids import new_store_id, random_token
from orderbridge.money import is_currency


class KeyKind(StrEnum):
    MERCHANT = "merchant"
    CHECKOUT = "checkout"


KEY_PREFIX = {KeyKind.MERCHANT: "GL.", KeyKind.CHECKOUT: "ck_"}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key of one store."""

    store_id: str
    key_id: str
    kind: KeyKind


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # the only time the plaintext exists


def hash_secret(secret: str) -> str:
    # Keys carry 200 bits of randomness, so a fast hash is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_store_fields(name: str, currency: str, country: str) -> None:
    errors = []
    if not name.strip() or len(name) > 255:
        errors.append(FieldError("name", "1 to 255 characters"))
    if not is_currency(currency):
        errors.append(FieldError("currency", "not an ISO 4217 currency code"))
    if len(country) != 2 or pycountry.countries.get(alpha_2=country) is None:
        errors.append(FieldError("country", "not an ISO 3166-1 alpha-2 country code"))
    if errors:
        raise ValidationFailed(errors)


async def create_store(
    session: AsyncSession, *, name: str, currency: str, country: str, now: datetime
) -> Store:
    _check_store_fields(name, currency, country)
    while True:
        store_id = new_store_id()
        if await session.get(Store, store_id) is None:
            break
    store = Store(
        id=store_id, name=name.strip(), currency=currency, country=country, created_at=now
    )
    session.add(store)
    await session.flush()
    return store


async def get_store(session: AsyncSession, store_id: str) -> Store:
    store = await session.get(Store, store_id)
    if store is None:
        raise NotFound(f"no store {store_id}", code="store_not_found")
    return store


async def list_stores(session: AsyncSession) -> list[Store]:
    return list((await session.scalars(select(Store).order_by(Store.created_at))).all())


async def issue_key(
    session: AsyncSession, *, store_id: str, kind: KeyKind, now: datetime, label: str | None = None
) -> IssuedKey:
    await get_store(session, store_id)
    secret = KEY_PREFIX[kind] + random_token(25)
    key = ApiKey(
        id="key_" + random_token(10),
        store_id=store_id,
        kind=kind.value,
        prefix=secret[:10],
        secret_hash=hash_secret(secret),
        label=label,
        created_at=now,
    )
    session.add(key)
    await session.flush()
    return IssuedKey(key, secret)


async def revoke_key(
    session: AsyncSession, key_id: str, *, now: datetime, store_id: str | None = None
) -> ApiKey:
    """Revoke a key (idempotent). With ``store_id``, another store's key is not found."""
    key = await session.get(ApiKey, key_id)
    if key is None or (store_id is not None and key.store_id != store_id):
        raise NotFound(f"no key {key_id}", code="key_not_found")
    if key.revoked_at is None:
        key.revoked_at = now
        await session.flush()
    return key


async def list_keys(session: AsyncSession, store_id: str) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.store_id == store_id).order_by(ApiKey.created_at)
    return list((await session.scalars(query)).all())


async def find_principal(session: AsyncSession, secret: str) -> Principal | None:
    """The live key with this secret, if any."""
    row = (
        await session.execute(
            select(ApiKey.store_id, ApiKey.id, ApiKey.kind).where(
                ApiKey.secret_hash == hash_secret(secret), ApiKey.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None:
        return None
    return Principal(store_id=row.store_id, key_id=row.id, kind=KeyKind(row.kind))
