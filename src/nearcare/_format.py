"""How figures read in printed text (CLI lines, headlines): the one place for it; files keep full precision."""

from __future__ import annotations

import math


def whole(people: float) -> str:
    """People as printed: a whole number with thousands separators, never -0."""
    return f"{round(people) + 0:,}" if math.isfinite(people) else "n/a"


def figure(value: float) -> str:
    """Any other figure as printed: 4 significant digits (whole numbers from 1,000), never -0."""
    if not math.isfinite(value):
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return "0" if text == "-0" else text
