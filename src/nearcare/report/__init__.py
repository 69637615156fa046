"""The HTML report, nearcare's presentation face: every section and figure is built here.

``document`` holds the report objects (sections, figures, tables) and renders them; ``maps`` draws
with matplotlib's object API (never pyplot's global state, so a notebook's backend is left alone);
one module per analysis (``atlas``, ``travel``, ``equity``, ``scenarios``, ``neighbourhoods``,
``hubs``, ``defib``) turns its results into sections. The analysis modules never import this package.
"""

from __future__ import annotations

from nearcare.area import area_label
from nearcare.report.atlas import atlas_sections, sources_section
from nearcare.report.document import Figure, Report, Section, Table, format_value, table_from_frame
from nearcare.report.equity import equity_sections
from nearcare.report.hubs import hub_sections
from nearcare.report.travel import travel_sections
from nearcare.report.workforce import workforce_sections
from nearcare.store import Store

__all__ = ["Figure", "Report", "Section", "Table", "area_report", "format_value", "table_from_frame"]


def area_report(store: Store, notes: list[str] | None = None, extra: list[Section] | None = None) -> Report:
    """The report for a built store: every analysis that has results adds its sections here;
    ``extra`` sections (a scenario, say) come before the sources, which close the report."""
    report = Report(f"nearcare: {area_label(store)}", "Atlas of primary care and neighbourhood services")
    for section in [
        *atlas_sections(store, notes),
        *travel_sections(store),
        *equity_sections(store),
        *workforce_sections(store),
        *(extra or []),
        *hub_sections(store),
    ]:
        report.add(section)
    report.add(sources_section(store))
    return report
