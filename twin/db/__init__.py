"""Storage: SQLAlchemy 2 (async) on SQLite or PostgreSQL, schema managed by Alembic.

- base.py: declarative base, constraint naming convention, UTCDateTime
- tables.py: the ORM models (the whole schema)
- engine.py: `create_engine`, `ping`, `Database` and the `database(settings)` resource, and the
  runners of the repository's units of work (SQLite: the synchronous sqlite3 driver, on the
  event loop for the pipeline's short units and in one thread for the rest; PostgreSQL: the
  async engine)
- migrate.py: `upgrade` / `downgrade` / `current` driven from code (no alembic.ini)
- crypto.py: `SessionCipher` and `load_or_create_key` for session data at rest
- repo/: `Repository`, the storage port, returning records from records.py
"""
