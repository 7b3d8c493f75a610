"""The connector pool: one connector per connection revision, rebuilt when the connection
changes, the old one closed once no push uses it, all closed at shutdown."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from orderbridge.connectors.pool import ConnectorPool
from orderbridge.connectors.port import ConnectionSettings
from orderbridge.connectors.registry import Registry
from orderbridge.outbound.guard import OutboundPolicy


class CountingConnector:
    platform = "counting"
    credential_fields = ("token",)
    option_fields = ()
    built: list[CountingConnector] = []

    def __init__(
        self, settings: ConnectionSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.closed = False
        CountingConnector.built.append(self)

    async def aclose(self) -> None:
        self.closed = True


CONNECTOR = CountingConnector  # what the registry looks for in a built-in module


def pool() -> ConnectorPool:
    CountingConnector.built = []
    registry = Registry(built_in={"counting": __name__}, entry_points=lambda: [])
    return ConnectorPool(registry, OutboundPolicy())


def settings(token: str) -> Callable[[], ConnectionSettings]:
    return lambda: ConnectionSettings("counting", "https://x.example", {"token": token})


async def test_one_connector_per_revision_is_reused() -> None:
    connectors = pool()

    async with connectors.connector("1", "r1", settings("a")) as first:
        pass
    async with connectors.connector("1", "r1", settings("ignored")) as again:
        pass

    assert first is again
    assert len(CountingConnector.built) == 1
    assert first.settings.credentials == {"token": "a"}  # type: ignore[attr-defined]


async def test_a_changed_connection_gets_a_new_connector_and_the_old_one_closes_after_use() -> None:
    connectors = pool()

    async with connectors.connector("1", "r1", settings("a")) as old:
        async with connectors.connector("1", "r2", settings("b")) as new:
            assert not old.closed  # type: ignore[attr-defined]  # still pushing
        assert new is not old
    assert old.closed  # type: ignore[attr-defined]
    assert not new.closed  # type: ignore[attr-defined]


async def test_every_connector_goes_through_the_guarded_transport_and_closes_at_shutdown() -> None:
    connectors = pool()
    async with connectors.connector("1", "r1", settings("a")):
        pass
    async with connectors.connector("2", "r1", settings("b")):
        pass

    await connectors.aclose()

    assert [type(c.transport).__name__ for c in CountingConnector.built] == [
        "GuardedTransport",
        "GuardedTransport",
    ]
    assert all(c.closed for c in CountingConnector.built)
