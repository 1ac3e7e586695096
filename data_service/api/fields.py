"""Collecting every bad field of a request into one INVALID_ARGUMENT (AIP-193 `BadRequest`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from data_service.domain.values import InvalidValue
from shared.errors import FieldViolation, InvalidArgument

R = TypeVar("R")
T = TypeVar("T")

# Stands in for a value that failed its check; never escapes, because `raise_if_any` runs first.
_INVALID: Any = object()


class FieldErrors:
    """Checks fields one by one and remembers every failure, instead of stopping at the first.

    `check` returns the parsed value, or a placeholder when the value is bad: build commands from the
    results only after `raise_if_any()`.
    """

    def __init__(self) -> None:
        self._violations: list[FieldViolation] = []
        self._reasons: set[str | None] = set()

    def check(self, field: str, parse: Callable[[R], T], raw: R, *, reason: str | None = None) -> T:
        try:
            return parse(raw)
        except InvalidValue as exc:
            self.add(field, str(exc), reason=reason)
            return cast(T, _INVALID)

    def combine(self, build: Callable[..., T], *parts: object) -> T:
        """`build(*parts)` if every part passed its check, else the placeholder."""
        if any(part is _INVALID for part in parts):
            return cast(T, _INVALID)
        return build(*parts)

    def missing(self, field: str, description: str) -> Any:
        """Record a required field that is absent; returns the placeholder."""
        self.add(field, description)
        return _INVALID

    def add(self, field: str, description: str, *, reason: str | None = None) -> None:
        self._violations.append(FieldViolation(field, description))
        self._reasons.add(reason)

    def raise_if_any(self) -> None:
        if not self._violations:
            return
        # A specific reason (e.g. INVALID_PAGE_TOKEN) only when it is the whole story.
        reason = next(iter(self._reasons)) if len(self._reasons) == 1 else None
        summary = "; ".join(f"{v.field}: {v.description}" for v in self._violations)
        raise InvalidArgument(f"invalid request: {summary}", violations=self._violations, reason=reason)
