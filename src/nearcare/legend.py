"""Map classes and legends, computed once so that the web maps and the report's maps agree.

A measure is cut into ``k`` quantile classes (mapclassify); deciles and other small sets of whole
numbers keep one class per value. Labels are plain numbers with units (``12.5 min``, ``1,290``), never
scientific notation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from itertools import pairwise

import mapclassify
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex

MISSING_COLOUR = "#d8dde0"


def number(value: float) -> str:
    """A number as people write it: thousands separated, three significant figures, no exponent."""
    if not np.isfinite(value):
        return "no data"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = np.format_float_positional(value, precision=3, unique=False, fractional=False, trim="-")
    return text.rstrip(".")


@dataclass(frozen=True)
class Legend:
    """Classes of one measure: class ``i`` holds values up to ``upper[i]`` (the last, up to the maximum)."""

    title: str
    units: str
    upper: list[float]
    labels: list[str]
    colours: list[str]
    categorical: bool = False
    counts: list[int] = field(default_factory=list)  # areas in each class

    def classify(self, values: pd.Series) -> pd.Series:
        """The class number of each value (-1 where missing)."""
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        found = np.searchsorted(np.asarray(self.upper, dtype=float), numbers, side="left")
        found = np.minimum(found, len(self.upper) - 1)
        return pd.Series(np.where(np.isfinite(numbers), found, -1), index=values.index)

    def as_dict(self) -> dict:
        return {
            "title": self.title,
            "units": self.units,
            "upper": self.upper,
            "labels": self.labels,
            "colours": self.colours,
            "categorical": self.categorical,
            "counts": self.counts,
            "missing_colour": MISSING_COLOUR,
        }


def _colours(k: int, cmap: str) -> list[str]:
    ramp = colormaps[cmap]
    return [to_hex(ramp(i / max(k - 1, 1))) for i in range(k)]


def map_legend(
    values: pd.Series, *, title: str, units: str = "", k: int = 5, cmap: str = "viridis"
) -> Legend:
    """Classes for ``values``: one per value for up to ten whole numbers (deciles), else ``k`` quantiles."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    finite = numbers[np.isfinite(numbers)]
    suffix = f" {units}" if units else ""
    if finite.empty:
        return Legend(title, units, [], [], [])
    distinct = np.unique(finite)
    if len(distinct) <= 10 and np.all(distinct == np.round(distinct)):
        upper = [float(v) for v in distinct]
        labels = [number(v) + suffix for v in upper]
        categorical = True
    else:
        with warnings.catch_warnings():  # tied quantiles: fewer classes, which the unique() below keeps
            warnings.simplefilter("ignore", UserWarning)
            classes = mapclassify.Quantiles(finite.to_numpy(), k=min(k, len(distinct)))
        upper = [float(b) for b in np.unique(classes.bins)]
        edges = [float(finite.min()), *upper]
        labels = [f"{number(lo)} to {number(hi)}{suffix}" for lo, hi in pairwise(edges)]
        categorical = False
    legend = Legend(title, units, upper, labels, _colours(len(upper), cmap), categorical)
    counts = legend.classify(finite).value_counts()
    return replace(legend, counts=[int(counts.get(i, 0)) for i in range(len(upper))])
