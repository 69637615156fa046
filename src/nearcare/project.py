"""The one Python API: ``nearcare.open(path) -> Project``.

A ``Project`` is a store (one DuckDB file: imported sources, their provenance and the derived area
tables) with a method for each thing nearcare answers. Methods return pandas DataFrames or
GeoDataFrames; those whose results belong in the store take ``save=``. The CLI and the web app call
only this class, so everything they show can be had from Python without SQL.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from nearcare.store import Store


class Project:
    """One analysis store and the questions asked of it (see ``docs/API.md``)."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.store = Store(self.path, read_only=read_only)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.store.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"<nearcare.Project {str(self.path)!r}{' read-only' if self.read_only else ''}>"

    # ---- Atlas, access, equity, scenarios, neighbourhoods, defibrillators (facade helper) ----

    # ---- Queries the web app needs (web helper; keep below this line) ----


def open(path: str | Path, *, read_only: bool = False) -> Project:  # nearcare.open, like io.open
    """Open (or create) the store at ``path``."""
    return Project(path, read_only=read_only)
