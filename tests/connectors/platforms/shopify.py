"""A Shopify shop that speaks the part of the Admin GraphQL API the connector uses.

Requests are parsed, validated and executed by graphql-core against the SDL below, a
subset of Shopify's schema written from its reference (same type, field and enum names,
same nullability), so an unknown field, a misspelt input or a missing required value fails
the way Shopify fails it: HTTP 200 with top-level ``errors``. What the fake enforces:

- ``X-Shopify-Access-Token`` on every call (else 401 with Shopify's ``errors`` string);
- ``productVariants(query: "sku:…")`` and ``orders(query: "source_identifier:…")``
  search (terms joined by ``OR``);
- ``orderCreate``: the variant must exist; every money amount in the order's currency
  (``shopMoney``) and presentment currency (``presentmentMoney``); with
  ``inventoryBehaviour: DECREMENT_OBEYING_POLICY`` stock is claimed or the order refused
  with ``INVENTORY_CLAIM_FAILED``; with the default ``BYPASS`` stock is left alone; a tax
  line needs its rate (``TAX_LINE_RATE_MISSING``); a shipping address needs a street,
  city and country; at most one discount code;
- every answer carries ``extensions.cost``; a throttled call answers ``THROTTLED`` with a
  ``throttleStatus`` whose restore time is the fault's ``retry_after``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web
from graphql import GraphQLError, OperationType, build_schema, parse
from graphql import graphql as execute_graphql

from orderbridge.connectors.port import ConnectionSettings
from tests.connectors.fakes import (
    FakeOrder,
    FakeState,
    RecordedRequest,
    json_response,
    read_json,
)

TOKEN = "shpat_0123456789abcdef0123456789abcdef"
API_VERSION = "2026-10"
SHOP_CURRENCY = "USD"
BUCKET = Decimal("2000.0")
RESTORE_RATE = Decimal("100.0")
QUERY_COST = 10
MUTATION_COST = 10

SDL = """
scalar Decimal
scalar DateTime
scalar URL

enum CurrencyCode { USD EUR GBP CAD CHF JPY AUD }
enum CountryCode { US FR DE GB CA CH JP AU ES IT NL BE }
enum OrderCreateUserErrorCode {
  FULFILLMENT_SERVICE_INVALID INVALID INVENTORY_CLAIM_FAILED PROCESSED_AT_INVALID
  REDUNDANT_CUSTOMER_FIELDS SHOP_DORMANT TAX_LINE_RATE_MISSING
}
enum OrderSortKeys {
  CREATED_AT CUSTOMER_NAME DESTINATION FINANCIAL_STATUS FULFILLMENT_STATUS ID
  ORDER_NUMBER PO_NUMBER PROCESSED_AT RELEVANCE TOTAL_ITEMS_QUANTITY TOTAL_PRICE
  UPDATED_AT
}
enum OrderCreateInputsInventoryBehavior {
  BYPASS DECREMENT_IGNORING_POLICY DECREMENT_OBEYING_POLICY
}
enum OrderCreateFinancialStatus {
  AUTHORIZED EXPIRED PAID PARTIALLY_PAID PARTIALLY_REFUNDED PENDING REFUNDED VOIDED
}
enum OrderTransactionKind {
  AUTHORIZATION CAPTURE CHANGE EMV_AUTHORIZATION REFUND SALE SUGGESTED_REFUND VOID
}
enum OrderTransactionStatus { AWAITING_RESPONSE ERROR FAILURE PENDING SUCCESS UNKNOWN }

