"""Alembic migrations of the data service."""

from pathlib import Path

SCRIPT_LOCATION = Path(__file__).parent
