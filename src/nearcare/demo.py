"""``nearcare demo``: the bundled LLR data, built into a store, with the report written beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nearcare import defib
from nearcare._progress import step
from nearcare.access import compute_access
from nearcare.allocation import allocate_units
from nearcare.area import BuildResult, build
from nearcare.bundle import BUNDLE_AREA, load_bundle
from nearcare.neighbourhoods import check as check_neighbourhoods
from nearcare.neighbourhoods import design as design_neighbourhoods
from nearcare.network import build_networks
from nearcare.network.search import cores
from nearcare.report import area_report
from nearcare.report.defib import defib_section
from nearcare.report.neighbourhoods import neighbourhood_section
from nearcare.report.scenarios import scenario_section
from nearcare.scenarios import Scenario, check_scenario, rank_closures, run_scenario
from nearcare.store import ORGANISATION_KINDS, SERVICE_KINDS, Store
from nearcare.travel import compute_travel_times

RUTLAND = "E06000017"  # the bundled OSM extract covers Rutland only
DEMO_MAX_MINUTES = {"walk": 30.0, "drive": 30.0}
DEMO_ALLOCATION_FTE = 10.0
DEMO_CLOSURE = "C82044"  # Empingham Medical Centre, one of Rutland's four practices
DEMO_NEW_DEFIBRILLATORS = 5


@dataclass
class DemoResult:
    store_path: Path
    report_path: Path
    build: BuildResult


def run_demo(out: Path, *, log=print) -> DemoResult:
    """Build ``out/nearcare.duckdb`` from the bundled data and write ``out/report.html``."""
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "nearcare.duckdb"
    # Built afresh beside the old one and moved into place at the end: never half a store.
    building = out / "nearcare.duckdb.building"
    for leftover in (building, building.with_name(building.name + ".wal")):
        leftover.unlink(missing_ok=True)
    with Store(building) as store:
        with step("loading the bundled data"):
            counts = load_bundle(store)
        log(f"loaded bundled LLR data: {sum(counts.values()):,} rows in {len(counts)} tables")
        with step("building the area"):
            result = build(store, BUNDLE_AREA)
        log(
            f"built {result.label}: {result.lsoas} LSOAs; sites "
            + ", ".join(f"{k} {v}" for k, v in sorted(result.sites.items()))
        )
        with step("building the road networks"):
            networks = build_networks(store)
        for network in networks:
            log(
                f"{network.mode} network: {network.n_nodes:,} nodes, {len(network.source):,} edges "
                f"({network.dropped_nodes:,} nodes outside the largest strongly connected part dropped)"
            )
        rutland = store.df("SELECT lsoa21_code FROM small_areas WHERE lad_code = ?", [RUTLAND])[
            "lsoa21_code"
        ].tolist()
        for profile, max_minutes in DEMO_MAX_MINUTES.items():
            with step(f"{profile} times on the Rutland road network"):
                runs = compute_travel_times(
                    store, profile, list(ORGANISATION_KINDS), max_minutes=max_minutes, lsoas=rutland
                )
            log(
                f"{profile} times for {len(rutland)} Rutland LSOAs: {sum(r.pairs for r in runs):,} pairs "
                f"within {max_minutes:g} minutes"
            )
        kinds = list(SERVICE_KINDS)
        with step("crow-fly times and access measures", total=2 * len(DEMO_MAX_MINUTES)) as advance:
            for profile, max_minutes in DEMO_MAX_MINUTES.items():
                compute_travel_times(store, profile, kinds, max_minutes=max_minutes, crowfly=True)
                for mode in ("crowfly", profile):
                    compute_access(store, profile, mode=mode)
                    advance()
        log("access measures: LLR by crow-fly estimate (labelled), Rutland on the road network")
        with step("allocating GP FTE"):
            allocation = allocate_units(store, DEMO_ALLOCATION_FTE, to="practices")
        log(f"allocated {DEMO_ALLOCATION_FTE:g} GP FTE in proportion to need: {allocation.summary}")
        closure = Scenario("Close Empingham Medical Centre (Rutland)", close=[DEMO_CLOSURE])
        with step("closing Empingham Medical Centre"):
            check_scenario(store, closure)
            closure_result = run_scenario(store, closure, mode="drive")  # on the Rutland road network
        with step("ranking every practice closure"):  # counted inside, closure by closure
            ranked = rank_closures(store, "gp", mode="crowfly", workers=cores())
        ranked.to_csv(out / "ranked_practice_closures.csv", index=False)
        log(f"scenario: {closure.name}; ranked {len(ranked)} single practice closures across LLR")
        with step("siting defibrillators"):
            defib.import_osm_defibrillators(store)  # the bundle holds an extract
            siting, cov = defib.best_sites(store, DEMO_NEW_DEFIBRILLATORS, lsoas=rutland)
        log(
            f"defibrillators in Rutland: {DEMO_NEW_DEFIBRILLATORS} best new sites cover {siting.exact_people:,.0f} "
            f"more people at night (greedy {siting.greedy_people:,.0f})"
        )
        with step("checking the neighbourhoods"):  # designing is counted inside, LSOA by LSOA
            design_neighbourhoods(store)
            designed = check_neighbourhoods(store)
        log(f"neighbourhoods: {designed.summary}")
        with step("writing the report (figures)"):  # each figure drawn counts
            report = area_report(
                store,
                result.notes,
                [
                    scenario_section(store, closure_result, ranked),
                    defib_section(store, cov, siting, defib.deserts(cov)),
                    neighbourhood_section(store, designed),
                ],
            )
            report_path = report.write(out / "report.html")
    building.replace(store_path)
    log(f"wrote {store_path} and {report_path}")
    return DemoResult(store_path, report_path, result)
