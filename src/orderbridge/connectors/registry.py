"""Platform name → connector factory.

Built-in connectors are imported lazily, by module path, the first time their platform is
asked for: a process that never pushes to Magento never imports it, and a connector module
that is missing or broken only makes its own platform unavailable.

Third-party connectors come from installed Python packages through the entry-point group
``orderbridge.connectors``: the entry point's name is the platform, its object the factory
(usually the connector class, see ``connectors.port.ConnectorFactory``)::

    # pyproject.toml of the integrator's package
    [project.entry-points."orderbridge.connectors"]
    acme = "acme_orderbridge:AcmeConnector"

A built-in platform name cannot be taken over by a plugin (a package installed by accident
must not reroute every Shopify order); docs/plug-and-play.md shows a whole plugin.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

from orderbridge.connectors.port import ConnectorFactory

log = logging.getLogger("orderbridge.connectors")

ENTRY_POINT_GROUP = "orderbridge.connectors"

BUILT_IN: dict[str, str] = {
    "vendure": "orderbridge.connectors.vendure",
    "shopify": "orderbridge.connectors.shopify",
    "bigcommerce": "orderbridge.connectors.bigcommerce",
    "magento": "orderbridge.connectors.magento",
    "woocommerce": "orderbridge.connectors.woocommerce",
    "prestashop": "orderbridge.connectors.prestashop",
    "custom": "orderbridge.connectors.custom",
}


class UnknownPlatform(LookupError):
    """No connector is available for the platform name (not built in, not installed, or
    its module failed to import: the log says which)."""

    def __init__(self, platform: str, why: str) -> None:
        super().__init__(f"no connector for platform {platform!r}: {why}")
        self.platform = platform


class Registry:
    """The factories of one process. ``entry_points`` is injectable for tests."""

    def __init__(
        self,
        built_in: dict[str, str] | None = None,
        entry_points: Callable[[], Iterable[EntryPoint]] | None = None,
    ) -> None:
        self.built_in = dict(BUILT_IN if built_in is None else built_in)
        self._entry_points = entry_points or _installed_entry_points
        self._factories: dict[str, ConnectorFactory] = {}

    def factory(self, platform: str) -> ConnectorFactory:
        found = self._factories.get(platform)
        if found is None:
            found = self._load(platform)
            self._factories[platform] = found
        return found

    def platforms(self) -> list[str]:
        """Every platform whose connector loads, sorted."""
        names = set(self.built_in) | {ep.name for ep in self._entry_points()}
        available = []
        for name in sorted(names):
            try:
                self.factory(name)
            except UnknownPlatform:
                continue
            available.append(name)
        return available

    def _load(self, platform: str) -> ConnectorFactory:
        module_path = self.built_in.get(platform)
        if module_path is not None:
            try:
                module = importlib.import_module(module_path)
            except ImportError as error:
                if getattr(error, "name", None) == module_path:
                    raise UnknownPlatform(platform, "its connector is not installed") from None
                log.exception("connector module %s failed to import", module_path)
                raise UnknownPlatform(platform, f"its module failed to import: {error}") from None
            return _factory_in(module, platform)
        for entry in self._entry_points():
            if entry.name != platform:
                continue
            try:
                loaded = entry.load()
            except Exception as error:
                log.exception("connector plugin %s (%s) failed to load", platform, entry.value)
                raise UnknownPlatform(platform, f"its plugin failed to load: {error}") from None
            return _checked(loaded, platform, entry.value)
        raise UnknownPlatform(platform, "not a built-in platform nor an installed plugin")


def _installed_entry_points() -> Iterable[EntryPoint]:
    return entry_points(group=ENTRY_POINT_GROUP)


def _factory_in(module: ModuleType, platform: str) -> ConnectorFactory:
    """A built-in module names its factory ``CONNECTOR``, or holds the one class whose
    ``platform`` is this platform."""
    declared = getattr(module, "CONNECTOR", None)
    if declared is not None:
        return _checked(declared, platform, module.__name__)
    for _, value in inspect.getmembers(module, inspect.isclass):
        own = value.__module__ == module.__name__
        if own and getattr(value, "platform", None) == platform and hasattr(value, "create_order"):
            return _checked(value, platform, module.__name__)
    raise UnknownPlatform(platform, f"{module.__name__} defines no connector for it")


def _checked(candidate: object, platform: str, where: str) -> ConnectorFactory:
    missing = [
        name
        for name in ("platform", "credential_fields", "option_fields")
        if not hasattr(candidate, name)
    ]
    if missing or not callable(candidate):
        raise UnknownPlatform(
            platform, f"{where} is not a connector factory (missing {', '.join(missing)})"
        )
    return candidate  # type: ignore[return-value]


_DEFAULT = Registry()


def factory(platform: str) -> ConnectorFactory:
    """The connector factory for ``platform`` from the process-wide registry; raises
    ``UnknownPlatform``."""
    return _DEFAULT.factory(platform)


def default_registry() -> Registry:
    return _DEFAULT
