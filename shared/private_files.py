"""Files that hold secrets or password hashes (SQLite databases, the development signing key).

They are created readable and writable by their owner only (0600) in a directory only the owner may
enter (0700), whatever the umask: a SQLite file of the auth service holds every password hash.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.config import VAR_DIR

PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# Files SQLite keeps next to a database; they hold its pages too.
SQLITE_COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


def private_directory(path: Path) -> None:
    """Create `path` (0700). A directory we created, or ./var/ from an older run, is tightened to 0700;
    other existing directories (a shared /tmp, say) are left alone."""
    created = not path.exists()
    path.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True, exist_ok=True)
    if created or path.resolve() == VAR_DIR.resolve():
        os.chmod(path, PRIVATE_DIRECTORY_MODE)


def private_file(path: Path) -> None:
    """Create `path` empty if it is missing, and make it 0600 either way."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE)
    os.close(descriptor)
    os.chmod(path, PRIVATE_FILE_MODE)


def private_sqlite_database(database: Path) -> None:
    """A SQLite database file and its companions, owner only, in a private directory."""
    private_directory(database.parent)
    private_file(database)
    for suffix in SQLITE_COMPANION_SUFFIXES:
        companion = database.with_name(database.name + suffix)
        if companion.exists():
            os.chmod(companion, PRIVATE_FILE_MODE)
