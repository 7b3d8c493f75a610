"""Magento 2 / Adobe Commerce connector (REST ``/rest/{store}/V1``).

**Why a direct order save, not the quote flow.** Magento's storefront path (cart, items,
shipping-information, payment-information) prices the order from Magento's own catalogue,
tax rules and carriers: it cannot book the amounts the buyer actually paid (our discount,
duties, the buyer's currency), and the placed order can only be tagged with our id in a
*second* call, so a timeout between the two would leave an untagged order that a retry
duplicates. ``POST /V1/orders`` (the documented ``salesOrderRepositoryV1`` save, what ERP
and marketplace imports use) writes the whole order in one request, amounts exactly as
pushed and our order id in the order's ``ext_order_id`` column, which
``GET /V1/orders?searchCriteria`` filters on: ``find_order`` is one search.

What that save skips, the connector does around it:

- **SKUs** are looked up first (``GET /V1/products`` searchCriteria ``sku in``); unknown
  ones are ``PRODUCT_NOT_FOUND`` before anything is written.
- **Stock**: a direct save reserves nothing (magento/inventory#1075,
  magento/magento2#26575), so the connector
  reads each item's stock (``GET /V1/stockItems/{sku}``), refuses ``OUT_OF_STOCK`` when a
  managed item without backorders has too little, and after the order is saved deducts
  the quantities (``PUT /V1/products/{sku}/stockItems/{itemId}``). The deduction is a
  read-then-write: two pushes of the same SKU at the same instant can both pass the check
  (Magento has no conditional stock update over REST). A failed deduction does not fail
  the push (the order exists); it is reported in ``PlatformOrder.details['stock']``.

**Auth**: an integration access token (``access_token``, sent as ``Bearer``; Magento
2.4.4+ needs "Allow OAuth Access Tokens to be used as standalone Bearer tokens") or an
admin user (``username`` + ``password``) exchanged at ``POST /V1/integration/admin/token``
for a 4-hour token, fetched again once when Magento answers 401. Magento 2.4 enables
two-factor authentication for admin users by default, and then refuses that exchange
("use the 2fa provider-specific endpoints"): such a store needs an integration token.

**Number**: the order's ``increment_id``, which Magento assigns on save; read with
``GET /V1/orders/{id}`` if the save's answer lacks it.

**Customer**: a guest order by default; with ``customer_mode=email`` the order joins the
customer account that has the buyer's e-mail (``GET /V1/customers/search``), if any.

**Errors**: Magento answers ``{"message": "... %1 ...", "parameters": [...]}``; the
message (placeholders filled) is classified into a ``RejectionCode``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from orderbridge.connectors.magento_rest import MagentoRest, search_criteria
from orderbridge.connectors.mapping import require_address_fields
from orderbridge.connectors.port import (
    ConnectionCheck,
    ConnectionSettings,
    PlatformOrder,
    PushAddress,
    PushError,
    PushOrder,
    PushRejected,
    PushRetryable,
    RejectionCode,
)

CENT = Decimal("0.01")
# Product types an order line cannot be saved as without its chosen child (a direct save
# has no quote to resolve the options).
_PARENT_TYPES = frozenset({"configurable", "bundle", "grouped"})
DEFAULT_PAYMENT_METHOD = "checkmo"
DEFAULT_SHIPPING_METHOD = "flatrate_flatrate"
ORDER_FIELDS = (
    "items[entity_id,increment_id,ext_order_id,state,status,grand_total,order_currency_code]"
)


# The address fields the platform requires -> the PushAddress attribute each comes from.
_REQUIRED_ADDRESS_FIELDS = {
    "street": "line1",
    "city": "city",
    "country": "country",
    "lastname": "last_name",
}


class MagentoConnector:
    """Pushes orders into Magento 2 through its admin REST API (see the module docstring)."""

    platform = "magento"
    credential_fields = ("access_token", "username", "password")
    # a token, or an admin user and password: either set will do (checked in __init__)
    optional_credential_fields = credential_fields
    option_fields = (
        "store_code",
        "store_id",
        "payment_method",
        "shipping_method",
        "order_status",
        "customer_mode",
    )

    def __init__(
        self, settings: ConnectionSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        credentials = settings.credentials
        if not credentials.get("access_token") and not (
            credentials.get("username") and credentials.get("password")
        ):
            raise ValueError("Magento needs an access_token, or a username and a password")
        self._options = settings.options
        self._rest = MagentoRest(settings, transport=transport)

    async def aclose(self) -> None:
        await self._rest.aclose()

    # -- the port --------------------------------------------------------------------

    async def create_order(self, order: PushOrder) -> PlatformOrder:
        require_address_fields(order, _REQUIRED_ADDRESS_FIELDS, required_by="Magento")
        wanted: dict[str, int] = {}
        for line in order.lines:
            wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
        products = await self._products(list(wanted))
        stock = dict(
            zip(
                wanted,
                await asyncio.gather(*(self._stock_item(sku) for sku in wanted)),
                strict=True,
            )
        )
        short = tuple(sku for sku, qty in wanted.items() if not _can_sell(stock[sku], qty))
        if short:
            raise PushRejected(
                RejectionCode.OUT_OF_STOCK,
                f"The requested qty is not available: {', '.join(short)}",
                skus=short,
            )
        entity = order_entity(order, products, self._options)
        if self._options.get("customer_mode") == "email":
            entity.update(await self._customer(order.email))
        answer = await self._rest.call("POST", "/orders", body={"entity": entity}, creating=True)
        created = await self._saved(answer)
        stock_note = await self._deduct_stock(wanted, stock)
        return PlatformOrder(created.id, created.number, {**created.details, "stock": stock_note})

    async def _saved(self, answer: Any) -> PlatformOrder:
        """The saved order from the save's answer; its ``increment_id`` read with
        ``GET /V1/orders/{id}`` when the answer lacks it (Magento assigns it on save)."""
        try:
            return _platform_order(answer)
        except (KeyError, TypeError, ValueError):
            pass
        try:
            entity_id = int(answer["entity_id"])
        except (KeyError, TypeError, ValueError):
            raise PushRetryable(
                "POST /V1/orders: answer without entity_id; the retry looks the order up by "
                "ext_order_id"
            ) from None
        try:
            saved = await self._rest.call("GET", f"/orders/{entity_id}", creating=True)
            return _platform_order(saved)
        except PushRejected as rejected:  # the order exists: the retry finds it
            raise PushRetryable(
                f"order {entity_id} was saved, reading it failed: {rejected.detail}"
            ) from None
        except (KeyError, TypeError, ValueError):
            raise PushRetryable(
                f"GET /V1/orders/{entity_id}: no increment_id; the retry looks the order up"
            ) from None

    async def find_order(self, order_id: str) -> PlatformOrder | None:
        params = {
            **search_criteria("ext_order_id", order_id, "eq"),
            "searchCriteria[pageSize]": "1",
            "fields": ORDER_FIELDS,
        }
        answer = await self._rest.call("GET", "/orders", params=params)
        try:
            items = answer["items"] or []  # Magento writes null for no items in some versions
            return _platform_order(items[0]) if items else None
        except (KeyError, TypeError, ValueError, IndexError):
            raise PushRejected(
                RejectionCode.INVALID_RESPONSE, f"GET /V1/orders: unexpected answer {answer!r:.200}"
            ) from None

    async def test_connection(self) -> ConnectionCheck:
        try:
            answer = await self._rest.call(
                "GET", "/orders", params={"searchCriteria[pageSize]": "1", "fields": "total_count"}
            )
            if not isinstance(answer, dict) or "total_count" not in answer:
                raise PushRejected(
                    RejectionCode.INVALID_RESPONSE,
                    f"GET /V1/orders: unexpected answer {answer!r:.200}",
                )
        except PushRejected as rejected:
            return ConnectionCheck(False, rejected.detail, rejected.code)
        except PushRetryable as retryable:
            return ConnectionCheck(False, retryable.detail)
        return ConnectionCheck(True, f"Magento answered; {answer['total_count']} orders visible")

    async def _customer(self, email: str) -> dict[str, Any]:
        """With ``customer_mode=email``: the order joins the customer account with the
        buyer's e-mail, if there is one; a guest order otherwise."""
        params = {
            **search_criteria("email", email, "eq"),
            "searchCriteria[pageSize]": "1",
            "fields": "items[id,group_id,email]",
        }
        answer = await self._rest.call("GET", "/customers/search", params=params)
        try:
            found = answer["items"] or []
            if not found:
                return {}
            return {
                "customer_id": int(found[0]["id"]),
                "customer_group_id": int(found[0].get("group_id", 1)),
                "customer_is_guest": 0,
            }
        except (KeyError, TypeError, ValueError, IndexError):
            raise PushRejected(
                RejectionCode.INVALID_RESPONSE,
                f"GET /V1/customers/search: unexpected answer {answer!r:.200}",
            ) from None

    # -- catalogue and stock -----------------------------------------------------------

    async def _products(self, skus: list[str]) -> dict[str, Mapping[str, Any]]:
        params = {
            **search_criteria("sku", ",".join(skus), "in"),
            "searchCriteria[pageSize]": str(len(skus)),
            "fields": "items[id,sku,name,type_id]",
        }
        answer = await self._rest.call("GET", "/products", params=params)
        try:
            found = {item["sku"]: item for item in answer["items"] or []}
        except (KeyError, TypeError):
            raise PushRejected(
                RejectionCode.INVALID_RESPONSE,
                f"GET /V1/products: unexpected answer {answer!r:.200}",
            ) from None
        missing = tuple(sku for sku in skus if sku not in found)
        if missing:
            raise PushRejected(
                RejectionCode.PRODUCT_NOT_FOUND,
                f"No Magento product with SKU {', '.join(missing)}",
                skus=missing,
            )
        parents = tuple(sku for sku in skus if found[sku].get("type_id") in _PARENT_TYPES)
        if parents:
            raise PushRejected(
                RejectionCode.PRODUCT_NOT_FOUND,
                f"{', '.join(parents)}: a configurable, bundle or grouped product is not "
                "sold by itself; the order must name the child product's SKU",
                skus=parents,
            )
        return found

    async def _stock_item(self, sku: str) -> Mapping[str, Any]:
        answer = await self._rest.call("GET", f"/stockItems/{quote(sku, safe='')}")
        if not isinstance(answer, dict) or "qty" not in answer or "item_id" not in answer:
            raise PushRejected(
                RejectionCode.INVALID_RESPONSE,
                f"GET /V1/stockItems/{sku}: unexpected {answer!r:.200}",
            )
        return answer

    async def _deduct_stock(
        self, wanted: Mapping[str, int], stock: Mapping[str, Mapping[str, Any]]
    ) -> str:
        """Every managed item's quantity, lowered at once; what happened, for the push log
        (a failure does not fail the push: the order exists)."""
        managed = [sku for sku in wanted if stock[sku].get("manage_stock", True)]
        results = await asyncio.gather(
            *(self._deduct(sku, wanted[sku], stock[sku]) for sku in managed),
            return_exceptions=True,
        )
        failed = [
            f"{sku}: {result.detail}"
            for sku, result in zip(managed, results, strict=True)
            if isinstance(result, PushError)
        ]
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, PushError):
                raise result
        if failed:
            return "not deducted for " + "; ".join(failed)
        if not managed:
            return "not managed"
        return "deducted " + ", ".join(f"{sku}-{wanted[sku]}" for sku in managed)

    async def _deduct(self, sku: str, qty: int, item: Mapping[str, Any]) -> None:
        left = Decimal(str(item["qty"])) - qty
        body = {"stockItem": {"qty": str(left), "is_in_stock": left > 0 or _backorders(item)}}
        await self._rest.call(
            "PUT", f"/products/{quote(sku, safe='')}/stockItems/{item['item_id']}", body=body
        )


