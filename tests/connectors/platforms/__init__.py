"""Platform fakes, by platform name: each module has ``async def start()`` (an async context
manager yielding a ``tests.connectors.fakes.PlatformFake``). Add one line per platform."""

from __future__ import annotations

FAKES: dict[str, str] = {
    "custom": "tests.connectors.platforms.custom",
    "shopify": "tests.connectors.platforms.shopify",
    "bigcommerce": "tests.connectors.platforms.bigcommerce",
    "magento": "tests.connectors.platforms.magento",
    "prestashop": "tests.connectors.platforms.prestashop",
    "woocommerce": "tests.connectors.platforms.woocommerce",
}
