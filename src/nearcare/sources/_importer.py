"""What an importer is and what it yields: the types every parser module shares.

Kept apart from ``nearcare.sources`` (which runs the importers) so that the parser modules and the
package that lists them do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Parsed:
    """What one file yields: rows per store table, the data date it states, and notes for the user."""

    tables: dict[str, pd.DataFrame]
    data_date: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Importer:
    kind: str
    summary: str
    parse: Callable[..., Parsed]
    publisher: str
    licence: str
