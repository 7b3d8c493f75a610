"""Fixtures of the webhook tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from orderbridge.bootstrap import Container

# Children first: the shared truncation in tests/support/databases.py does not know these
# tables, and on SQLite (foreign keys on) their rows would block its DELETE FROM events.
WEBHOOK_TABLES = ("webhook_attempts", "webhook_deliveries", "webhook_secrets", "webhook_endpoints")


@pytest.fixture
async def container(container: Container) -> AsyncIterator[Container]:
    yield container
    async with container.db.transaction() as session:
        for table in WEBHOOK_TABLES:
            await session.execute(text(f"DELETE FROM {table}"))
