"""Alembic environment of the data service (its own database)."""

from alembic import context

from data_service.repository.models import Base
from shared.migrations import run_env

run_env(context, Base.metadata)
