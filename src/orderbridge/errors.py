"""Domain errors, named after the condition. Each carries a stable machine ``code`` and the
HTTP status the API answers with; the mapping to problem+json lives in ``api.errors`` only.

    OrderbridgeError
    ├── NotFound                  404  (also: another store's resource)
    ├── Unauthorized              401
    ├── Forbidden                 403
    ├── ValidationFailed          422  (with field errors)
    ├── BadRequest                400  (malformed cursor, bad parameter)
    └── Conflict                  409
        ├── IllegalTransition     (order_not_ready, order_cancelled, use_refund, ...)
        └── IdempotencyKeyReused
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    path: str  # dotted path, e.g. "items.0.quantity"
    message: str
    code: str = "invalid"


class OrderbridgeError(Exception):
    status: int = 400
    code: str = "error"
    title: str = "Error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotFound(OrderbridgeError):
    status, code, title = 404, "not_found", "Not found"


class Unauthorized(OrderbridgeError):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(OrderbridgeError):
    status, code, title = 403, "forbidden", "Forbidden"


class BadRequest(OrderbridgeError):
    status, code, title = 400, "bad_request", "Bad request"


class ValidationFailed(OrderbridgeError):
    status, code, title = 422, "validation_error", "Validation failed"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or f"{len(errors)} field(s) are invalid")
        self.errors = errors


class Conflict(OrderbridgeError):
    status, code, title = 409, "conflict", "Conflict"


class IllegalTransition(Conflict):
    code, title = "illegal_transition", "Not allowed in the order's status"


class IdempotencyKeyReused(Conflict):
    code, title = "idempotency_key_reused", "Idempotency key reused with another request"
