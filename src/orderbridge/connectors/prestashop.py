"""PrestaShop connector (webservice, ``/api``).

**Auth and formats.** The webservice key as the HTTP Basic user with an empty password;
every request asks ``output_format=JSON``; writes are XML (``<prestashop><cart>…``), which
is what the webservice reads.

**The order**, as PrestaShop builds one: an order is made *from a cart* by the payment
module's ``validateOrder`` (``POST /api/orders``), so the connector first resolves or
creates what the cart points at, then the cart, then the order:

1. currency (``currencies`` by ISO code: ``CURRENCY_UNSUPPORTED`` if the shop has none),
   language (``languages`` by ISO code, else ``id_lang``, default 1), the countries of
   both addresses (``INVALID_ADDRESS`` if unknown) and the carrier (``id_carrier`` option,
   else the first active carrier);
2. products by ``reference`` (our SKU), else combinations by ``reference`` (a size or
   colour of a product; ``PRODUCT_NOT_FOUND`` if neither), and their
   ``stock_availables``: PrestaShop turns an order it cannot stock into a backorder
   rather than refusing it, so the connector refuses ``OUT_OF_STOCK`` itself when the
   quantity is short and the product does not allow ordering out of stock;
3. the customer by e-mail (created if missing, with a random password: the buyer never
   logs in with it), and new delivery and invoice addresses (PrestaShop keeps addresses
   immutable once an order uses them);
4. the cart, **tagged with our order id in ``gift_message``** (``orderbridge:<id>``, with
   ``gift`` 0); ``validateOrder`` copies it onto the order, and ``orders`` can be filtered
   on it: ``find_order`` is ``GET /api/orders?filter[gift_message]=[orderbridge:<id>]``.
   The tag is on the order from the moment it exists, so a timeout after the create is
   found, never duplicated. It shows as the order's message in the back office;
5. cart-scoped ``specific_prices`` (``id_cart``) at our unit prices, in the cart's
   currency, so the order lines carry what the buyer paid per item;
6. the order (module ``payment_module``, default ``ps_wirepayment``; ``total_paid`` ours).

**Totals.** ``validateOrder`` computes tax and shipping from the shop's own tax rules and
carrier ranges and knows nothing of our discount; when its totals differ from what the
buyer paid, the connector writes ours onto the order (``PUT /api/orders/{id}``), and if
PrestaShop marked the order "Payment error" for the mismatch, records the paid state
(``order_histories``, ``paid_state`` option, default 2). A timeout between the create and
that correction leaves PrestaShop's own totals on the order (the retry finds the order).
Duties have no field of their own: they are booked in the shipping totals. A push that
fails after creating the customer, addresses or cart leaves those behind, as an abandoned
checkout would.

**Number**: PrestaShop's ``reference`` (read back with ``GET /api/orders/{id}``: the
create's answer echoes what was sent).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

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
from orderbridge.connectors.prestashop_webservice import Row, Webservice

TAG_PREFIX = "orderbridge:"
PAYMENT_ERROR_STATE = "8"  # PS_OS_ERROR in a default install
DEFAULT_PAID_STATE = "2"  # PS_OS_PAYMENT, "Payment accepted"


# The address fields the platform requires -> the PushAddress attribute each comes from.
_REQUIRED_ADDRESS_FIELDS = {
    "address1": "line1",
    "city": "city",
    "country": "country",
    "lastname": "last_name",
    "firstname": "first_name",
}


class PrestaShopConnector:
    """Pushes orders into PrestaShop through its webservice (see the module docstring)."""

    platform = "prestashop"
    credential_fields = ("api_key",)
    option_fields = (
        "id_lang",
        "id_carrier",
        "payment_module",
        "payment_label",
        "paid_state",
        "allow_backorders",
    )

    def __init__(
        self, settings: ConnectionSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._options = settings.options
        self._ws = Webservice(settings, transport=transport)

    async def aclose(self) -> None:
        await self._ws.aclose()

    # -- the port --------------------------------------------------------------------------

    async def create_order(self, order: PushOrder) -> PlatformOrder:
        require_address_fields(order, _REQUIRED_ADDRESS_FIELDS, required_by="PrestaShop")
        # the lookups write nothing: made at once, and any refusal leaves nothing behind
        currency, id_lang, id_carrier, products, known, countries = await asyncio.gather(
            self._currency(order.currency),
            self._language(order.language),
            self._carrier(),
            self._products(order),
            self._ws.one("customers", {"email": order.email}, "id,secure_key"),
            self._countries(order),
        )
        customer = known or await self._new_customer(order, id_lang)
        if order.billing == order.shipping_address:
            delivery = invoice = await self._address(
                order.shipping_address, countries, customer, order
            )
        else:
            delivery, invoice = await asyncio.gather(
                self._address(order.shipping_address, countries, customer, order),
                self._address(order.billing, countries, customer, order),
            )
        refs = {
            "id_currency": currency["id"],
            "id_lang": id_lang,
            "id_customer": customer["id"],
            "id_address_delivery": delivery,
            "id_address_invoice": invoice,
            "id_carrier": id_carrier,
        }
        cart = await self._cart(order, refs, customer, products, currency)
        order_fields = {
            **refs,
            "id_cart": cart,
            "module": self._options.get("payment_module", "ps_wirepayment"),
            "payment": self._options.get(
                "payment_label", f"{order.payment_method} ({order.source_name})"
            ),
            "conversion_rate": currency.get("conversion_rate", "1"),
            **_totals(order),
        }
        created = await self._ws.create("orders", order_fields, creating=True)
        placed = await self._read_order(created)
        return await self._settle(placed, order_fields, order)

    async def find_order(self, order_id: str) -> PlatformOrder | None:
        found = await self._ws.one(
            "orders",
            {"gift_message": TAG_PREFIX + order_id},
            "id,reference,current_state,total_paid",
        )
        return None if found is None else _platform_order(found)

    async def test_connection(self) -> ConnectionCheck:
        try:
            await self._ws.rows("orders", {}, "id", limit=1)
        except PushRejected as rejected:
            return ConnectionCheck(False, rejected.detail, rejected.code)
        except PushRetryable as retryable:
            return ConnectionCheck(False, retryable.detail)
        return ConnectionCheck(True, "PrestaShop answered and the key may read orders")

    # -- what the cart points at -------------------------------------------------------------

    async def _currency(self, iso: str) -> Row:
        found = await self._ws.one("currencies", {"iso_code": iso}, "id,iso_code,conversion_rate")
        if found is None:
            raise PushRejected(
                RejectionCode.CURRENCY_UNSUPPORTED, f"The PrestaShop shop has no {iso} currency"
            )
        return found

    async def _cart(
        self,
        order: PushOrder,
        refs: Mapping[str, Any],
        customer: Row,
        products: Mapping[str, Row],
        currency: Row,
    ) -> Any:
        """The cart, tagged with our order id, and its cart-scoped prices; its id."""
        fields = {
            **refs,
            "secure_key": customer.get("secure_key", ""),
            "gift": 0,
            "gift_message": TAG_PREFIX + order.order_id,
        }
        rows = [
            {
                "id_product": products[line.sku]["id"],
                "id_product_attribute": products[line.sku]["id_product_attribute"],
                "id_address_delivery": refs["id_address_delivery"],
                "quantity": line.quantity,
            }
            for line in order.lines
        ]
        cart = await self._ws.create("carts", fields, {"cart_rows": ("cart_row", rows)})
        await asyncio.gather(
            *(
                self._ws.create(
                    "specific_prices",
                    _specific_price(line.unit_price, cart, currency, products[line.sku]),
                )
                for line in order.lines
            )
        )
        return cart

    async def _language(self, iso: str) -> Any:
        if "id_lang" in self._options:
            return self._options["id_lang"]
        found = await self._ws.one("languages", {"iso_code": iso}, "id")
        return found["id"] if found is not None else 1

    async def _carrier(self) -> Any:
        if "id_carrier" in self._options:
            return self._options["id_carrier"]
        found = await self._ws.one("carriers", {"active": "1", "deleted": "0"}, "id")
        if found is None:
            raise PushRejected(
                RejectionCode.SHIPPING_UNAVAILABLE, "The PrestaShop shop has no active carrier"
            )
        return found["id"]

    async def _products(self, order: PushOrder) -> dict[str, Row]:
        """SKU -> ``{"id": product, "id_product_attribute": combination or 0}``: a SKU is a
        product's reference, or a combination's (a size or colour of a product)."""
        wanted: dict[str, int] = {}
        for line in order.lines:
            wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
        found: dict[str, Row] = {
            str(row["reference"]): {"id": row["id"], "id_product_attribute": 0}
            for row in await self._ws.rows(
                "products", {"reference": "|".join(wanted)}, "id,reference", limit=len(wanted)
            )
        }
        others = [sku for sku in wanted if sku not in found]
        if others:
            for row in await self._ws.rows(
                "combinations",
                {"reference": "|".join(others)},
                "id,id_product,reference",
                limit=len(others),
            ):
                found[str(row["reference"])] = {
                    "id": row["id_product"],
                    "id_product_attribute": row["id"],
                }
        missing = tuple(sku for sku in wanted if sku not in found)
        if missing:
            raise PushRejected(
                RejectionCode.PRODUCT_NOT_FOUND,
                f"No PrestaShop product or combination with reference {', '.join(missing)}",
                skus=missing,
            )
        await self._check_stock(wanted, found)
        return found

    async def _check_stock(self, wanted: Mapping[str, int], found: Mapping[str, Row]) -> None:
        rows = await self._ws.rows(
            "stock_availables",
            {"id_product": "|".join(sorted({str(found[sku]["id"]) for sku in wanted}))},
            "id,id_product,id_product_attribute,quantity,out_of_stock",
        )
        stock = {(str(r["id_product"]), str(r["id_product_attribute"])): r for r in rows}
        backorders = self._options.get("allow_backorders", "") in ("1", "true", "yes")
        short = tuple(
            sku
            for sku, qty in wanted.items()
            if not _can_sell(
                stock.get((str(found[sku]["id"]), str(found[sku]["id_product_attribute"]))),
                qty,
                backorders,
            )
        )
        if short:
            raise PushRejected(
                RejectionCode.OUT_OF_STOCK,
                f"Not enough stock in PrestaShop for {', '.join(short)}",
                skus=short,
            )

    async def _countries(self, order: PushOrder) -> dict[str, Any]:
        """ISO code -> PrestaShop's id for both addresses' countries."""
        isos = sorted({order.shipping_address.country, order.billing.country})
        rows = await self._ws.rows("countries", {"iso_code": "|".join(isos)}, "id,iso_code")
        found = {str(row["iso_code"]).upper(): row["id"] for row in rows}
        unknown = [iso for iso in isos if iso.upper() not in found]
        if unknown:
            raise PushRejected(
                RejectionCode.INVALID_ADDRESS, f"PrestaShop has no country {', '.join(unknown)}"
            )
        return found

    async def _new_customer(self, order: PushOrder, id_lang: Any) -> Row:
        fields = {
            "id_lang": id_lang,
            "firstname": order.first_name,
            "lastname": order.last_name,
            "email": order.email,
            "passwd": secrets.token_urlsafe(24),
            "active": 1,
            "newsletter": 0,
            "optin": 0,
            "note": f"Created by {order.source_name} for order {order.order_id}",
        }
        created = await self._ws.create("customers", fields, answer=True)
        if not isinstance(created, dict):
            raise PushRejected(RejectionCode.INVALID_RESPONSE, "POST /api/customers: no customer")
        return created

    async def _address(
        self, address: PushAddress, countries: Mapping[str, Any], customer: Row, order: PushOrder
    ) -> Any:
        return await self._ws.create(
            "addresses",
            {
                "id_customer": customer["id"],
                "id_country": countries[address.country.upper()],
                "alias": order.source_name[:32],
                "company": address.company or "",
                "lastname": address.last_name,
                "firstname": address.first_name,
                "address1": address.line1,
                "address2": address.line2 or "",
                "postcode": address.postal_code or "",
                "city": address.city,
                "phone": address.phone or order.phone or "",
            },
        )

    # -- the order after validateOrder ---------------------------------------------------------

    async def _read_order(self, order_id: Any) -> Row:
        """The order validateOrder made. It exists whatever this read says, so any failure
        is retryable: the retry's ``find_order`` finds it by its tag."""
        try:
            answer = await self._ws.call("GET", f"/orders/{order_id}", params={}, creating=True)
            row = answer["order"]
            int(row["id"])
            if not row["reference"]:
                raise ValueError("no reference")
        except PushRejected as rejected:
            raise PushRetryable(
                f"order {order_id} was created, reading it failed: {rejected.detail}"
            ) from None
        except (KeyError, TypeError, ValueError):
            raise PushRetryable(
                f"GET /api/orders/{order_id}: unexpected answer; the retry looks the order up"
            ) from None
        result: Row = row
        return result

    async def _settle(
        self, placed: Row, sent: Mapping[str, Any], order: PushOrder
    ) -> PlatformOrder:
        """Write our totals where validateOrder computed others; never fails the push (the
        order exists): what happened goes in the details."""
        created = _platform_order(placed)
        ours = _totals(order)
        if all(_same(placed.get(key), value) for key, value in ours.items()):
            return created
        details = dict(created.details)
        try:
            fields = {
                **{key: placed.get(key, "") for key in ("reference", "current_state", "valid")},
                **sent,
                "id": placed["id"],
                "gift": 0,
                "gift_message": TAG_PREFIX + order.order_id,
            }
            await self._ws.write("PUT", f"/orders/{placed['id']}", "order", fields)
            details["totals"] = "set to the pushed amounts"
            if str(placed.get("current_state")) == PAYMENT_ERROR_STATE:
                paid = self._options.get("paid_state", DEFAULT_PAID_STATE)
                await self._ws.create(
                    "order_histories", {"id_order": placed["id"], "id_order_state": paid}
                )
                details["current_state"] = str(paid)
        except PushError as failed:
            details["totals"] = f"PrestaShop's own (correction failed: {failed.detail})"
        return PlatformOrder(created.id, created.number, details)


