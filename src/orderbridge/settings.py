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
    events_page_max: int = 100

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'orderbridge.db').resolve()}"
