"""Field types shared by the API schemas: amounts, codes, problem details."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import langcodes
import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)

from orderbridge.money import is_currency


def _amount_text(value: Any) -> Any:
    # Amounts travel as JSON strings (contract §2): a float has already lost precision.
    if isinstance(value, float):
        raise ValueError('amounts are JSON strings, e.g. "49.90"')
    if isinstance(value, str):
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            raise ValueError("not a decimal number") from None
        if not parsed.is_finite():
            raise ValueError("not a finite decimal number")
        return parsed
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_amount_text),
    Field(ge=0, max_digits=18, decimal_places=6, json_schema_extra={"type": "string"}),
    PlainSerializer(str, return_type=str, when_used="json"),
]


# C0 controls and DEL, except tab, line feed and carriage return. PostgreSQL text cannot hold
# NUL at all, and none of these belongs in an order.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


def _check_text(value: Any) -> Any:
    if isinstance(value, str):
        if has_control_characters(value):
            raise ValueError("control characters (such as U+0000) are not allowed")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_text(item)
    return value


class InputModel(BaseModel):
    """Base of every request body: unknown fields refused, text trimmed, no control
    characters anywhere."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        return _check_text(value)


RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 time with its zone, as aware UTC; ValueError otherwise (also for times
    whose conversion to UTC leaves years 1 to 9999)."""
    if not re.match(RFC3339, value):
        raise ValueError("not an RFC 3339 time with a zone, e.g. 2026-01-31T00:00:00Z")
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("not a valid time") from None


def _currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError("not an ISO 4217 currency code")
    return value


def _country(value: str) -> str:
    if len(value) != 2 or not value.isupper() or pycountry.countries.get(alpha_2=value) is None:
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return value


def _language(value: str) -> str:
    if not langcodes.tag_is_valid(value):
        raise ValueError("not a BCP 47 language tag")
    return value


CurrencyCode = Annotated[str, Field(examples=["EUR"]), AfterValidator(_currency)]
CountryCode = Annotated[str, Field(examples=["FR"]), AfterValidator(_country)]
LanguageTag = Annotated[str, Field(max_length=35, examples=["fr-FR"]), AfterValidator(_language)]
ShortText = Annotated[str, Field(min_length=1, max_length=255)]
OptionalText = Annotated[str | None, Field(default=None, max_length=255)]
Note = Annotated[str | None, Field(default=None, max_length=2000)]


class ProblemFieldError(BaseModel):
    field: str
    message: str
    code: str


class Problem(BaseModel):
    """RFC 9457 problem details with a stable ``code`` (contract §7)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: list[ProblemFieldError] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the listed error statuses (``api.openapi`` makes every
    error answer a problem+json one)."""
    return {status: {"model": Problem} for status in statuses}
