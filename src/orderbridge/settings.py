"""The one settings object, read from the environment (prefix ``ORDERBRIDGE_``) once, at
start, by the entry point, and passed down. Nothing else reads the environment."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerMode(StrEnum):
    EMBEDDED = "embedded"  # the API process also runs a worker (the single-process default)
    OFF = "off"  # jobs are run by separate `orderbridge worker` processes


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERBRIDGE_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite in data_dir. "
        "postgresql://user@host/db selects PostgreSQL (psycopg 3).",
    )
    db_pool_size: int = 10
    host: str = "127.0.0.1"
    port: int = 8000

    worker_mode: WorkerMode = WorkerMode.EMBEDDED
    worker_concurrency: int = 8
    worker_batch_size: int = 32
    worker_poll_interval: float = 0.25
    job_lease_seconds: float = 60.0

    auth_cache_seconds: float = 2.0

    # Merchant Account sessions (signed cookies). Empty secret: one derived from the first of
    # secret_keys, or from data_dir/secret.key. Set session_https_only behind TLS.
    session_secret: str = ""
    session_https_only: bool = False
    session_max_age_hours: float = 12.0

    # Payment providers this process offers (comma-separated): test, stripe.
    payment_providers: str = "test"
    stripe_api_key: str = ""
    stripe_api_base: str = ""  # empty: Stripe itself
    stripe_timeout_seconds: float = 20.0
    test_provider_for_live_orders: bool = False

    secret_keys: str = Field(
        default="",
        description="comma-separated keys that encrypt stored secrets; the first encrypts. "
        "Empty: a key kept in data_dir/secret.key (fine for one machine, not for a cluster).",
    )

    # Outbound calls (webhooks, platform pushes).
    outbound_allow_private: bool = Field(
        default=False,
        description="allow loopback/private targets and plain http: development and tests only",
    )
    webhook_dispatcher: bool = True
    # Deliveries a claim takes at most; None: the dispatcher's default for the database
    # (webhooks.dispatcher.default_batch_size: 500 on PostgreSQL, 200 on SQLite).
    webhook_batch_size: int | None = None
    webhook_max_in_flight: int = 512
    webhook_connect_timeout: float = 5.0
    webhook_total_timeout: float = 15.0
    webhook_response_limit: int = 4096
    webhook_retry_schedule: str = "5,300,1800,7200,18000,36000,36000"
    webhook_disable_after_hours: float = 120.0
    webhook_attempt_retention_days: float = 30.0
    webhook_secret_overlap_hours: float = 24.0

    def secret_key_list(self) -> list[str]:
        return [key.strip() for key in self.secret_keys.split(",") if key.strip()]

    def retry_schedule(self) -> tuple[float, ...]:
        return tuple(float(part) for part in self.webhook_retry_schedule.split(",") if part.strip())

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'orderbridge.db').resolve()}"