def order_entity(
    order: PushOrder, products: Mapping[str, Mapping[str, Any]], options: Mapping[str, str]
) -> dict[str, Any]:
    """The ``OrderInterface`` entity for ``POST /V1/orders``. Amounts are written as
    decimal strings (Magento's service layer casts them; JSON floats would round). Base
    and order amounts are the same figures in ``order.currency``: the mapping already
    chose the currency, and Magento's rates are not ours to invent. Magento core has no
    duty or fee field, so duties are booked in the shipping amount and named in the
    comment."""
    totals = order.totals
    status = options.get("order_status", "processing")
    store_id = int(options["store_id"]) if options.get("store_id", "").isdigit() else 1
    shipping_amount = order.shipping.price + totals.duties
    note = order.note
    if totals.duties:
        note += f"\nShipping includes duties of {totals.duties} {order.currency}"
    amounts = {
        "subtotal": totals.items,
        "discount_amount": -totals.discount,
        "shipping_amount": shipping_amount,
        "shipping_tax_amount": order.shipping.tax,
        "shipping_incl_tax": shipping_amount + order.shipping.tax,
        "tax_amount": totals.tax,
        "grand_total": totals.total,
        "total_paid": totals.total,
        "total_due": Decimal("0.00"),
    }
    rates = (
        "base_to_global_rate",
        "base_to_order_rate",
        "store_to_base_rate",
        "store_to_order_rate",
    )
    carrier = f"{order.shipping.carrier} - " if order.shipping.carrier else ""
    return {
        **{
            f"{code}_currency_code": order.currency for code in ("base", "global", "order", "store")
        },
        **dict.fromkeys(rates, "1"),
        **{key: str(value) for key, value in amounts.items()},
        **{f"base_{key}": str(value) for key, value in amounts.items()},
        "ext_order_id": order.order_id,
        "store_id": store_id,
        "state": "processing" if status == "processing" else "new",
        "status": status,
        "customer_email": order.email,
        "customer_firstname": order.first_name,
        "customer_lastname": order.last_name,
        "customer_is_guest": 1,
        "customer_note": order.customer_note or "",
        "customer_note_notify": 0,
        "total_qty_ordered": sum(line.quantity for line in order.lines),
        "shipping_description": f"{carrier}{order.shipping.method}",
        "items": [_item(line, products[line.sku], store_id) for line in order.lines],
        "billing_address": _address(order.billing, "billing", order),
        "payment": {
            "method": options.get("payment_method", DEFAULT_PAYMENT_METHOD),
            "amount_ordered": str(totals.total),
            "base_amount_ordered": str(totals.total),
            "amount_paid": str(totals.total),
            "base_amount_paid": str(totals.total),
            "last_trans_id": order.payment_reference,
            "additional_information": [
                f"{order.source_name}: {order.payment_method} {order.payment_reference}"
            ],
        },
        "status_histories": [
            {"comment": note, "status": status, "is_customer_notified": 0, "is_visible_on_front": 0}
        ],
        "extension_attributes": {
            "shipping_assignments": [
                {
                    "shipping": {
                        "address": _address(order.shipping_address, "shipping", order),
                        "method": options.get("shipping_method", DEFAULT_SHIPPING_METHOD),
                    },
                    "items": [],
                }
            ]
        },
    }


