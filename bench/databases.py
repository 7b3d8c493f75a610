"""The databases of a run: a fresh SQLite file in a temporary folder, or a fresh
PostgreSQL database ``orderbridge_bench_<random>`` created at the start and dropped (with
FORCE, so that a crashed server cannot keep it alive) at the end, whatever happens between.
Both are migrated with the project's own Alembic migrations."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from bench.baseline import create_baseline_table
from orderbridge.db.database import normalize_url
from orderbridge.db.migrate import upgrade

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class BenchDatabase:
    backend: str  # "sqlite" or "postgresql"
    url: str  # what the servers get (the service picks its async driver itself)

    @property
    def sync_url(self) -> str:
        return normalize_url(self.url, async_driver=False)


def _prepare(database: BenchDatabase) -> BenchDatabase:
    upgrade(database.sync_url)
    create_baseline_table(database.sync_url)
    return database


@contextmanager
def sqlite_database(folder: Path) -> Iterator[BenchDatabase]:
    # The folder is the run's temporary directory: removing it removes the file.
    yield _prepare(BenchDatabase("sqlite", f"sqlite:///{folder / 'bench.db'}"))


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_database(admin_url: str) -> Iterator[BenchDatabase]:
    name = f"orderbridge_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(admin_url), autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        yield _prepare(BenchDatabase("postgresql", url))
    finally:
        with psycopg.connect(_libpq(admin_url), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