input MoneyInput { amount: Decimal! currencyCode: CurrencyCode! }
input MoneyBagInput { shopMoney: MoneyInput! presentmentMoney: MoneyInput }
input OrderCreateTaxLineInput {
  channelLiable: Boolean
  priceSet: MoneyBagInput
  rate: Decimal!
  title: String!
}
input OrderCreateLineItemPropertyInput { name: String! value: String! }
input OrderCreateLineItemInput {
  fulfillmentService: String
  giftCard: Boolean
  priceSet: MoneyBagInput
  productId: ID
  properties: [OrderCreateLineItemPropertyInput!]
  quantity: Int!
  requiresShipping: Boolean
  sku: String
  taxable: Boolean
  taxLines: [OrderCreateTaxLineInput!]
  title: String
  variantId: ID
  variantTitle: String
  vendor: String
}
input OrderCreateShippingLineInput {
  code: String
  priceSet: MoneyBagInput!
  source: String
  taxLines: [OrderCreateTaxLineInput!]
  title: String!
}
input MailingAddressInput {
  address1: String
  address2: String
  city: String
  company: String
  countryCode: CountryCode
  firstName: String
  lastName: String
  phone: String
  provinceCode: String
  zip: String
}
input OrderCreateFixedDiscountCodeAttributesInput { amountSet: MoneyBagInput code: String! }
input OrderCreatePercentageDiscountCodeAttributesInput { code: String! percentage: Float }
input OrderCreateFreeShippingDiscountCodeAttributesInput { code: String! }
input OrderCreateDiscountCodeInput {
  freeShippingDiscountCode: OrderCreateFreeShippingDiscountCodeAttributesInput
  itemFixedDiscountCode: OrderCreateFixedDiscountCodeAttributesInput
  itemPercentageDiscountCode: OrderCreatePercentageDiscountCodeAttributesInput
}
input OrderCreateCustomAttributeInput { key: String! value: String! }
input OrderCreateUpsertCustomerAttributesInput {
  email: String
  firstName: String
  lastName: String
  phone: String
  note: String
  tags: [String!]
}
input OrderCreateAssociateCustomerAttributesInput { email: String id: ID }
input OrderCreateCustomerInput {
  toAssociate: OrderCreateAssociateCustomerAttributesInput
  toUpsert: OrderCreateUpsertCustomerAttributesInput
}
input OrderCreateOrderTransactionInput {
  amountSet: MoneyBagInput!
  authorizationCode: String
  deviceId: ID
  gateway: String
  giftCardId: ID
  kind: OrderTransactionKind
  locationId: ID
  processedAt: DateTime
  receiptJson: String
  status: OrderTransactionStatus
  test: Boolean
  userId: ID
}
input OrderCreateOrderInput {
  billingAddress: MailingAddressInput
  buyerAcceptsMarketing: Boolean
  closedAt: DateTime
  currency: CurrencyCode
  customAttributes: [OrderCreateCustomAttributeInput!]
  customer: OrderCreateCustomerInput
  discountCode: OrderCreateDiscountCodeInput
  email: String
  financialStatus: OrderCreateFinancialStatus
  lineItems: [OrderCreateLineItemInput!]
  name: String
  note: String
  phone: String
  poNumber: String
  presentmentCurrency: CurrencyCode
  processedAt: DateTime
  referringSite: URL
  shippingAddress: MailingAddressInput
  shippingLines: [OrderCreateShippingLineInput!]
  sourceIdentifier: String
  sourceName: String
  sourceUrl: URL
  tags: [String!]
  taxesIncluded: Boolean
  taxLines: [OrderCreateTaxLineInput!]
  test: Boolean
  transactions: [OrderCreateOrderTransactionInput!]
  userId: ID
}
input OrderCreateOptionsInput {
  inventoryBehaviour: OrderCreateInputsInventoryBehavior = BYPASS
  sendFulfillmentReceipt: Boolean = false
  sendReceipt: Boolean = false
}

