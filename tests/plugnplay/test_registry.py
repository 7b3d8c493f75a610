"""Platform name → connector: built-ins by module path, loaded lazily; third-party connectors
from installed packages through the ``orderbridge.connectors`` entry-point group. The
example package in tests/plugnplay/example_plugin is "installed" for these tests by putting
its distribution metadata (``*.dist-info`` with ``entry_points.txt``) on ``sys.path``,
which is what pip leaves in site-packages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from orderbridge.connectors.custom import CustomEndpointConnector
from orderbridge.connectors.registry import ENTRY_POINT_GROUP, Registry, UnknownPlatform
from tests.plugnplay.conftest import PlugAndPlay

EXAMPLE = Path(__file__).parent / "example_plugin"


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist_info = tmp_path / "acme_orderbridge-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-orderbridge\nVersion: 0.1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nacme = acme_orderbridge:AcmeConnector\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(EXAMPLE))


def entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_an_installed_plugin_is_found_through_its_entry_point(installed_plugin: None) -> None:
    registry = Registry()

    factory = registry.factory("acme")

    assert factory.platform == "acme"
    assert factory.credential_fields == ("api_key",)
    assert "acme" in registry.platforms()


def test_a_plugin_cannot_take_over_a_built_in_platform() -> None:
    registry = Registry(
        entry_points=lambda: [entry("custom", "tests.plugnplay.test_registry:NotAConnector")]
    )

    assert registry.factory("custom") is CustomEndpointConnector


def test_a_missing_built_in_module_makes_only_its_platform_unavailable() -> None:
    registry = Registry(
        built_in={
            "ghost": "orderbridge.connectors.ghost",
            "custom": "orderbridge.connectors.custom",
        },
        entry_points=lambda: [],
    )

    with pytest.raises(UnknownPlatform, match="not installed"):
        registry.factory("ghost")
    assert registry.platforms() == ["custom"]


def test_a_plugin_that_fails_to_load_or_is_no_factory_is_unavailable() -> None:
    registry = Registry(
        built_in={},
        entry_points=lambda: [
            entry("broken", "no_such_package_anywhere:Connector"),
            entry("odd", "tests.plugnplay.test_registry:NotAConnector"),
        ],
    )

    with pytest.raises(UnknownPlatform, match="failed to load"):
        registry.factory("broken")
    with pytest.raises(UnknownPlatform, match="not a connector factory"):
        registry.factory("odd")
    with pytest.raises(UnknownPlatform):
        registry.factory("neither")
    assert registry.platforms() == []


class NotAConnector:
    platform = "odd"


# ---- the plugin through the whole flow -----------------------------------------------------


class AcmeDesk:
    """The Acme order desk the example plugin talks to."""

    def __init__(self) -> None:
        self.orders: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/orders", self.create)
        app.router.add_get("/orders", self.find)
        return app

    async def create(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != "acme-key":
            return web.json_response({}, status=401)
        body = await request.json()
        order = {"id": len(self.orders) + 1, "ref": f"AC-{len(self.orders) + 1:05d}", **body}
        self.orders.append(order)
        return web.json_response(order, status=201)

    async def find(self, request: web.Request) -> web.Response:
        wanted = request.query.get("external_id")
        return web.json_response([o for o in self.orders if o["external_id"] == wanted])


@pytest.fixture
async def desk() -> AsyncIterator[tuple[AcmeDesk, str]]:
    desk = AcmeDesk()
    runner = web.AppRunner(desk.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield desk, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_an_order_is_pushed_through_an_installed_plugin(
    installed_plugin: None, pnp: PlugAndPlay, desk: tuple[AcmeDesk, str]
) -> None:
    acme, url = desk
    await pnp.connect(
        platform="acme",
        base_url=url,
        credentials={"api_key": "acme-key"},
        options={"warehouse": "north"},
    )

    order = await pnp.ready()

    [held] = acme.orders
    assert held["external_id"] == order["id"]
    assert order["status"] == "COMPLETED"
    assert order["external"] == {"order_id": "1", "order_number": "AC-00001"}
