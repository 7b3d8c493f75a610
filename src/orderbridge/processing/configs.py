"""Reading and writing a store's versioned processing configuration."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import Order, Store
from orderbridge.db.models import ProcessingConfig as ConfigRow
from orderbridge.errors import FieldError, ValidationFailed
from orderbridge.processing.config import ProcessingConfig
from orderbridge.schemas_common import has_control_characters

DEFAULT = ProcessingConfig()


async def current(session: AsyncSession, store_id: str) -> tuple[int, ProcessingConfig]:
    """The newest version; version 0 is the built-in default, before any change."""
    row = await session.scalar(
        select(ConfigRow)
        .where(ConfigRow.store_id == store_id)
        .order_by(ConfigRow.version.desc())
        .limit(1)
    )
    if row is None:
        return 0, DEFAULT
    return row.version, ProcessingConfig.model_validate(row.config)


async def version(session: AsyncSession, store_id: str, number: int) -> ProcessingConfig:
    if number == 0:
        return DEFAULT
    row = await session.get(ConfigRow, (store_id, number))
    assert row is not None, "orders only record versions that exist"
    return ProcessingConfig.model_validate(row.config)


async def for_order(session: AsyncSession, order: Order) -> ProcessingConfig:
    """The configuration the order is processed under: fixed at its first processing run,
    so that a change of configuration never changes an order half-way."""
    if order.processing_version is None:
        number, config = await current(session, order.store_id)
        order.processing_version = number
        return config
    return await version(session, order.store_id, order.processing_version)


class ConfigCache:
    """The configurations of a worker process's orders, parsed once per (store, version).

    A version is never changed once written (a change is a new version), so a parsed one
    stays valid for good; what must be asked each time is only which version is a store's
    current one, for orders processed for the first time: one query per batch of orders,
    whatever the number of stores in it."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._parsed: dict[tuple[str, int], ProcessingConfig] = {}

    async def for_orders(
        self, session: AsyncSession, orders: Sequence[Order]
    ) -> dict[int, ProcessingConfig]:
        """``for_order`` of each order, by order id (fixing the version of those processed
        for the first time)."""
        unfixed = {order.store_id for order in orders if order.processing_version is None}
        newest: dict[str, int] = {}
        if unfixed:
            rows = await session.execute(
                select(ConfigRow.store_id, func.max(ConfigRow.version))
                .where(ConfigRow.store_id.in_(sorted(unfixed)))
                .group_by(ConfigRow.store_id)
            )
            newest = {store_id: int(number) for store_id, number in rows.all()}
        found: dict[int, ProcessingConfig] = {}
        for order in orders:
            if order.processing_version is None:
                order.processing_version = newest.get(order.store_id, 0)
            found[order.id] = await self.version(session, order.store_id, order.processing_version)
        return found

    async def version(self, session: AsyncSession, store_id: str, number: int) -> ProcessingConfig:
        config = self._parsed.get((store_id, number))
        if config is None:
            config = await version(session, store_id, number)
            if len(self._parsed) >= self._size:
                self._parsed.clear()
            self._parsed[store_id, number] = config
        return config


def parse(document: dict[str, Any]) -> ProcessingConfig:
    """Validate a configuration document; ``ValidationFailed`` lists every field at fault
    by its dotted path (``fraud.rules.review_score``)."""
    controlled = list(_control_characters(document, ()))
    if controlled:
        raise ValidationFailed(
            [
                FieldError(path, "control characters (such as U+0000) are not allowed")
                for path in controlled
            ]
        )
    try:
        return ProcessingConfig.model_validate(document)
    except ValidationError as error:
        raise ValidationFailed(
            [
                FieldError(".".join(str(p) for p in e["loc"]), e["msg"], e["type"])
                for e in error.errors()
            ]
        ) from None


def _control_characters(value: Any, path: tuple[str, ...]) -> Iterator[str]:
    # No text of ours holds them (schemas_common); a block list entry with a NUL would
    # match nothing and cannot be shown.
    if isinstance(value, str):
        if has_control_characters(value):
            yield ".".join(path) or "body"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _control_characters(str(key), (*path, str(key)))
            yield from _control_characters(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _control_characters(item, (*path, str(index)))


async def save(
    session: AsyncSession,
    store_id: str,
    config: ProcessingConfig,
    *,
    now: datetime,
    by: str | None,
) -> int:
    """Store a new version (the primary key refuses a concurrent writer of the same one)."""
    newest = await session.scalar(
        select(func.max(ConfigRow.version)).where(ConfigRow.store_id == store_id)
    )
    number = int(newest or 0) + 1
    session.add(
        ConfigRow(
            store_id=store_id,
            version=number,
            config=config.model_dump(mode="json"),
            created_at=now,
            created_by=by,
        )
    )
    await session.flush()
    return number


async def replace(
    session: AsyncSession,
    store_id: str,
    config: ProcessingConfig,
    *,
    now: datetime,
    by: str | None,
) -> tuple[int, bool]:
    """The use case behind ``PUT /v2/stores/{id}/processing``: a new version, unless the
    configuration is the current one already (a repeated PUT writes nothing). Returns the
    version and whether it is new. Writers of one store queue on the store row, so two
    concurrent changes get two versions instead of a primary-key error."""
    await session.execute(select(Store.id).where(Store.id == store_id).with_for_update())
    number, existing = await current(session, store_id)
    if number > 0 and existing == config:
        return number, False
    return await save(session, store_id, config, now=now, by=by), True
