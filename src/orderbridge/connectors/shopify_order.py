"""The Shopify order: a ``PushOrder`` as ``orderCreate``'s ``OrderCreateOrderInput``
(``connectors.shopify`` sends it): lines on their variants, one fixed discount, taxes with
their rates, shipping, both addresses, a paid sale transaction, and our order id as the
order's ``sourceIdentifier``. Money goes in the order's currency with the buyer's beside it."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from orderbridge.connectors.port import PushAddress, PushOrder
from orderbridge.connectors.regions import subdivision

TAG = "orderbridge"
CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.0001")


class _Money:
    """MoneyBagInput builder: shop money in the order's currency, and the buyer's
    presentment money when the order is in the base currency and the buyer paid in another."""

    def __init__(self, order: PushOrder) -> None:
        self.currency = order.currency
        self.presentment = (
            order.buyer_currency
            if order.buyer_currency != order.currency and order.exchange_rate != 1
            else None
        )
        self.rate = order.exchange_rate

    def __call__(self, amount: Decimal) -> dict[str, Any]:
        bag: dict[str, Any] = {"shopMoney": {"amount": str(amount), "currencyCode": self.currency}}
        if self.presentment is not None:
            converted = (amount * self.rate).quantize(CENT, rounding=ROUND_HALF_EVEN)
            bag["presentmentMoney"] = {"amount": str(converted), "currencyCode": self.presentment}
        return bag


def _rate(tax: Decimal, base: Decimal) -> str:
    """A tax line's rate as a fraction (Shopify's ``rate``: 0.2 for 20 %)."""
    if base <= 0:
        return "0"
    return str((tax / base).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN))


def order_input(
    order: PushOrder, variants: Mapping[str, str], *, discount_code: str
) -> dict[str, Any]:
    """The ``OrderCreateOrderInput`` for a ``PushOrder``."""
    money = _Money(order)
    line_items: list[dict[str, Any]] = []
    for line in order.lines:
        item: dict[str, Any] = {
            "variantId": variants[line.sku],
            "quantity": line.quantity,
            "priceSet": money(line.unit_price),
            "taxLines": [
                {
                    "title": "Tax",
                    "rate": str((line.tax_rate / 100).normalize()),
                    "priceSet": money(line.tax),
                }
            ]
            if line.tax
            else [],
        }
        if line.options:
            item["properties"] = [{"name": k, "value": v} for k, v in line.options.items()]
        line_items.append(item)
    if order.totals.duties:
        line_items.append(
            {
                "title": "Duties and import taxes",
                "quantity": 1,
                "priceSet": money(order.totals.duties),
                "requiresShipping": False,
                "taxable": False,
            }
        )
    shipping = order.shipping
    result: dict[str, Any] = {
        "currency": order.currency,
        "email": order.email,
        "processedAt": order.placed_at.isoformat(),
        "lineItems": line_items,
        "shippingLines": [
            {
                "title": shipping.method,
                "source": shipping.carrier or TAG,
                "priceSet": money(shipping.price),
                "taxLines": [
                    {
                        "title": "Tax",
                        "rate": _rate(shipping.tax, shipping.price),
                        "priceSet": money(shipping.tax),
                    }
                ]
                if shipping.tax
                else [],
            }
        ],
        "billingAddress": mailing_address(order.billing),
        "shippingAddress": mailing_address(order.shipping_address),
        "customer": {
            "toUpsert": {
                "email": order.email,
                "firstName": order.first_name,
                "lastName": order.last_name,
            }
        },
        "financialStatus": "PAID",
        "transactions": [
            {
                "kind": "SALE",
                "status": "SUCCESS",
                "gateway": order.payment_method,
                "authorizationCode": order.payment_reference,
                "amountSet": money(order.totals.total),
                "processedAt": order.placed_at.isoformat(),
            }
        ],
        "sourceIdentifier": order.order_id,
        "sourceName": order.source_name,
        "tags": [TAG],
        "note": _note(order),
        "customAttributes": [
            {"key": "orderbridge_order_id", "value": order.order_id},
            {"key": "payment_reference", "value": order.payment_reference},
        ],
    }
    if money.presentment is not None:
        result["presentmentCurrency"] = money.presentment
    if order.totals.discount:
        result["discountCode"] = {
            "itemFixedDiscountCode": {
                "code": discount_code,
                "amountSet": money(order.totals.discount),
            }
        }
    return result


def _note(order: PushOrder) -> str:
    if order.customer_note:
        return f"{order.note}\nBuyer's note: {order.customer_note}"
    return order.note


def mailing_address(address: PushAddress) -> dict[str, Any]:
    """``MailingAddressInput``; the region goes as its ISO 3166-2 code (Shopify's
    ``provinceCode``) when it names a subdivision of the country, else it is left out."""
    province = subdivision(address.country, address.region)
    fields: dict[str, Any] = {
        "firstName": address.first_name,
        "lastName": address.last_name,
        "address1": address.line1,
        "city": address.city,
        "countryCode": address.country.upper(),
    }
    optional = {
        "company": address.company,
        "address2": address.line2,
        "zip": address.postal_code,
        "provinceCode": province.code if province else None,
        "phone": address.phone,
    }
    fields.update({key: value for key, value in optional.items() if value})
    return fields
