"""A real Vendure 3.7 for the connector's live tests and the push benchmark.

``tests/vendure/server`` holds the server (``index.js``) and its exact dependency tree
(``package.json`` + ``package-lock.json``: @vendure/core 3.7.3 on sql.js, wasm, nothing to
compile). The first run installs it with ``npm ci`` into a cache outside the clone,
``${ORDERBRIDGE_CACHE_DIR:-~/.cache/orderbridge}/vendure/<hash of the lockfile>``; later
runs reuse it. Installs are guarded against each other (a file lock: parallel pytest
sessions, xdist workers, the benchmark) and against interruption (``npm ci`` runs in a
temporary folder renamed into place only once it succeeded).

A fresh Vendure has no countries, zones, taxes, shipping or products, so a seed step
creates them (idempotently: it looks each one up first). The seeded database file is cached
next to the install, keyed by the server's config and the catalog below, so that later
starts copy it and skip both the schema creation and the seed (about 2 s instead of 6).

Node or npm missing, or the npm registry unreachable: the tests are skipped locally, and
fail where ``ORDERBRIDGE_REQUIRE_VENDURE`` or ``ORDERBRIDGE_REQUIRE_POSTGRES`` is set (CI).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.localstripe import free_loopback_port

SERVER_DIR = Path(__file__).resolve().parents[1] / "vendure" / "server"
ADMIN_USER = "orderbridge"
ADMIN_PASSWORD = "orderbridge-test-password"  # a throwaway superadmin on loopback only
SHIPPING_CODE = "standard"
SHIPPING_RATE = 500  # minor units, tax excluded

COUNTRIES = {
    "FR": "France",
    "DE": "Germany",
    "IT": "Italy",
    "NL": "Netherlands",
    "GB": "United Kingdom",
    "ES": "Spain",
    "US": "United States",
}
CURRENCIES = ("USD", "EUR")
TAX_RATE = 20  # percent, the default tax category in the one zone


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: int  # minor units, the same figure in every currency of CURRENCIES
    stock: int


CATALOG = (
    Product("WIDGET-1", "Widget", 1999, 1_000_000),
    Product("WIDGET-OOS", "Widget (sold out)", 1999, 0),
    Product("WIDGET-LOW", "Widget (last few)", 1999, 3),
    # The SKUs of orderbridge.demo.sample_order (end-to-end tests, the push benchmark) and
    # of tests/connectors/orders.py.
    Product("TSHIRT-BLUE-M", "Organic cotton T-shirt", 2990, 1_000_000),
    Product("SNEAKER-42", "Canvas sneakers", 7900, 1_000_000),
    Product("MUG-STONE", "Stoneware mug", 1850, 1_000_000),
    Product("SCARF-WOOL", "Merino scarf", 4500, 1_000_000),
    Product("BOOK-ATLAS", "Illustrated atlas", 3400, 1_000_000),
    Product("TSHIRT-RED-M", "T-shirt red M", 2500, 1_000_000),
    Product("MUG-BLUE", "Mug blue", 1250, 1_000_000),
)

REQUIRED = any(
    os.environ.get(name, "") not in ("", "0", "false")
    for name in ("ORDERBRIDGE_REQUIRE_VENDURE", "ORDERBRIDGE_REQUIRE_POSTGRES")
)


class VendureUnavailable(RuntimeError):
    """Node, npm or the registry is missing: a skip locally, a failure in CI."""


def cache_root() -> Path:
    configured = os.environ.get("ORDERBRIDGE_CACHE_DIR")
    base = Path(configured) if configured else Path.home() / ".cache" / "orderbridge"
    return base / "vendure"


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(hashlib.sha256(part).digest())
    return hasher.hexdigest()[:16]


def install_key() -> str:
    return _digest(
        (SERVER_DIR / "package.json").read_bytes(), (SERVER_DIR / "package-lock.json").read_bytes()
    )


def seed_key() -> str:
    catalog = json.dumps(
        [COUNTRIES, CURRENCIES, TAX_RATE, SHIPPING_CODE, SHIPPING_RATE, ADMIN_USER, CATALOG],
        default=repr,
    )
    return _digest((SERVER_DIR / "index.js").read_bytes(), catalog.encode())


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_installed(log: Any = None) -> Path:
    """The cached install (its ``node_modules``), made by ``npm ci`` on first use."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise VendureUnavailable(f"{tool} is not installed (Vendure needs Node.js 20+ and npm)")
    root = cache_root()
    target = root / install_key()
    if (target / "node_modules").is_dir():
        return target
    with _locked(root / f"{target.name}.lock"):
        if (target / "node_modules").is_dir():  # another process installed it meanwhile
            return target
        staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.partial-", dir=root))
        try:
            for name in ("package.json", "package-lock.json"):
                shutil.copy2(SERVER_DIR / name, staging / name)
            if log:
                log(f"installing Vendure into {target} (npm ci, about 20 s)")
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=staging,
                capture_output=True,
                text=True,
                timeout=600,
                env={**os.environ, "CI": "true"},
            )
            if done.returncode != 0:
                raise VendureUnavailable(f"npm ci failed: {(done.stderr or done.stdout)[-2000:]}")
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass
class VendureServer:
    """One running Vendure: its Admin API URL and the superadmin's credentials."""

    admin_url: str
    process: subprocess.Popen[bytes]
    log: Path
    work_dir: Path
    username: str = ADMIN_USER
    password: str = ADMIN_PASSWORD
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """SIGTERM (Vendure shuts down cleanly on it), SIGKILL after 10 s."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


def _spawn(
    install: Path, database: Path, work_dir: Path, *, autosave: bool = False
) -> VendureServer:
    port = free_loopback_port()
    log = work_dir / "vendure.log"
    env = {
        **os.environ,
        "NODE_PATH": str(install / "node_modules"),
        "VENDURE_DISABLE_TELEMETRY": "true",
        "VENDURE_PORT": str(port),
        "VENDURE_DB_FILE": str(database),
        "VENDURE_ADMIN_USER": ADMIN_USER,
        "VENDURE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "VENDURE_DB_AUTOSAVE": "true" if autosave else "false",
        # Our end of the pipe closes when this process ends, however it ends: Vendure
        # then stops too (index.js).
        "VENDURE_EXIT_WITH_STDIN": "true",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["node", str(SERVER_DIR / "index.js")],
            cwd=work_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE,
        )
    return VendureServer(f"http://127.0.0.1:{port}/admin-api", process, log, work_dir)


def _wait_until_ready(server: VendureServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"Vendure exited during start-up:\n{server.log_tail()}")
            try:
                answer = client.post(server.admin_url, json={"query": "{ __typename }"})
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            if answer.status_code == 200:
                return
            time.sleep(0.1)
    raise TimeoutError(f"Vendure did not answer within {timeout} s:\n{server.log_tail()}")


def start(*, timeout: float = 90.0, log: Any = None) -> VendureServer:
    """A seeded Vendure on a free loopback port, on its own copy of the seeded database."""
    install = ensure_installed(log)
    seeded = _seeded_database(install, timeout, log)
    work_dir = Path(tempfile.mkdtemp(prefix="orderbridge-vendure-"))
    database = work_dir / "vendure.sqlite"
    shutil.copyfile(seeded, database)
    server = _spawn(install, database, work_dir)
    try:
        _wait_until_ready(server, timeout)
        seed(server)  # finds everything in place: a cheap check that the copy is whole
    except BaseException:
        server.stop()
        raise
    return server


def start_or_skip() -> VendureServer:
    """``start`` for a pytest fixture: a missing Node/npm/registry skips the tests, or fails
    them where Vendure is required (CI)."""
    import pytest

    try:
        return start()
    except VendureUnavailable as missing:
        if REQUIRED:
            pytest.fail(f"Vendure is required here but unavailable: {missing}", pytrace=False)
        pytest.skip(f"Vendure unavailable: {missing}")


def _seeded_database(install: Path, timeout: float, log: Any) -> Path:
    target = install / "databases" / f"seeded-{seed_key()}.sqlite"
    if target.is_file():
        return target
    with _locked(install / "databases.lock"):
        if target.is_file():
            return target
        target.parent.mkdir(exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix="orderbridge-vendure-seed-"))
        database = work_dir / "vendure.sqlite"
        if log:
            log("creating and seeding the Vendure database")
        server = _spawn(install, database, work_dir, autosave=True)
        try:
            _wait_until_ready(server, timeout)
            seed(server)
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=10)
            staging = target.with_suffix(".partial")
            shutil.copyfile(database, staging)
            staging.rename(target)
        finally:
            server.stop()
    return target


# ---------------------------------------------------------------------------------------
# Seed: Admin API calls, each preceded by a look-up so that running it twice is harmless.


class AdminClient:
    """A tiny synchronous Admin API client for the seed and for test assertions."""

    def __init__(self, server: VendureServer) -> None:
        self._http = httpx.Client(timeout=30.0)
        self.url = server.admin_url
        answer = self._http.post(
            self.url,
            json={
                "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p)"
                " { __typename } }",
                "variables": {"u": server.username, "p": server.password},
            },
        )
        answer.raise_for_status()
        self._http.headers["Authorization"] = f"Bearer {answer.headers['vendure-auth-token']}"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        answer = self._http.post(self.url, json={"query": query, "variables": variables})
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        if body.get("errors"):
            raise RuntimeError(f"Vendure: {body['errors']}")
        data: dict[str, Any] = body["data"]
        return data

    def order_by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self(
            """query($e: String!) { orders(options: {filter: {externalId: {eq: $e}}}) {
                items { id code state active totalWithTax currencyCode
                  customer { emailAddress firstName lastName }
                  shippingAddress { fullName streetLine1 city postalCode countryCode }
                  billingAddress { fullName streetLine1 city postalCode countryCode }
                  lines { quantity productVariant { sku } }
                  payments { method state amount metadata transactionId }
                  customFields { externalId } } } }""",
            e=external_id,
        )["orders"]["items"]
        return items

    def orders_in_state(self, state: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self(
            """query($s: String!) { orders(options: {filter: {state: {eq: $s}}, take: 1000}) {
                items { id code customFields { externalId } } } }""",
            s=state,
        )["orders"]["items"]
        return items

    def variant_id(self, sku: str) -> str:
        items = self(
            """query($s: String!) { productVariants(options: {filter: {sku: {eq: $s}}}) {
                items { id } } }""",
            s=sku,
        )["productVariants"]["items"]
        found: str = items[0]["id"]
        return found

    def stock(self, sku: str) -> dict[str, int]:
        items = self(
            """query($s: String!) { productVariants(options: {filter: {sku: {eq: $s}}}) {
                items { stockOnHand stockAllocated } } }""",
            s=sku,
        )["productVariants"]["items"]
        found: dict[str, int] = items[0]
        return found


def _checked(result: dict[str, Any], what: str) -> dict[str, Any]:
    if "errorCode" in result:
        raise RuntimeError(f"seeding Vendure, {what}: {result['errorCode']} {result['message']}")
    return result


def seed(server: VendureServer) -> None:
    with AdminClient(server) as admin:
        zone_id = _seed_zone(admin, _seed_countries(admin))
        _checked(
            admin(
                """mutation($i: UpdateChannelInput!) { updateChannel(input: $i) {
                    __typename ... on ErrorResult { errorCode message } } }""",
                i={
                    "id": admin("{ activeChannel { id } }")["activeChannel"]["id"],
                    "defaultTaxZoneId": zone_id,
                    "defaultShippingZoneId": zone_id,
                    "defaultCurrencyCode": CURRENCIES[0],
                    "availableCurrencyCodes": list(CURRENCIES),
                },
            )["updateChannel"],
            "channel",
        )
        category_id = _seed_tax(admin, zone_id)
        _seed_shipping(admin)
        _seed_products(admin, category_id)


def _seed_countries(admin: AdminClient) -> list[str]:
    found = admin("{ countries(options: {take: 500}) { items { id code } } }")["countries"]
    existing = {c["code"]: c["id"] for c in found["items"]}
    for code, name in COUNTRIES.items():
        if code not in existing:
            existing[code] = admin(
                """mutation($i: CreateCountryInput!) { createCountry(input: $i) { id } }""",
                i={
                    "code": code,
                    "enabled": True,
                    "translations": [{"languageCode": "en", "name": name}],
                },
            )["createCountry"]["id"]
    return [existing[code] for code in COUNTRIES]


def _seed_zone(admin: AdminClient, country_ids: list[str]) -> str:
    for zone in admin("{ zones { items { id name members { id } } } }")["zones"]["items"]:
        if zone["name"] == "Default":
            missing = set(country_ids) - {m["id"] for m in zone["members"]}
            if missing:
                admin(
                    """mutation($z: ID!, $m: [ID!]!) { addMembersToZone(zoneId: $z,
                        memberIds: $m) { id } }""",
                    z=zone["id"],
                    m=sorted(missing),
                )
            zone_id: str = zone["id"]
            return zone_id
    created: str = admin(
        """mutation($i: CreateZoneInput!) { createZone(input: $i) { id } }""",
        i={"name": "Default", "memberIds": country_ids},
    )["createZone"]["id"]
    return created


def _seed_tax(admin: AdminClient, zone_id: str) -> str:
    categories = admin("{ taxCategories { items { id name } } }")["taxCategories"]["items"]
    category_id = next((c["id"] for c in categories if c["name"] == "Standard"), None)
    if category_id is None:
        category_id = admin(
            """mutation { createTaxCategory(input: {name: "Standard", isDefault: true}) { id } }"""
        )["createTaxCategory"]["id"]
    rates = admin("{ taxRates { items { name } } }")["taxRates"]["items"]
    if not any(r["name"] == "Standard" for r in rates):
        admin(
            """mutation($i: CreateTaxRateInput!) { createTaxRate(input: $i) { id } }""",
            i={
                "name": "Standard",
                "enabled": True,
                "value": TAX_RATE,
                "categoryId": category_id,
                "zoneId": zone_id,
            },
        )
    found: str = category_id
    return found


def _seed_shipping(admin: AdminClient) -> None:
    methods = admin("{ shippingMethods { items { code } } }")["shippingMethods"]["items"]
    if any(m["code"] == SHIPPING_CODE for m in methods):
        return
    admin(
        """mutation($i: CreateShippingMethodInput!) { createShippingMethod(input: $i) { id } }""",
        i={
            "code": SHIPPING_CODE,
            "fulfillmentHandler": "manual-fulfillment",
            "checker": {
                "code": "default-shipping-eligibility-checker",
                "arguments": [{"name": "orderMinimum", "value": "0"}],
            },
            "calculator": {
                "code": "default-shipping-calculator",
                "arguments": [
                    {"name": "rate", "value": str(SHIPPING_RATE)},
                    {"name": "includesTax", "value": "exclude"},
                    {"name": "taxRate", "value": str(TAX_RATE)},
                ],
            },
            "translations": [
                {"languageCode": "en", "name": "Standard shipping", "description": ""}
            ],
        },
    )


def _seed_products(admin: AdminClient, category_id: str) -> None:
    existing = {
        v["sku"]
        for v in admin(
            """query($s: [String!]!) { productVariants(options: {filter: {sku: {in: $s}},
                take: 100}) { items { sku } } }""",
            s=[p.sku for p in CATALOG],
        )["productVariants"]["items"]
    }
    for product in CATALOG:
        if product.sku in existing:
            continue
        # One product per variant: a second option-less variant on a product is refused.
        product_id = admin(
            """mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }""",
            i={
                "enabled": True,
                "translations": [
                    {
                        "languageCode": "en",
                        "name": product.name,
                        "slug": product.sku.lower(),
                        "description": product.name,  # required in practice (NOT NULL)
                    }
                ],
            },
        )["createProduct"]["id"]
        admin(
            """mutation($i: [CreateProductVariantInput!]!) {
                createProductVariants(input: $i) { id } }""",
            i=[
                {
                    "productId": product_id,
                    "sku": product.sku,
                    "price": product.price,
                    "stockOnHand": product.stock,
                    "taxCategoryId": category_id,
                    "translations": [{"languageCode": "en", "name": product.name}],
                }
            ],
        )
    # A price in every currency of the channel (createProductVariants keeps only the
    # channel's default one); without it an order in that currency cannot take the item.
    variants = admin(
        """query($s: [String!]!) { productVariants(options: {filter: {sku: {in: $s}},
            take: 100}) { items { id sku prices { currencyCode } } } }""",
        s=[p.sku for p in CATALOG],
    )["productVariants"]["items"]
    prices = {p.sku: p.price for p in CATALOG}
    missing = [
        {
            "id": v["id"],
            "prices": [{"currencyCode": c, "price": prices[v["sku"]]} for c in CURRENCIES],
        }
        for v in variants
        if {p["currencyCode"] for p in v["prices"]} != set(CURRENCIES)
    ]
    if missing:
        admin(
            """mutation($i: [UpdateProductVariantInput!]!) {
                updateProductVariants(input: $i) { id } }""",
            i=missing,
        )
