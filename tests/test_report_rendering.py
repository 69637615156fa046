"""Report figures are rendered once, when saved (#19): geopandas asks its canvas to redraw after every
layer, which Agg did at once, drawing each map several times over."""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg

from nearcare.report import maps


def test_a_map_of_the_demo_is_rendered_once(demo_store, monkeypatch):
    renders = []
    original = FigureCanvasAgg.draw
    monkeypatch.setattr(FigureCanvasAgg, "draw", lambda canvas: renders.append(1) or original(canvas))
    areas = maps.small_areas_frame(demo_store, "lsoa21_code, imd_decile")
    sites = demo_store.df("SELECT kind, easting, northing FROM sites WHERE easting IS NOT NULL")
    figure = maps.choropleth(
        areas, "imd_decile", title="IMD decile", legend_label="decile", categorical=True, sites=sites
    )
    assert not renders  # plotting layers draws nothing yet
    uri = maps.png_data_uri(figure)
    assert uri.startswith("data:image/png;base64,") and renders  # saving draws it
