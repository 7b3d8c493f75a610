"""Fixtures of the connector contract suite.

``fake`` is parametrised over every registered platform fake (platforms/__init__.py FAKES)
and runs it on loopback for the test; ``connector`` is that platform's connector, built the
way the push job builds it (``ConnectionSettings.platform`` -> factory), with a short
timeout so the fakes' stalls turn into timeouts quickly. ``make_connector`` builds more
(bad credentials, another URL); every connector built is closed after the test.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from orderbridge.connectors import registry
from orderbridge.connectors.port import ConnectionSettings, Connector, ConnectorFactory
from tests.connectors.fakes import PlatformFake
from tests.connectors.platforms import FAKES

TIMEOUT = 0.5  # seconds; the fakes stall far longer than this


def factory_for(platform: str) -> ConnectorFactory:
    """The connector factory for a platform, found the way the push job finds it (the
    plug & play registry). A platform whose connector module does not exist yet is
    skipped (its fake may land first); one that fails to import is an error."""
    try:
        return registry.factory(platform)
    except registry.UnknownPlatform as unknown:
        if "not installed" in str(unknown):
            pytest.skip(f"no connector module for {platform} yet")
        raise


MakeConnector = Callable[..., Connector]


@pytest.fixture(params=sorted(FAKES))
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[PlatformFake]:
    try:
        module = importlib.import_module(FAKES[request.param])
    except ModuleNotFoundError as missing:
        if missing.name != FAKES[request.param]:
            raise
        pytest.skip(f"the {request.param} fake is registered but not written yet")
    async with module.start() as running:
        yield running


@pytest.fixture
async def make_connector(fake: PlatformFake) -> AsyncIterator[MakeConnector]:
    built: list[Connector] = []

    def make(
        settings: ConnectionSettings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Connector:
        chosen = settings or fake.settings()
        chosen = dataclasses.replace(chosen, timeout=TIMEOUT, connect_timeout=TIMEOUT)
        connector = factory_for(chosen.platform)(chosen, transport=transport)
        built.append(connector)
        return connector

    yield make
    for connector in built:
        await connector.aclose()


@pytest.fixture
def connector(make_connector: MakeConnector) -> Connector:
    return make_connector()
