"""Errors named for what went wrong; each subclasses a built-in so callers can catch broadly."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """A file or value given to nearcare is not what it should be.

    Carries the file, line (1-based, as a text editor counts) and field, so that the message
    points the user at the exact place to fix.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        self.problem = problem
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.value = value
        where = []
        if self.path:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if field:
            where.append(f"field {field!r}")
        text = ", ".join(where)
        message = f"{text}: {problem}" if text else problem
        if value is not None:
            message += f" (got {str(value)[:80]!r})"
        super().__init__(message)


class StoreError(RuntimeError):
    """The store lacks something a step needs (run the step that makes it first)."""
