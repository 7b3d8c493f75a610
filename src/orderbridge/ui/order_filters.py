"""Reading the order list's filter form (query string) into a ``ListFilter``: dates are
days in the viewer's time zone, a bad value gets a message next to its field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pycountry
from starlette.datastructures import QueryParams

from orderbridge.ids import parse_order_id
from orderbridge.orders.lifecycle import OrderStatus
from orderbridge.orders.listing import Attention, ListFilter
from orderbridge.orders.queries import OrderFilter
from orderbridge.schemas_common import has_control_characters
from orderbridge.ui.forms import FormState

FIELDS = ("q", "status", "country", "from", "to", "attention")
ANY_ATTENTION = "any"


@dataclass(frozen=True)
class ParsedFilters:
    filter: ListFilter
    form: FormState
    statuses: tuple[str, ...]
    after: int | None
    before: int | None

    def query(self) -> list[tuple[str, str]]:
        """The filter as query parameters, for pagination links and the CSV export."""
        params = [(k, v) for k, v in self.form.values.items() if v and k != "status"]
        params += [("status", s) for s in self.statuses]
        return params


def _day(value: str, zone: ZoneInfo) -> datetime | None:
    return datetime.combine(date.fromisoformat(value), time.min, zone)


def parse_filters(params: QueryParams, store_id: str, zone: ZoneInfo) -> ParsedFilters:
    form = FormState({name: params.get(name, "").strip() for name in FIELDS if name != "status"})
    statuses = tuple(dict.fromkeys(params.getlist("status")))
    bad = [s for s in statuses if s not in OrderStatus.__members__.values()]
    if bad:
        form.add("status", f"not a status: {', '.join(bad)[:80]}")
    q = form.value("q")
    if len(q) > 320 or has_control_characters(q):
        form.add("q", "at most 320 characters of text")
    country = form.value("country").upper()
    form.values["country"] = country
    if country and (len(country) != 2 or pycountry.countries.get(alpha_2=country) is None):
        form.add("country", "a two-letter country code, e.g. DE")
    created_from = created_to = None
    try:
        if form.value("from"):
            created_from = _day(form.value("from"), zone)
    except ValueError:
        form.add("from", "a date like 2026-03-31")
    try:
        if form.value("to"):
            end = _day(form.value("to"), zone)
            created_to = end + timedelta(days=1) if end is not None else None
    except ValueError:
        form.add("to", "a date like 2026-03-31")
    if created_from and created_to and created_to <= created_from:
        form.add("to", "on or after the first day")
    attention_value = form.value("attention")
    attention: tuple[Attention, ...] = ()
    if attention_value == ANY_ATTENTION:
        attention = tuple(Attention)
    elif attention_value:
        try:
            attention = (Attention(attention_value),)
        except ValueError:
            form.add("attention", "choose one of the list")
    after = _cursor(params.get("after"), store_id)
    before = _cursor(params.get("before"), store_id)
    list_filter = ListFilter(
        OrderFilter(
            store_id=store_id,
            statuses=statuses if not bad else (),
            created_from=created_from,
            created_to=created_to,
            shipping_country=country if "country" not in form.errors else None,
        ),
        q=q if "q" not in form.errors else None,
        attention=attention,
    )
    return ParsedFilters(list_filter, form, statuses, after, before)


def _cursor(value: str | None, store_id: str) -> int | None:
    """A page cursor is an order id of this store; anything else starts from the top."""
    if not value:
        return None
    parsed = parse_order_id(value)
    if parsed is None or parsed[0] != store_id:
        return None
    return parsed[1]
