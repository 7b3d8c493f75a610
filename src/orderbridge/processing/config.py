"""A store's processing configuration: validated, versioned, with sane defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from orderbridge.screening.fraud import FraudConfig
from orderbridge.screening.prohibited import ProhibitedConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PaymentStepConfig(_Section):
    enabled: bool = True
    # How long a card payment may wait for the buyer (3-D Secure) before the order is
    # cancelled with payment_failed, and how often the provider is asked meanwhile.
    action_deadline_minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] = 30
    recheck_seconds: Annotated[float, Field(ge=1, le=3600)] = 30
    # Deferred methods (bank transfer) wait for a confirmation this long.
    deferred_deadline_hours: Annotated[float, Field(gt=0, le=30 * 24)] = 72
    deferred_methods: tuple[str, ...] = ("bank_transfer",)


class FraudStepConfig(_Section):
    enabled: bool = True
    rules: FraudConfig = Field(default_factory=FraudConfig)
    review_deadline_hours: Annotated[float, Field(gt=0, le=14 * 24)] = 24
    # What happens to an order nobody reviewed in time.
    on_review_deadline: Literal["approve", "reject"] = "reject"


class ProhibitedStepConfig(_Section):
    enabled: bool = True
    rules: ProhibitedConfig = Field(default_factory=ProhibitedConfig)
    # Carts made only of these categories ship nothing physical: no export screening.
    digital_categories: tuple[str, ...] = ("digital", "gift_card", "service")
    screen_domestic: bool = False


class ProcessingConfig(_Section):
    """What processing does for a store's orders (``GET/PUT /v2/stores/{id}/processing``)."""

    payment: PaymentStepConfig = Field(default_factory=PaymentStepConfig)
    fraud: FraudStepConfig = Field(default_factory=FraudStepConfig)
    prohibited: ProhibitedStepConfig = Field(default_factory=ProhibitedStepConfig)
