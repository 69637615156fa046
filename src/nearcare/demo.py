"""``nearcare demo``: the bundled LLR data, built into a store, with the report written beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nearcare.area import BuildResult, build
from nearcare.bundle import BUNDLE_AREA, load_bundle
from nearcare.report import area_report
from nearcare.store import Store


@dataclass
class DemoResult:
    store_path: Path
    report_path: Path
    build: BuildResult


def run_demo(out: Path, *, log=print) -> DemoResult:
    """Build ``out/nearcare.duckdb`` from the bundled data and write ``out/report.html``."""
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "nearcare.duckdb"
    with Store(store_path) as store:
        counts = load_bundle(store)
        log(f"loaded bundled LLR data: {sum(counts.values()):,} rows in {len(counts)} tables")
        result = build(store, BUNDLE_AREA)
        log(f"built {result.label}: {result.lsoas} LSOAs; sites " +
            ", ".join(f"{k} {v}" for k, v in sorted(result.sites.items())))
        report_path = area_report(store, result.notes).write(out / "report.html")
    log(f"wrote {report_path}")
    return DemoResult(store_path, report_path, result)
