"""The migrated schema is exactly the models' schema, on both backends, and migrations run
down and up again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from orderbridge.db.database import normalize_url
from orderbridge.db.models import Base


def test_migrated_schema_equals_the_models(database_url: str) -> None:
    engine = create_engine(normalize_url(database_url, async_driver=False))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_migrations_go_down_to_nothing_and_up_again(tmp_path: object) -> None:
    from pathlib import Path

    from sqlalchemy import inspect

    from orderbridge.db.migrate import downgrade, upgrade

    url = f"sqlite:///{Path(str(tmp_path)) / 'm.db'}"
    upgrade(url)
    downgrade(url, "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(url)
    assert {"orders", "events", "jobs"} <= set(inspect(engine).get_table_names())
    engine.dispose()
