"""SQLAlchemy models and repositories of the inventory database. Repositories flush, never commit."""