def _item(line: Any, product: Mapping[str, Any], store_id: int) -> dict[str, Any]:
    row = line.unit_price * line.quantity
    amounts = {
        "price": line.unit_price,
        "original_price": line.unit_price,
        "row_total": row,
        "discount_amount": line.discount,
        "tax_amount": line.tax,
        "price_incl_tax": (line.unit_price + line.tax / line.quantity).quantize(CENT),
        "row_total_incl_tax": row + line.tax,
    }
    return {
        "sku": line.sku,
        "name": line.name,
        "product_id": product.get("id"),
        "product_type": product.get("type_id", "simple"),
        "store_id": store_id,
        "qty_ordered": line.quantity,
        "tax_percent": str(line.tax_rate),
        **{key: str(value) for key, value in amounts.items()},
        **{f"base_{key}": str(value) for key, value in amounts.items() if key != "original_price"},
    }


def _address(address: PushAddress, kind: str, order: PushOrder) -> dict[str, Any]:
    return {
        "address_type": kind,
        "firstname": address.first_name,
        "lastname": address.last_name,
        "company": address.company,
        "street": [part for part in (address.line1, address.line2) if part],
        "city": address.city,
        "postcode": address.postal_code,
        "region": address.region,
        "country_id": address.country,
        "telephone": address.phone or order.phone,
        "email": order.email,
    }


def _backorders(item: Mapping[str, Any]) -> bool:
    return bool(item.get("backorders")) and item.get("backorders") != "0"


def _can_sell(item: Mapping[str, Any], qty: int) -> bool:
    if not item.get("manage_stock", True) or _backorders(item):
        return True
    return bool(item.get("is_in_stock", True)) and Decimal(str(item["qty"])) >= qty


def _platform_order(entity: Any) -> PlatformOrder:
    details = {
        key: str(entity[key])
        for key in ("state", "status", "grand_total", "order_currency_code")
        if entity.get(key) is not None
    }
    number = entity["increment_id"]
    if not number:
        raise ValueError("no increment_id")
    return PlatformOrder(id=str(int(entity["entity_id"])), number=str(number), details=details)
