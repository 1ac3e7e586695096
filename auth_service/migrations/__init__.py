"""Alembic migrations of the auth service."""

from pathlib import Path

SCRIPT_LOCATION = Path(__file__).parent
