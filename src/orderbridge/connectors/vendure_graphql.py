"""The Vendure Admin API documents the Vendure connector sends (Vendure 3.x), and the
variables it sends with them.

Kept apart from the connector so that the push benchmark can send exactly the same
documents directly and compare. A push is three HTTP requests (plus, now and then, a login
and a variant or shipping-method look-up, both cached):

1. ``CREATE_DRAFT``: ``createDraftOrder`` (its id is needed by everything after it);
2. ``build_draft_document``: one mutation document that tags the draft with our order id
   (``setDraftOrderCustomFields``), adds every line, sets the customer, both addresses and,
   when its id is known, the shipping method. GraphQL runs the fields of a mutation one
   after the other, and stops at the first field that fails with a top-level error;
   ErrorResult members (``InsufficientStockError``...) are data and do not stop it, so the
   connector checks every field's ``__typename`` before going on;
3. ``build_settle_document``: (the shipping method, when it was looked up per order,) the
   transition to ``ArrangingPayment`` and ``addManualPaymentToOrder``, which settles the
   order (``PaymentSettled``) in the same call. If the transition is refused, the payment
   is refused too (``ManualPaymentStateError``) and the order stays a draft.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orderbridge.connectors.port import PushAddress, PushOrder
from orderbridge.money import format_amount

ERROR_FIELDS = "__typename ... on ErrorResult { errorCode message }"

LOGIN = """mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password, rememberMe: true) {
    __typename ... on CurrentUser { id } ... on ErrorResult { errorCode message }
  }
}"""

ACTIVE_CHANNEL = """query Channel {
  activeChannel { code defaultCurrencyCode availableCurrencyCodes }
}"""

VARIANTS_BY_SKU = """query Variants($skus: [String!]!, $take: Int!) {
  productVariants(options: {filter: {sku: {in: $skus}}, take: $take}) {
    items { id sku enabled }
  }
}"""

ELIGIBLE_SHIPPING = """query Shipping($orderId: ID!) {
  eligibleShippingMethodsForDraftOrder(orderId: $orderId) { id code }
}"""

SHIPPING_METHODS = """query ShippingMethods($code: String!) {
  shippingMethods(options: {filter: {code: {eq: $code}}}) { items { id code } }
}"""

CREATE_DRAFT = """mutation Draft { createDraftOrder { id code currencyCode } }"""

DELETE_DRAFT = """mutation DeleteDraft($orderId: ID!) {
  deleteDraftOrder(orderId: $orderId) { result message }
}"""

# For an order that left Draft without being paid: cancelled, and our order id taken off
# it so that a new push can tag its replacement.
RELEASE = """mutation Release($orderId: ID!) {
  cancel: cancelOrder(input: {orderId: $orderId, reason: "orderbridge push abandoned"}) {
    __typename ... on ErrorResult { errorCode message }
  }
  untag: setOrderCustomFields(input: {id: $orderId, customFields: {externalId: null}}) { id }
}"""

UNTAG = """mutation Untag($orderId: ID!) {
  untag: setOrderCustomFields(input: {id: $orderId, customFields: {externalId: null}}) { id }
}"""

ORDER_FIELDS = "id code state active totalWithTax currencyCode"

FIND_BY_EXTERNAL_ID = f"""query Find($externalId: String!) {{
  orders(options: {{filter: {{externalId: {{eq: $externalId}}}}, take: 2}}) {{
    items {{ {ORDER_FIELDS} }}
  }}
}}"""

# Field aliases of the draft document; the connector maps errors back through them.
EXTERNAL_ID = "externalId"
CUSTOMER = "customer"
SHIPPING_ADDRESS = "shippingAddress"
BILLING_ADDRESS = "billingAddress"
SHIPPING_METHOD = "shippingMethod"
TRANSITION = "arrangingPayment"
PAYMENT = "payment"


def line_alias(index: int) -> str:
    return f"line{index}"


def build_draft_document(lines: int, *, with_shipping_method: bool) -> str:
    """The draft mutation for an order of ``lines`` lines; its variables are ``orderId``,
    ``custom`` (UpdateOrderInput), ``variant{i}``/``quantity{i}``, ``customer``,
    ``shipping``, ``billing`` and, with the method, ``shippingMethodId``."""
    params = [
        "$orderId: ID!",
        "$custom: UpdateOrderInput!",
        *(f"$variant{i}: ID!, $quantity{i}: Int!" for i in range(lines)),
        "$customer: CreateCustomerInput!",
        "$shipping: CreateAddressInput!",
        "$billing: CreateAddressInput!",
    ]
    fields = [
        f"{EXTERNAL_ID}: setDraftOrderCustomFields(orderId: $orderId, input: $custom) {{ id }}",
        *(
            f"{line_alias(i)}: addItemToDraftOrder(orderId: $orderId, input: "
            f"{{productVariantId: $variant{i}, quantity: $quantity{i}}}) {{ {ERROR_FIELDS}"
            " ... on InsufficientStockError { quantityAvailable } }"
            for i in range(lines)
        ),
        f"{CUSTOMER}: setCustomerForDraftOrder(orderId: $orderId, input: $customer)"
        f" {{ {ERROR_FIELDS} }}",
        f"{SHIPPING_ADDRESS}: setDraftOrderShippingAddress(orderId: $orderId,"
        " input: $shipping) { id }",
        f"{BILLING_ADDRESS}: setDraftOrderBillingAddress(orderId: $orderId,"
        " input: $billing) { id }",
    ]
    if with_shipping_method:
        params.append("$shippingMethodId: ID!")
        fields.append(_shipping_method_field())
    return _mutation("DraftOrder", params, fields)


def build_settle_document(*, with_shipping_method: bool) -> str:
    """Variables: ``orderId``, ``payment`` (ManualPaymentInput) and, with the method,
    ``shippingMethodId``."""
    params = ["$orderId: ID!", "$payment: ManualPaymentInput!"]
    fields = []
    if with_shipping_method:
        params.append("$shippingMethodId: ID!")
        fields.append(_shipping_method_field())
    fields += [
        f'{TRANSITION}: transitionOrderToState(id: $orderId, state: "ArrangingPayment")'
        f" {{ {ERROR_FIELDS} ... on OrderStateTransitionError {{ transitionError }} }}",
        f"{PAYMENT}: addManualPaymentToOrder(input: $payment)"
        f" {{ {ERROR_FIELDS} ... on Order {{ {ORDER_FIELDS} }} }}",
    ]
    return _mutation("SettleOrder", params, fields)


def _shipping_method_field() -> str:
    return (
        f"{SHIPPING_METHOD}: setDraftOrderShippingMethod(orderId: $orderId,"
        f" shippingMethodId: $shippingMethodId) {{ {ERROR_FIELDS} }}"
    )


def _mutation(name: str, params: Sequence[str], fields: Sequence[str]) -> str:
    return f"mutation {name}({', '.join(params)}) {{\n  " + "\n  ".join(fields) + "\n}"


# -- variables ---------------------------------------------------------------------------


def address_input(address: PushAddress) -> dict[str, Any]:
    return {
        "fullName": f"{address.first_name} {address.last_name}".strip(),
        "company": address.company,
        "streetLine1": address.line1,
        "streetLine2": address.line2,
        "city": address.city,
        "province": address.region,
        "postalCode": address.postal_code,
        "countryCode": address.country,
        "phoneNumber": address.phone,
    }


def draft_variables(
    order: PushOrder, draft_id: str, variant_ids: Mapping[str, str], method_id: str | None
) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "orderId": draft_id,
        "custom": {"id": draft_id, "customFields": {"externalId": order.order_id}},
        "customer": {
            "emailAddress": order.email,
            "firstName": order.first_name,
            "lastName": order.last_name,
            "phoneNumber": order.phone,
        },
        "shipping": address_input(order.shipping_address),
        "billing": address_input(order.billing),
    }
    for index, line in enumerate(order.lines):
        variables[f"variant{index}"] = variant_ids[line.sku]
        variables[f"quantity{index}"] = line.quantity
    if method_id:
        variables["shippingMethodId"] = method_id
    return variables


def settle_variables(
    order: PushOrder, draft_id: str, method: str, shipping_method_id: str | None
) -> dict[str, Any]:
    currency = order.currency
    totals = order.totals
    variables: dict[str, Any] = {
        "orderId": draft_id,
        "payment": {
            "orderId": draft_id,
            "method": method,
            "transactionId": order.payment_reference or order.order_id,
            # Our amounts beside Vendure's own (it prices from its catalog): exact strings.
            "metadata": {
                "orderbridge_order_id": order.order_id,
                "source": order.source_name,
                "payment_method": order.payment_method,
                "currency": currency,
                "buyer_currency": order.buyer_currency,
                "exchange_rate": str(order.exchange_rate),
                "items": format_amount(totals.items, currency),
                "discount": format_amount(totals.discount, currency),
                "shipping": format_amount(totals.shipping, currency),
                "tax": format_amount(totals.tax, currency),
                "duties": format_amount(totals.duties, currency),
                "total": format_amount(totals.total, currency),
                "note": order.note,
            },
        },
    }
    if shipping_method_id:
        variables["shippingMethodId"] = shipping_method_id
    return variables
