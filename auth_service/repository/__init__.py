"""SQLAlchemy models and repositories of the auth database. Repositories flush, never commit."""
