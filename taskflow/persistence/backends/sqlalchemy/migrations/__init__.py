"""Alembic environment and migration scripts (shipped with the package)."""
