"""The form convention: what the user typed and the message for each field, so that a
rejected form is shown again with its values and a message next to each bad field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError
from starlette.datastructures import FormData

from orderbridge.errors import OrderbridgeError, ValidationFailed

FORM_ERROR = "_"  # a message about the whole form rather than one field


@dataclass
class FormState:
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, form: FormData, *, omit: tuple[str, ...] = ()) -> FormState:
        """The submitted text fields, except secrets (``omit``) and the CSRF token."""
        values = {
            key: value
            for key, value in form.items()
            if isinstance(value, str) and key not in omit and key != "csrf_token"
        }
        return cls(values)

    def value(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def error(self, name: str) -> str | None:
        return self.errors.get(name)

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    @property
    def ok(self) -> bool:
        return not self.errors

    def absorb(self, error: OrderbridgeError, fields: Mapping[str, str] | None = None) -> None:
        """Put a use case's error next to its fields. ``fields`` maps the use case's field
        paths to form field names where they differ (``external.order_id`` →
        ``external_order_id``; map a path to ``FORM_ERROR`` to show it above the form);
        other paths are taken as field names. An error without fields (a conflict) becomes
        the form-level message."""
        fields = fields or {}
        if isinstance(error, ValidationFailed):
            for item in error.errors:
                self.add(fields.get(item.path, item.path), item.message)
            return
        self.add(FORM_ERROR, error.detail)

    def absorb_pydantic(
        self, error: ValidationError, fields: Mapping[str, str] | None = None
    ) -> None:
        fields = fields or {}
        for item in error.errors():
            path = ".".join(str(part) for part in item["loc"])
            message = item["msg"].removeprefix("Value error, ")
            self.add(fields.get(path, path or FORM_ERROR), message)
