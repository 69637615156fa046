"""The report document: sections of text, figures and tables, rendered to one self-contained file.

Everything is escaped by the template and images are embedded, so the file opens offline and can be
e-mailed as it is.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from nearcare._version import __version__


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[str]]
    note: str | None = None


@dataclass
class Figure:
    uri: str
    alt: str


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    key: str | None = None  # the one finding for the report's summary (else its first sentence)


def format_value(value: object, digits: int = 0) -> str:
    """Numbers with thousands separators; missing values as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if abs(value) < 0.5 * 10**-digits:
            value = 0.0  # no "-0" from rounding noise
        return f"{value:,.{digits}f}"
    return str(value)


def table_from_frame(
    frame: pd.DataFrame,
    caption: str,
    *,
    labels: dict[str, str],
    digits: dict[str, int] | None = None,
    note: str | None = None,
) -> Table:
    """A report table from the columns named in ``labels`` (column -> heading)."""
    digits = digits or {}
    rows = [[format_value(row[c], digits.get(c, 0)) for c in labels] for _, row in frame.iterrows()]
    return Table(caption, list(labels.values()), rows, note)


@dataclass
class Report:
    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)

    def add(self, section: Section) -> None:
        self.sections.append(section)

    def summary(self, *, limit_chars: int = 220) -> list[tuple[str, str]]:
        """One finding per section for the report's first screen: its ``key`` finding, else the first
        sentence of its first paragraph (shortened to ``limit_chars``); sections with neither are left out."""
        found = []
        for section in self.sections:
            if not section.key and not section.paragraphs:
                continue
            text = section.key or section.paragraphs[0]
            first = re.split(r"(?<=\.)\s+(?=[A-Z])", text.strip(), maxsplit=1)[0]
            if len(first) > limit_chars:
                first = first[: limit_chars - 1].rsplit(" ", 1)[0] + "…"
            found.append((section.title, first))
        return found

    def render(self) -> str:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("nearcare", "templates"),
            autoescape=jinja2.select_autoescape(["html"]),
        )
        return env.get_template("report.html").render(
            report=self, version=__version__, generated=dt.date.today().isoformat()
        )

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.render(), encoding="utf-8")
        tmp.replace(path)  # a reader never sees half a report
        return path
