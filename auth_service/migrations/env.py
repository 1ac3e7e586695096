"""Alembic environment of the auth service (its own database)."""

from alembic import context

from auth_service.repository.models import Base
from shared.migrations import run_env

run_env(context, Base.metadata)
