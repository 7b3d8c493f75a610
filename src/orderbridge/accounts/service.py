"""Use cases for Merchant Account users: create, add to a store, sign in, change password,
update profile, disable. They run in the caller's transaction and never commit.

Field errors name the form field they belong to (``email``, ``password``, ``time_zone``...),
so the UI can show each message next to its field and the CLI can print it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.accounts.passwords import (
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from orderbridge.db.models import Store, StoreMembership, User
from orderbridge.errors import Conflict, FieldError, NotFound, ValidationFailed
from orderbridge.ids import random_token
from orderbridge.stores.service import get_store


class Role(StrEnum):
    OWNER = "owner"  # orders, keys, webhooks, store settings
    STAFF = "staff"  # orders and their actions only


class EmailTaken(Conflict):
    code, title = "email_taken", "A user with this email exists"


@dataclass(frozen=True)
class Membership:
    store_id: str
    store_name: str
    currency: str
    role: Role


def normalise_email(email: str) -> str:
    """The stored form: validated, lower-cased (emails are unique case-insensitively)."""
    try:
        valid = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise ValidationFailed([FieldError("email", str(error))]) from None
    return valid.normalized.lower()


def check_time_zone(name: str) -> str | None:
    if not name or len(name) > 64:
        return "choose a time zone"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "not a known time zone (e.g. Europe/Paris)"
    return None


def check_locale(name: str) -> str | None:
    try:
        Locale.parse(name)
    except (UnknownLocaleError, ValueError, TypeError):
        return "not a known locale (e.g. en, fr_FR)"
    return None


def _check_profile(name: str, time_zone: str, locale: str) -> list[FieldError]:
    errors = []
    if len(name) > 255:
        errors.append(FieldError("name", "at most 255 characters"))
    if (problem := check_time_zone(time_zone)) is not None:
        errors.append(FieldError("time_zone", problem))
    if (problem := check_locale(locale)) is not None:
        errors.append(FieldError("locale", problem))
    return errors


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    now: datetime,
    name: str = "",
    time_zone: str = "UTC",
    locale: str = "en",
) -> User:
    errors = _check_profile(name, time_zone, locale)
    try:
        email = normalise_email(email)
    except ValidationFailed as invalid:
        errors = invalid.errors + errors
    if (problem := password_problem(password)) is not None:
        errors.append(FieldError("password", problem))
    if errors:
        raise ValidationFailed(errors)
    if await find_by_email(session, email) is not None:
        raise EmailTaken(f"a user with the email {email} exists")
    user = User(
        id="usr_" + random_token(12),
        email=email,
        name=name.strip(),
        password_hash=await asyncio.to_thread(hash_password, password),
        time_zone=time_zone,
        locale=locale,
        session_version=1,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email.strip().lower()))


async def get_user(session: AsyncSession, email: str) -> User:
    user = await find_by_email(session, email)
    if user is None:
        raise NotFound(f"no user {email}", code="user_not_found")
    return user


async def add_membership(
    session: AsyncSession, *, user: User, store_id: str, role: Role, now: datetime
) -> StoreMembership:
    """Give ``user`` access to a store, or change their role there."""
    await get_store(session, store_id)
    membership = await session.get(StoreMembership, (user.id, store_id))
    if membership is None:
        membership = StoreMembership(
            user_id=user.id, store_id=store_id, role=role.value, created_at=now
        )
        session.add(membership)
    else:
        membership.role = role.value
    await session.flush()
    return membership


async def remove_membership(session: AsyncSession, *, user: User, store_id: str) -> bool:
    membership = await session.get(StoreMembership, (user.id, store_id))
    if membership is None:
        return False
    await session.delete(membership)
    await session.flush()
    return True


async def memberships(session: AsyncSession, user_id: str) -> list[Membership]:
    rows = await session.execute(
        select(StoreMembership.role, Store.id, Store.name, Store.currency)
        .join(Store, Store.id == StoreMembership.store_id)
        .where(StoreMembership.user_id == user_id)
        .order_by(Store.name, Store.id)
    )
    return [Membership(sid, name, currency, Role(role)) for role, sid, name, currency in rows]


async def authenticate(
    session: AsyncSession, *, email: str, password: str, now: datetime
) -> User | None:
    """The user with this email and password, or None. Takes the same time whether the
    email exists or not; a disabled user cannot sign in."""
    user = await find_by_email(session, email)
    ok = await asyncio.to_thread(
        verify_password, user.password_hash if user is not None else None, password
    )
    if user is None or not ok or user.disabled_at is not None:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(hash_password, password)
    user.last_login_at = now
    await session.flush()
    return user


async def change_password(
    session: AsyncSession, *, user: User, current: str, new: str, confirm: str
) -> None:
    """Check the current password, set the new one, and end every other session."""
    errors = []
    if not await asyncio.to_thread(verify_password, user.password_hash, current):
        errors.append(FieldError("current_password", "this is not your current password"))
    if (problem := password_problem(new)) is not None:
        errors.append(FieldError("new_password", problem))
    elif new != confirm:
        errors.append(FieldError("confirm_password", "does not match the new password"))
    if errors:
        raise ValidationFailed(errors)
    user.password_hash = await asyncio.to_thread(hash_password, new)
    user.session_version += 1
    await session.flush()


async def set_password(session: AsyncSession, *, user: User, password: str) -> None:
    """An operator's reset (CLI): no current password asked."""
    if (problem := password_problem(password)) is not None:
        raise ValidationFailed([FieldError("password", problem)])
    user.password_hash = await asyncio.to_thread(hash_password, password)
    user.session_version += 1
    await session.flush()


async def update_profile(
    session: AsyncSession, *, user: User, name: str, time_zone: str, locale: str
) -> None:
    errors = _check_profile(name, time_zone, locale)
    if errors:
        raise ValidationFailed(errors)
    user.name, user.time_zone, user.locale = name.strip(), time_zone, locale
    await session.flush()


async def set_disabled(session: AsyncSession, *, user: User, disabled: bool, now: datetime) -> None:
    """Disabling ends the user's sessions at their next request."""
    if disabled and user.disabled_at is None:
        user.disabled_at = now
        user.session_version += 1
    elif not disabled:
        user.disabled_at = None
    await session.flush()


async def list_users(session: AsyncSession) -> Sequence[User]:
    return (await session.scalars(select(User).order_by(User.email))).all()