type MoneyV2 { amount: Decimal! currencyCode: CurrencyCode! }
type MoneyBag { shopMoney: MoneyV2! presentmentMoney: MoneyV2! }
type Shop { name: String! currencyCode: CurrencyCode! myshopifyDomain: String! }
type Product { id: ID! title: String! }
type ProductVariant {
  id: ID!
  sku: String
  title: String!
  price: Decimal!
  inventoryQuantity: Int
  product: Product!
}
type ProductVariantConnection { nodes: [ProductVariant!]! }
type LineItem { id: ID! sku: String quantity: Int! title: String! }
type LineItemConnection { nodes: [LineItem!]! }
type Order {
  id: ID!
  name: String!
  legacyResourceId: String!
  sourceIdentifier: String
  sourceName: String
  email: String
  currencyCode: CurrencyCode!
  presentmentCurrencyCode: CurrencyCode!
  totalPriceSet: MoneyBag!
  subtotalPriceSet: MoneyBag!
  totalTaxSet: MoneyBag!
  totalShippingPriceSet: MoneyBag!
  totalDiscountsSet: MoneyBag!
  tags: [String!]!
  note: String
  lineItems(first: Int): LineItemConnection!
}
type OrderConnection { nodes: [Order!]! }
type OrderCreateUserError { code: OrderCreateUserErrorCode field: [String!] message: String! }
type OrderCreatePayload { order: Order userErrors: [OrderCreateUserError!]! }

