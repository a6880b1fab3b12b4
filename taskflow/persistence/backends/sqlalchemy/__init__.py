"""SQL schema (``tables``) and Alembic migrations (``migration``) of the
SQLAlchemy persistence backend."""
