"""Test databases: SQLite files and throwaway PostgreSQL databases.

PostgreSQL is found at ORDERBRIDGE_TEST_POSTGRES_URL (default: the local server, user
postgres). When it is not reachable its tests are skipped, unless
ORDERBRIDGE_REQUIRE_POSTGRES=1 (as in CI), which turns that into a failure."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from orderbridge.db.migrate import upgrade
from orderbridge.db.models import Base

ADMIN_URL = os.environ.get(
    "ORDERBRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRED = os.environ.get("ORDERBRIDGE_REQUIRE_POSTGRES", "") not in ("", "0", "false")

# Children before parents, so that deleting in this order never breaks a foreign key.
TABLES = [table.name for table in reversed(Base.metadata.sorted_tables)]


def _admin_conninfo() -> str:
    url = make_url(ADMIN_URL)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_available() -> str | None:
    """None when reachable, else the reason."""
    try:
        with psycopg.connect(_admin_conninfo(), connect_timeout=3):
            return None
    except psycopg.Error as error:
        return f"PostgreSQL not reachable at {ADMIN_URL}: {error}".strip()


def require_postgres() -> None:
    reason = postgres_available()
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"ORDERBRIDGE_REQUIRE_POSTGRES is set but {reason}", pytrace=False)
    pytest.skip(reason)


def create_postgres_database() -> str:
    name = f"orderbridge_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(database=name)
    return url.render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated_sqlite(directory: Path) -> str:
    url = f"sqlite:///{directory / 'orderbridge.db'}"
    upgrade(url)
    return url


def migrated_postgres() -> str:
    url = create_postgres_database()
    upgrade(make_url(url).set(drivername="postgresql+psycopg").render_as_string(False))
    return url


def truncate_sql(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"]
    return [f"DELETE FROM {table}" for table in TABLES]
