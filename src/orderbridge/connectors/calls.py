"""One call of a store's connector for a push, its outcome classified for the push log.

``PlatformCalls.call`` finds (on a retry) or creates the order through the store's pooled
connector and turns whatever happens into a ``CallResult``: the platform's order, a
retryable error with its wait hint, or a rejection with its code. Nothing escapes it, so
every attempt gets its log row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum

from orderbridge.connectors.connections import ConnectionService
from orderbridge.connectors.pool import ConnectorPool, revision_of
from orderbridge.connectors.port import (
    PlatformOrder,
    PushOrder,
    PushRejected,
    PushRetryable,
    RejectionCode,
)
from orderbridge.connectors.registry import UnknownPlatform
from orderbridge.crypto import SecretBoxError
from orderbridge.db.models import StoreConnection

log = logging.getLogger("orderbridge.push")


class AttemptOutcome(StrEnum):
    PUSHED = "pushed"
    FOUND = "found"
    RETRYABLE = "retryable"
    REJECTED = "rejected"
    SKIPPED = "skipped"


@dataclass
class CallResult:
    outcome: AttemptOutcome
    action: str
    code: str | None = None
    detail: str | None = None
    platform: PlatformOrder | None = None
    retry_after: float | None = None
    response: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.platform is not None


class PlatformCalls:
    def __init__(self, connections: ConnectionService, pool: ConnectorPool) -> None:
        self.connections = connections
        self.pool = pool

    async def call(
        self, connection: StoreConnection, push: PushOrder, *, look_first: bool
    ) -> CallResult:
        """Find (when ``look_first``) or create the order on the connection's platform;
        never raises for what the platform or the connector did."""
        action = "find" if look_first else "create"
        try:
            async with self.pool.connector(
                connection.store_id,
                revision_of(connection),
                lambda: self.connections.settings_of(connection),
            ) as connector:
                if look_first:
                    found = await connector.find_order(push.order_id)
                    if found is not None:
                        return CallResult(
                            AttemptOutcome.FOUND, action, platform=found, response=_answer(found)
                        )
                    action = "create"
                created = await connector.create_order(push)
                return CallResult(
                    AttemptOutcome.PUSHED, action, platform=created, response=_answer(created)
                )
        except PushRetryable as error:
            return CallResult(
                AttemptOutcome.RETRYABLE,
                action,
                code="retryable",
                detail=error.detail,
                retry_after=error.retry_after,
                response=_error_answer(error.platform_code, error.retry_after),
            )
        except PushRejected as error:
            return CallResult(
                AttemptOutcome.REJECTED,
                action,
                code=error.code.value,
                detail=error.detail,
                response=_error_answer(error.platform_code, None, error.skus),
            )
        except (UnknownPlatform, SecretBoxError) as error:
            # The platform's connector is gone, or the credentials cannot be decrypted
            # (ORDERBRIDGE_SECRET_KEYS changed): no retry will help until an operator acts.
            return CallResult(
                AttemptOutcome.REJECTED,
                action,
                code=RejectionCode.REJECTED.value,
                detail=str(error),
            )
        except Exception as error:
            # A connector must raise only PushError; a bug in one is retried like a
            # transport failure rather than leaving the order without an outcome.
            log.exception("the %s connector failed unexpectedly", connection.platform)
            return CallResult(
                AttemptOutcome.RETRYABLE,
                action,
                code="connector_error",
                detail=f"{type(error).__name__}: {error}",
            )


def request_summary(push: PushOrder) -> dict[str, str]:
    """What the push log keeps of a request: enough to recognise it, no personal data."""
    return {
        "order_id": push.order_id,
        "currency": push.currency,
        "exchange_rate": str(push.exchange_rate),
        "total": str(push.totals.total),
        "lines": str(len(push.lines)),
        "skus": ", ".join(f"{line.sku}×{line.quantity}" for line in push.lines)[:1000],
        "shipping": push.shipping.method,
    }


def _answer(platform: PlatformOrder) -> dict[str, str]:
    return {
        **{k: str(v) for k, v in platform.details.items()},
        "id": platform.id,
        "number": platform.number,
    }


def _error_answer(
    platform_code: str | None, retry_after: float | None, skus: tuple[str, ...] = ()
) -> dict[str, str]:
    answer: dict[str, str] = {}
    if platform_code is not None:
        answer["platform_code"] = platform_code
    if retry_after is not None:
        answer["retry_after"] = f"{retry_after:g}"
    if skus:
        answer["skus"] = ", ".join(skus)
    return answer
