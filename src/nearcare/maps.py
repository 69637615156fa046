"""Static maps and charts for reports (matplotlib, PNG embedded in the page: no internet to view).

Maps are drawn in British National Grid so distances look right.
"""

from __future__ import annotations

import base64
import io

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt
import pandas as pd

from nearcare.geo import BNG, from_wkb
from nearcare.store import Store

# IMD deciles: 1 (most deprived) dark to 10 (least) light, a sequential scheme readable in grey too.
DECILE_COLOURS = "viridis"
SERVICE_MARKERS = {
    "gp": ("GP practice", "o", "#d5281b"),
    "pharmacy": ("Pharmacy", "^", "#005eb8"),
    "dentist": ("Dental practice", "s", "#ffb81c"),
    "optometrist": ("Optician (2014 list)", "D", "#ffffff"),
}


def png_data_uri(figure: plt.Figure) -> str:
    """Render a figure to a data URI for an <img> tag, and close it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def small_areas_frame(store: Store, columns: str = "*") -> gpd.GeoDataFrame:
    """The area's LSOAs as a GeoDataFrame in British National Grid."""
    frame = store.df(f"SELECT {columns}, boundary FROM small_areas WHERE boundary IS NOT NULL")
    geometry = from_wkb(frame.pop("boundary"))
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326").to_crs(BNG)


def choropleth(
    areas: gpd.GeoDataFrame,
    column: str,
    *,
    title: str,
    legend_label: str,
    cmap: str = "viridis_r",
    categorical: bool = False,
    sites: pd.DataFrame | None = None,
) -> plt.Figure:
    """A map of ``areas`` coloured by ``column``, with services as markers when ``sites`` is given."""
    figure, axes = plt.subplots(figsize=(9, 9))
    kwargs = {"categorical": True} if categorical else {"legend_kwds": {"label": legend_label, "shrink": 0.6}}
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
    if categorical and axes.get_legend() is not None:
        axes.get_legend().set_title(legend_label)
        axes.get_legend().set_bbox_to_anchor((1.0, 0.0, 0.3, 0.5))
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


def bar_chart(categories: list, values: list, *, title: str, xlabel: str, ylabel: str) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(7, 3.6))
    axes.bar([str(c) for c in categories], values, color="#005eb8")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.spines[["top", "right"]].set_visible(False)
    return figure