type QueryRoot {
  shop: Shop!
  productVariants(first: Int, after: String, query: String): ProductVariantConnection!
  orders(
    first: Int, after: String, query: String, reverse: Boolean = false,
    sortKey: OrderSortKeys = PROCESSED_AT
  ): OrderConnection!
}
type Mutation {
  orderCreate(order: OrderCreateOrderInput!, options: OrderCreateOptionsInput): OrderCreatePayload
}
schema { query: QueryRoot mutation: Mutation }
"""

SCHEMA = build_schema(SDL)
SEARCH_TERM = re.compile(r'(\w+):("(?:[^"\\]|\\.)*"|\S+)')
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


def search_terms(query: str | None) -> list[tuple[str, str]]:
    """``field:value`` terms of a Shopify search (``OR`` between them, quotes removed)."""
    terms = []
    for name, raw in SEARCH_TERM.findall(query or ""):
        value = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\") if raw[0] == '"' else raw
        terms.append((name, value))
    return terms


@dataclass
class Variant:
    id: str
    sku: str
    price: Decimal
    stock: int


@dataclass
class ShopifyOrder:
    """What Shopify keeps of an order (the part the fake answers with)."""

    number: int
    source_identifier: str | None
    email: str | None
    currency: str
    presentment_currency: str
    lines: list[dict[str, Any]]
    subtotal: Decimal
    discount: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    presentment_total: Decimal | None
    tags: list[str]
    note: str | None
    source_name: str | None
    input: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"gid://shopify/Order/{5_000_000 + self.number}"

    @property
    def name(self) -> str:
        return f"#{self.number}"


def money_bag(
    amount: Decimal,
    currency: str,
    presentment: Decimal | None = None,
    presentment_currency: str | None = None,
) -> dict[str, Any]:
    shop = {"amount": str(amount), "currencyCode": currency}
    other = (
        {"amount": str(presentment), "currencyCode": presentment_currency}
        if presentment is not None and presentment_currency
        else shop
    )
    return {"shopMoney": shop, "presentmentMoney": other}


class UserError(Exception):
    def __init__(self, field: list[str], message: str, code: str = "INVALID") -> None:
        super().__init__(message)
        self.error = {"field": field, "message": message, "code": code}


class ShopifyFake:
    platform = "shopify"

    def __init__(self) -> None:
        self.state = FakeState()
        self.base_url = ""
        self.variants: dict[str, Variant] = {}
        self.held: list[ShopifyOrder] = []
        self._next_number = 1001

    # -- PlatformFake ---------------------------------------------------------------
    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            platform="shopify",
            base_url=self.base_url,
            credentials={"access_token": TOKEN},
            options={"api_version": API_VERSION},
        )

    def bad_credentials(self) -> ConnectionSettings:
        return ConnectionSettings(
            platform="shopify",
            base_url=self.base_url,
            credentials={"access_token": "shpat_revoked"},
            options={"api_version": API_VERSION},
        )

    def add_product(self, sku: str, *, stock: int, price: Decimal) -> None:
        number = self.state.next_id()
        self.variants[sku] = Variant(
            id=f"gid://shopify/ProductVariant/{40_000_000 + number}",
            sku=sku,
            price=price,
            stock=stock,
        )

    def fail_next(self, fault: Any) -> None:
        self.state.fail_next(fault)

    @property
    def orders(self) -> list[FakeOrder]:
        return [self._fake_order(order) for order in self.held]

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.log

    def stock(self, sku: str) -> int:
        return self.variants[sku].stock

    def _fake_order(self, order: ShopifyOrder) -> FakeOrder:
        by_id = {variant.id: variant for variant in self.variants.values()}
        skus = [
            (by_id[line["variantId"]].sku, line["quantity"])
            for line in order.lines
            if line.get("variantId") in by_id
        ]
        unit_prices = {
            by_id[line["variantId"]].sku: Decimal(line["priceSet"]["shopMoney"]["amount"])
            for line in order.lines
            if line.get("variantId") in by_id
        }
        return FakeOrder(
            id=order.id,
            number=order.name,
            external_ref=order.source_identifier,
            skus=skus,
            currency=order.currency,
            total=order.total,
            email=order.email or "",
            shipping=order.shipping,
            tax=order.tax,
            discount=order.discount,
            unit_prices=unit_prices,
        )

    # -- HTTP -----------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/admin/api/{version}/graphql.json", self.graphql)
        return app

    async def graphql(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("X-Shopify-Access-Token") != TOKEN:
            return json_response({"errors": INVALID_TOKEN}, status=401)
        try:
            body = await read_json(request)
            source = body["query"]
            variables = body.get("variables") or {}
            document = parse(source)
        except (ValueError, KeyError, TypeError, GraphQLError) as error:
            return json_response({"errors": [{"message": f"Parse error: {error}"}]}, status=400)
        is_create = (
            any(
                getattr(definition, "operation", None) is OperationType.MUTATION
                for definition in document.definitions
            )
            and "orderCreate" in source
        )
        cost = MUTATION_COST if is_create else QUERY_COST
        fault = self.state.take_fault() if is_create else None
        if fault is not None and fault.kind == "rate_limited":
            wait = Decimal(str(fault.retry_after or 1.0))
            available = Decimal(3)
            requested = available + wait * RESTORE_RATE
            return json_response(
                {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ],
                    "extensions": self._cost(requested, None, available),
                }
            )
        if fault is not None and fault.kind == "server_error":
            return web.Response(
                status=502,
                text="<html><body>502 Bad Gateway</body></html>",
                content_type="text/html",
            )
        if fault is not None and fault.kind == "timeout_before_create":
            await self.state.stall()
            return web.Response(status=504, text="stalled")
        result = await execute_graphql(
            SCHEMA, source, root_value=QueryRoot(self), variable_values=variables
        )
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        if result.data is not None:
            payload["data"] = result.data
        payload["extensions"] = self._cost(Decimal(cost), cost, BUCKET - cost)
        if fault is not None and fault.kind == "timeout_after_create":
            await self.state.stall()
        return json_response(payload)

    @staticmethod
    def _cost(requested: Decimal, actual: int | None, available: Decimal) -> dict[str, Any]:
        return {
            "cost": {
                "requestedQueryCost": int(requested)
                if requested == int(requested)
                else float(requested),
                "actualQueryCost": actual,
                "throttleStatus": {
                    "maximumAvailable": float(BUCKET),
                    "currentlyAvailable": float(available),
                    "restoreRate": float(RESTORE_RATE),
                },
            }
        }

    # -- what the resolvers answer (QueryRoot) ---------------------------------------
    def shop_node(self) -> dict[str, Any]:
        return {
            "name": "Orderbridge Test Shop",
            "currencyCode": SHOP_CURRENCY,
            "myshopifyDomain": "orderbridge-test.myshopify.com",
        }

    def variant_nodes(self, first: int | None, query: str | None) -> dict[str, Any]:
        wanted = {value for name, value in search_terms(query) if name == "sku"}
        nodes = [
            {
                "id": variant.id,
                "sku": variant.sku,
                "title": "Default Title",
                "price": str(variant.price),
                "inventoryQuantity": variant.stock,
                "product": {
                    "id": variant.id.replace("ProductVariant", "Product"),
                    "title": variant.sku,
                },
            }
            for variant in self.variants.values()
            if not wanted or variant.sku in wanted
        ]
        return {"nodes": nodes[: first or 50]}

    def order_nodes(
        self, first: int | None, query: str | None, *, newest_first: bool = False
    ) -> dict[str, Any]:
        wanted = {value for name, value in search_terms(query) if name == "source_identifier"}
        held = reversed(self.held) if newest_first else iter(self.held)
        nodes = [
            self._order_node(order)
            for order in held
            if not wanted or order.source_identifier in wanted
        ]
        return {"nodes": nodes[: first or 50]}

    def order_create(self, order: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        try:
            created = self._create(order, options.get("inventoryBehaviour") or "BYPASS")
        except UserError as refused:
            return {"order": None, "userErrors": [refused.error]}
        return {"order": self._order_node(created), "userErrors": []}

    # -- the platform's rules ----------------------------------------------------------
    def _create(self, given: dict[str, Any], inventory: str) -> ShopifyOrder:
        currency = given.get("currency") or SHOP_CURRENCY
        presentment = given.get("presentmentCurrency") or currency
        lines = given.get("lineItems") or []
        if not lines:
            raise UserError(["order", "lineItems"], "Line items can't be blank")
        subtotal = Decimal(0)
        tax = Decimal(0)
        claims: list[tuple[Variant, int]] = []
        for index, line in enumerate(lines):
            where = ["order", "lineItems", str(index)]
            variant = None
            if line.get("variantId") is not None:
                variant = next(
                    (v for v in self.variants.values() if v.id == line["variantId"]), None
                )
                if variant is None:
                    raise UserError([*where, "variantId"], "Variant does not exist")
            elif not line.get("title"):
                raise UserError([*where, "title"], "Title can't be blank for a custom item")
            quantity = int(line["quantity"])
            if quantity <= 0:
                raise UserError([*where, "quantity"], "Quantity must be greater than 0")
            price_set = line.get("priceSet")
            price = (
                self._amount(price_set, currency, presentment, [*where, "priceSet"])
                if price_set
                else (variant.price if variant else Decimal(0))
            )
            subtotal += price * quantity
            tax += self._tax_lines(line.get("taxLines"), currency, presentment, where)
            if variant is not None:
                claims.append((variant, quantity))
        shipping = Decimal(0)
        for index, shipping_line in enumerate(given.get("shippingLines") or []):
            where = ["order", "shippingLines", str(index)]
            shipping += self._amount(
                shipping_line["priceSet"], currency, presentment, [*where, "priceSet"]
            )
            tax += self._tax_lines(shipping_line.get("taxLines"), currency, presentment, where)
        tax += self._tax_lines(given.get("taxLines"), currency, presentment, ["order"])
        discount = Decimal(0)
        codes = given.get("discountCode") or {}
        if len([kind for kind, value in codes.items() if value]) > 1:
            raise UserError(
                ["order", "discountCode"], "Only one type of discount can be applied to an order"
            )
        fixed = codes.get("itemFixedDiscountCode")
        if fixed and fixed.get("amountSet"):
            discount = self._amount(
                fixed["amountSet"],
                currency,
                presentment,
                ["order", "discountCode", "itemFixedDiscountCode", "amountSet"],
            )
        for role in ("shippingAddress", "billingAddress"):
            address = given.get(role)
            if address is None:
                continue
            for key in ("address1", "city", "countryCode"):
                if not address.get(key):
                    raise UserError(["order", role, key], f"{key} can't be blank")
        if inventory != "BYPASS":
            for variant, quantity in claims:
                if inventory == "DECREMENT_OBEYING_POLICY" and quantity > variant.stock:
                    index = next(
                        i for i, line in enumerate(lines) if line.get("variantId") == variant.id
                    )
                    raise UserError(
                        ["order", "lineItems", str(index)],
                        f"Unable to claim inventory for {variant.sku}: "
                        f"{variant.stock} available, {quantity} requested",
                        "INVENTORY_CLAIM_FAILED",
                    )
            for variant, quantity in claims:
                variant.stock -= quantity
        presentment_total = None
        if presentment != currency:
            presentment_total = sum(
                (
                    Decimal(t["amountSet"]["presentmentMoney"]["amount"])
                    for t in given.get("transactions") or []
                    if t["amountSet"].get("presentmentMoney")
                ),
                Decimal(0),
            )
        order = ShopifyOrder(
            number=self._next_number,
            source_identifier=given.get("sourceIdentifier"),
            email=given.get("email"),
            currency=currency,
            presentment_currency=presentment,
            lines=lines,
            subtotal=subtotal,
            discount=discount,
            shipping=shipping,
            tax=tax,
            total=subtotal - discount + shipping + tax,
            presentment_total=presentment_total,
            tags=list(given.get("tags") or []),
            note=given.get("note"),
            source_name=given.get("sourceName"),
            input=given,
        )
        self._next_number += 1
        self.held.append(order)
        return order

    @staticmethod
    def _amount(bag: dict[str, Any], currency: str, presentment: str, where: list[str]) -> Decimal:
        shop = bag["shopMoney"]
        if shop["currencyCode"] != currency:
            raise UserError(
                [*where, "shopMoney", "currencyCode"],
                f"Currency must be the order's currency {currency}",
            )
        other = bag.get("presentmentMoney")
        if other is not None and other["currencyCode"] != presentment:
            raise UserError(
                [*where, "presentmentMoney", "currencyCode"],
                f"Currency must be the presentment currency {presentment}",
            )
        return Decimal(str(shop["amount"]))

    def _tax_lines(
        self,
        tax_lines: list[dict[str, Any]] | None,
        currency: str,
        presentment: str,
        where: list[str],
    ) -> Decimal:
        total = Decimal(0)
        for index, tax_line in enumerate(tax_lines or []):
            here = [*where, "taxLines", str(index)]
            if tax_line.get("rate") is None:
                raise UserError([*here, "rate"], "Rate is missing", "TAX_LINE_RATE_MISSING")
            if tax_line.get("priceSet"):
                total += self._amount(
                    tax_line["priceSet"], currency, presentment, [*here, "priceSet"]
                )
        return total

    def _order_node(self, order: ShopifyOrder) -> dict[str, Any]:
        def bag(amount: Decimal) -> dict[str, Any]:
            return money_bag(amount, order.currency)

        return {
            "id": order.id,
            "name": order.name,
            "legacyResourceId": str(5_000_000 + order.number),
            "sourceIdentifier": order.source_identifier,
            "sourceName": order.source_name,
            "email": order.email,
            "currencyCode": order.currency,
            "presentmentCurrencyCode": order.presentment_currency,
            "totalPriceSet": money_bag(
                order.total,
                order.currency,
                order.presentment_total,
                order.presentment_currency,
            ),
            "subtotalPriceSet": bag(order.subtotal),
            "totalTaxSet": bag(order.tax),
            "totalShippingPriceSet": bag(order.shipping),
            "totalDiscountsSet": bag(order.discount),
            "tags": order.tags,
            "note": order.note,
            "lineItems": lambda info, first=None: {"nodes": []},
        }


class QueryRoot:
    """The root value graphql-core resolves against: Shopify's field names, the fake's
    state (the fake's own ``orders`` is the contract's view, so the two are kept apart)."""

    def __init__(self, fake: ShopifyFake) -> None:
        self.fake = fake

    def shop(self, info: Any) -> dict[str, Any]:
        return self.fake.shop_node()

    def productVariants(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        query: str | None = None,
    ) -> dict[str, Any]:
        return self.fake.variant_nodes(first, query)

    def orders(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        query: str | None = None,
        reverse: bool = False,
        sortKey: str = "PROCESSED_AT",
    ) -> dict[str, Any]:
        return self.fake.order_nodes(first, query, newest_first=reverse)

    def orderCreate(
        self, info: Any, order: dict[str, Any], options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return self.fake.order_create(order, options or {})


@asynccontextmanager
async def start() -> AsyncIterator[ShopifyFake]:
    fake = ShopifyFake()
    async with fake.state.serve(fake.app()) as url:
        fake.base_url = url
        yield fake
