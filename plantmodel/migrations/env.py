"""Alembic environment: runs on the engine PlantDb hands over, or on the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from plantmodel.db import Base

config = context.config
target_metadata = Base.metadata

#: Every process upgrades on start; on PostgreSQL, two starting at once (API replicas, ``plant seed`` beside the
#: API) would both find an empty database and collide creating the tables. This transaction-scoped advisory
#: lock makes the second wait and then find the schema current. Any constant works; this one is "sfplant".
PG_MIGRATION_LOCK = 0x7366706C616E74


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        # batch mode: SQLite cannot ALTER most things, Alembic recreates the table instead
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
