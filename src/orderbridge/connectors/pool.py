"""One connector per store connection, reused by every push of the process.

Connectors hold HTTP clients (connection pools, TLS sessions, a platform's access token),
so building one per job would pay a TLS handshake per order. The pool keys each connector
by the store and the connection's revision (its creation time and ``version``, bumped on
every change): a changed or re-created connection gets a new connector, and the old one
is closed once the pushes using it have finished. ``aclose`` (from ``Container.close``)
closes them all.

Every connector's client goes through the SSRF guard (``connectors.transport``), unless a
``transport`` is given (tests, the benchmark).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from orderbridge.connectors.port import ConnectionSettings, Connector
from orderbridge.connectors.registry import Registry
from orderbridge.connectors.transport import GuardedTransport
from orderbridge.db.models import StoreConnection
from orderbridge.outbound.guard import OutboundPolicy

log = logging.getLogger("orderbridge.connectors")


@dataclass
class _Entry:
    revision: str
    connector: Connector
    users: int = 0
    retired: bool = False


class ConnectorPool:
    def __init__(
        self,
        registry: Registry,
        policy: OutboundPolicy,
        transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.registry = registry
        self.policy = policy
        self._transport = transport or (lambda: GuardedTransport(policy))
        self._entries: dict[str, _Entry] = {}
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def connector(
        self, store_id: str, revision: str, settings: Callable[[], ConnectionSettings]
    ) -> AsyncIterator[Connector]:
        """The store's connector for this revision of its connection (``revision_of``),
        built on first use; ``settings`` is only called then (it decrypts the
        credentials)."""
        async with self._lock:
            entry = self._entries.get(store_id)
            if entry is None or entry.revision != revision:
                if entry is not None:
                    await self._retire(entry)
                built = settings()
                factory = self.registry.factory(built.platform)
                entry = _Entry(revision, factory(built, transport=self._transport()))
                self._entries[store_id] = entry
            entry.users += 1
        try:
            yield entry.connector
        finally:
            entry.users -= 1
            if entry.retired and entry.users == 0:
                await _close(entry.connector)

    async def _retire(self, entry: _Entry) -> None:
        entry.retired = True
        if entry.users == 0:
            await _close(entry.connector)

    async def aclose(self) -> None:
        entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            await _close(entry.connector)


def revision_of(connection: StoreConnection) -> str:
    return f"{connection.created_at.isoformat()}#{connection.version}"


async def _close(connector: Connector) -> None:
    try:
        await connector.aclose()
    except Exception:
        log.exception("closing the %s connector failed", connector.platform)
