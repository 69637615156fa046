"""Static maps and charts for reports (matplotlib, PNG embedded in the page: no internet to view).

Maps are drawn in British National Grid so distances look right.
"""

from __future__ import annotations

import base64
import io

import geopandas as gpd
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nearcare._progress import advance
from nearcare.area import small_areas_frame
from nearcare.legend import map_legend

__all__ = ["bar_chart", "choropleth", "new_figure", "png_data_uri", "small_areas_frame"]

# IMD deciles: 1 (most deprived) dark to 10 (least) light, a sequential scheme readable in grey too.
DECILE_COLOURS = "viridis"
SERVICE_MARKERS = {
    "gp": ("GP practice", "o", "#d5281b"),
    "pharmacy": ("Pharmacy", "^", "#005eb8"),
    "dentist": ("Dental practice", "s", "#ffb81c"),
    "optometrist": ("Optician (2014 list)", "D", "#ffffff"),
}


class _RenderedOnce(FigureCanvasAgg):
    """Agg draws at once when asked to redraw "when idle" (geopandas asks after every layer it
    plots): a report figure is rendered when it is saved, and only then."""

    def draw_idle(self, *args: object, **kwargs: object) -> None:
        pass


def new_figure(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A figure with one axes, drawn by Agg on its own canvas: pyplot's global state and the
    caller's backend (a notebook's, say) are never touched."""
    figure = Figure(figsize=figsize)
    _RenderedOnce(figure)
    return figure, figure.add_subplot()


def png_data_uri(figure: Figure) -> str:
    """Render a figure to a data URI for an <img> tag."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    advance()  # one more figure written, for the step that shows progress
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def choropleth(
    areas: gpd.GeoDataFrame,
    column: str,
    *,
    title: str,
    legend_label: str,
    cmap: str = "viridis_r",
    categorical: bool = False,
    sites: pd.DataFrame | None = None,
) -> Figure:
    """A map of ``areas`` coloured by ``column``, with services as markers when ``sites`` is given."""
    figure, axes = new_figure((9, 9))
    kwargs: dict[str, object] = {"categorical": True}
    if not categorical:  # the web map's classes (nearcare.legend), so the two agree
        classes = map_legend(areas[column], title=legend_label)
        kwargs = {"legend_kwds": {"label": legend_label, "shrink": 0.6}}
        if classes.upper:
            kwargs = {
                "scheme": "UserDefined",
                "classification_kwds": {"bins": classes.upper},
                "legend_kwds": {"labels": classes.labels},
            }
    areas.plot(
        column=column,
        ax=axes,
        cmap=cmap,
        legend=True,
        edgecolor="#ffffff",
        linewidth=0.15,
        missing_kwds={"color": "#d8dde0", "label": "no data"},
        **kwargs,
    )
    decile_legend = axes.get_legend()
    if decile_legend is not None:
        decile_legend.set_title(legend_label)
        decile_legend.set_bbox_to_anchor((1.0, 0.0, 0.3, 0.5))
    if sites is not None and len(sites):
        handles = []
        for kind, (label, marker, colour) in SERVICE_MARKERS.items():
            subset = sites[(sites["kind"] == kind) & sites["easting"].notna()]
            if len(subset):
                handles.append(
                    axes.scatter(
                        subset["easting"],
                        subset["northing"],
                        s=14,
                        marker=marker,
                        c=colour,
                        edgecolors="#212b32",
                        linewidths=0.5,
                        label=label,
                        zorder=3,
                    )
                )
        if handles:
            first = axes.get_legend()
            axes.legend(
                handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, framealpha=0.9
            )
            if first is not None:
                axes.add_artist(first)
    axes.set_title(title)
    axes.set_axis_off()
    return figure


def bar_chart(categories: list, values: list, *, title: str, xlabel: str, ylabel: str) -> Figure:
    figure, axes = new_figure((7, 3.6))
    axes.bar([str(c) for c in categories], values, color="#005eb8")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.spines[["top", "right"]].set_visible(False)
    return figure
