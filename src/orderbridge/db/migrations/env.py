"""Alembic environment: runs migrations on a synchronous connection (sqlite3 or psycopg)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from orderbridge.db.models import Base

config = context.config
connectable = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)

with connectable.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
connectable.dispose()
