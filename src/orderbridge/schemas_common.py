"""Field types shared by the API schemas: amounts, codes, problem details."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import langcodes
import pycountry
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, PlainSerializer

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
    """OpenAPI ``responses=`` for the listed error statuses."""
    return {
        status: {"model": Problem, "content": {"application/problem+json": {}}}
        for status in statuses
    }