def _totals(order: PushOrder) -> dict[str, str]:
    totals = order.totals
    products_tax = sum((line.tax for line in order.lines), Decimal(0))
    paid_excl = totals.total - totals.tax
    return {
        "total_paid": str(totals.total),
        "total_paid_real": str(totals.total),
        "total_paid_tax_incl": str(totals.total),
        "total_paid_tax_excl": str(paid_excl),
        "total_products": str(totals.items),
        "total_products_wt": str(totals.items + products_tax),
        "total_discounts": str(totals.discount),
        "total_discounts_tax_incl": str(totals.discount),
        "total_discounts_tax_excl": str(totals.discount),
        "total_shipping": str(totals.shipping + order.shipping.tax + totals.duties),
        "total_shipping_tax_incl": str(totals.shipping + order.shipping.tax + totals.duties),
        "total_shipping_tax_excl": str(totals.shipping + totals.duties),
    }


def _specific_price(unit_price: Decimal, cart: Any, currency: Row, product: Row) -> dict[str, Any]:
    return {
        "id_shop": 0,
        "id_cart": cart,
        "id_product": product["id"],
        "id_product_attribute": product["id_product_attribute"],
        "id_currency": currency["id"],
        "id_country": 0,
        "id_group": 0,
        "id_customer": 0,
        "price": str(unit_price),
        "from_quantity": 1,
        "reduction": 0,
        "reduction_tax": 0,
        "reduction_type": "amount",
        "from": "0000-00-00 00:00:00",
        "to": "0000-00-00 00:00:00",
    }


def _same(theirs: Any, ours: str) -> bool:
    try:
        return Decimal(str(theirs)) == Decimal(ours)
    except ArithmeticError:
        return False


def _can_sell(stock: Row | None, qty: int, backorders: bool) -> bool:
    if stock is None:
        return False
    # out_of_stock: 0 deny, 1 allow, 2 the shop's default (denying, unless told otherwise)
    if str(stock.get("out_of_stock")) == "1" or backorders:
        return True
    try:
        return Decimal(str(stock.get("quantity"))) >= qty
    except ArithmeticError:
        return False


def _platform_order(row: Row) -> PlatformOrder:
    try:
        details = {
            key: str(row[key])
            for key in ("current_state", "total_paid")
            if row.get(key) is not None
        }
        return PlatformOrder(id=str(int(row["id"])), number=str(row["reference"]), details=details)
    except (KeyError, TypeError, ValueError):
        raise PushRejected(
            RejectionCode.INVALID_RESPONSE, f"PrestaShop order without id/reference: {row!r:.200}"
        ) from None
