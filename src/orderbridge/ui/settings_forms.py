"""The store settings forms and the use cases' models: the processing options (a curated
set of the versioned ``ProcessingConfig``, named by their dotted paths so that a validation
error lands next to its field), the whole configuration as JSON, and the plug & play
connection (``ConnectionIn``; credential inputs left empty keep the stored values)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orderbridge.db.models import StoreConnection
from orderbridge.processing.config import ProcessingConfig
from orderbridge.ui.forms import FORM_ERROR, FormState

YES = "yes"


@dataclass(frozen=True)
class Option:
    path: str  # dotted path in ProcessingConfig, also the form field's name
    label: str
    kind: str  # "bool", "number", "choice", "list"
    hint: str = ""
    choices: tuple[tuple[str, str], ...] = ()


PROCESSING_OPTIONS = (
    Option("payment.enabled", "Confirm the payment before an order is ready", "bool"),
    Option(
        "payment.action_deadline_minutes",
        "Minutes a buyer has to finish 3-D Secure",
        "number",
        "then the order is cancelled (payment failed)",
    ),
    Option(
        "payment.deferred_deadline_hours",
        "Hours to wait for a bank transfer",
        "number",
    ),
    Option("fraud.enabled", "Score orders for fraud", "bool"),
    Option("fraud.rules.review_score", "Score from which an order is held for review", "number"),
    Option("fraud.rules.reject_score", "Score from which an order is rejected", "number"),
    Option("fraud.review_deadline_hours", "Hours to review a held order", "number"),
    Option(
        "fraud.on_review_deadline",
        "A held order nobody reviewed in time is",
        "choice",
        choices=(("reject", "rejected (cancelled)"), ("approve", "approved")),
    ),
    Option("prohibited.enabled", "Screen carts for prohibited goods", "bool"),
    Option("prohibited.screen_domestic", "Screen domestic orders too", "bool"),
    Option(
        "prohibited.digital_categories",
        "Categories that ship nothing physical",
        "list",
        "comma-separated; carts of only these skip the export screening",
    ),
)
_BY_PATH = {option.path: option for option in PROCESSING_OPTIONS}


def _get(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value[part]
    return value


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        document = document[part]
    document[last] = value


def processing_values(config: ProcessingConfig) -> FormState:
    document = config.model_dump(mode="json")
    values = {}
    for option in PROCESSING_OPTIONS:
        value = _get(document, option.path)
        if option.kind == "bool":
            values[option.path] = YES if value else ""
        elif option.kind == "list":
            values[option.path] = ", ".join(value)
        elif isinstance(value, float) and value.is_integer():
            values[option.path] = str(int(value))
        else:
            values[option.path] = str(value)
    return FormState(values)


def processing_document(current: ProcessingConfig, form: FormState) -> dict[str, Any]:
    """The current configuration with the form's options applied (text left for the
    model to parse, so that "abc" for a number is its message, not ours)."""
    document = current.model_dump(mode="json")
    for option in PROCESSING_OPTIONS:
        raw = form.value(option.path).strip()
        value: Any = raw
        if option.kind == "bool":
            value = raw == YES
        elif option.kind == "list":
            value = [part.strip() for part in raw.split(",") if part.strip()]
        _set(document, option.path, value)
    return document


def processing_error_field(path: str) -> str:
    """Where a configuration error is shown: its option, the option a model-level check
    belongs to (``fraud.rules`` compares the two scores), or the whole form."""
    if path in _BY_PATH:
        return path
    for option in PROCESSING_OPTIONS:
        if option.path.startswith(path + ".") and option.path.endswith("reject_score"):
            return option.path
    head = path.rsplit(".", 1)[0]
    return head if head in _BY_PATH else FORM_ERROR


def config_json(config: ProcessingConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), indent=2)


# ---- the plug & play connection ---------------------------------------------------------


CONNECTION_SCALARS = ("base_url", "failure_policy", "max_attempts", "currency_mode", "timeout")


def connection_values(connection: StoreConnection | None, platform: str) -> FormState:
    if connection is None or connection.platform != platform:
        return FormState(
            {
                "platform": platform,
                "failure_policy": "notify",
                "max_attempts": "5",
                "retry_delays": "60, 300, 900, 2400",
                "currency_mode": "base",
                "timeout": "20",
                "enabled": YES,
            }
        )
    values = {
        "platform": connection.platform,
        "base_url": connection.base_url,
        "failure_policy": connection.failure_policy,
        "max_attempts": str(connection.max_attempts),
        "retry_delays": ", ".join(str(d) for d in connection.retry_schedule["delays"]),
        "currency_mode": connection.currency_mode,
        "timeout": f"{connection.timeout:g}",
        "enabled": YES if connection.enabled else "",
    }
    values.update({f"options.{k}": str(v) for k, v in connection.options.items()})
    return FormState(values)


def connection_body(
    form: FormState, credential_fields: tuple[str, ...], option_fields: tuple[str, ...]
) -> dict[str, Any]:
    body: dict[str, Any] = {name: form.value(name).strip() for name in CONNECTION_SCALARS}
    body["platform"] = form.value("platform")
    body["enabled"] = form.value("enabled") == YES
    body["retry_delays"] = [
        part.strip() for part in form.value("retry_delays").split(",") if part.strip()
    ]
    # Empty credential inputs keep what is stored (ConnectionIn's own rule).
    body["credentials"] = {
        name: form.value(f"credentials.{name}")
        for name in credential_fields
        if form.value(f"credentials.{name}")
    }
    body["options"] = {
        name: form.value(f"options.{name}").strip()
        for name in option_fields
        if form.value(f"options.{name}").strip()
    }
    return body


def connection_error_field(path: str) -> str:
    if path.startswith("retry_delays"):
        return "retry_delays"
    if path.startswith(("credentials.", "options.")) or path in (*CONNECTION_SCALARS, "platform"):
        return path
    return FORM_ERROR
