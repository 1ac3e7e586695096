"""The password rules: 12 to 128 characters and not one of the commonly used passwords."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
# 19 640 passwords that leaked most often (the list Django ships, from Royce Williams' compilation of
# breach corpora), lower-cased, one per line.
COMMON_PASSWORDS_RESOURCE = "common-passwords.txt.gz"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-cased; read once per process."""
    data = resources.files(__package__).joinpath(COMMON_PASSWORDS_RESOURCE).read_bytes()
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip())


@dataclass(frozen=True)
class PasswordPolicy:
    """What a new password must satisfy. `common` is injectable so tests can use a small list."""

    common: frozenset[str]
    min_length: int = MIN_PASSWORD_LENGTH
    max_length: int = MAX_PASSWORD_LENGTH

    @classmethod
    def default(cls) -> PasswordPolicy:
        return cls(common=common_passwords())

    def problem(self, password: str) -> str | None:
        """Why `password` may not be used as a new password, or None. Never echoes the password."""
        if len(password) < self.min_length:
            return f"must be at least {self.min_length} characters"
        if len(password) > self.max_length:
            return f"must be at most {self.max_length} characters"
        if password.strip().lower() in self.common:
            return "is too common; choose a password that is not on lists of leaked passwords"
        return None
