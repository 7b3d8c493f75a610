"""Storage: the tables (SQLAlchemy 2 models), the Alembic migrations, and the Database
object that hands out transactions. Dialect differences (SQLite vs PostgreSQL) are kept in
``database`` (connection set-up) and ``dialect`` (the few statements that differ)."""
