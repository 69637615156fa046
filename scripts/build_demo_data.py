"""Rebuild the bundled LLR demo data (src/nearcare/data/llr) from ../shared/data.

Runs the ordinary importers on the national public files, builds the LLR area (QK1) and keeps
the rows it needs. Run from the repository root:  python scripts/build_demo_data.py
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from nearcare.area import build
from nearcare.bundle import BUNDLE_AREA, bundle_dir, make_bundle
from nearcare.sources import import_files
from nearcare.store import Store
from nearcare.workforce import england_workforce

# (import kind, files under shared/data), in the order a user would import them.
NATIONAL_FILES = [
    ("ods-gp-practices", ["ods_gp_practices_epraccur/epraccur.csv"]),
    ("ods-pharmacies", ["ods_pharmacies_edispensary/edispensary.csv"]),
    ("ods-dental-practices", ["ods_dental_practices_egdpprac/egdpprac.csv"]),
    ("nhs-choices-opticians", ["nhs_choices_opticians_2014/Optician.csv"]),
    ("postcodes", ["os_codepoint_open_le/le.csv"]),
    ("lsoa-centroids", ["lsoa_centroids_2011_drkane/lsoa_latlong.csv"]),
    (
        "lsoa-boundaries",
        sorted(
            f"lsoa_boundaries_llr_drkane/lsoa21/{p.name}"
            for p in Path(__file__)
            .resolve()
            .parents[2]
            .joinpath("shared/data/lsoa_boundaries_llr_drkane/lsoa21")
            .glob("*.geojson")
        ),
    ),
    ("lsoa-nhs-lookup", ["ons_lookups_via_geographr/lookup_lsoa21_icb24.csv"]),
    ("lsoa11-lsoa21-lookup", ["ons_lookups_via_geographr/lookup_lsoa11_lsoa21_ltla22.csv"]),
    ("rural-urban", ["ons_lookups_via_geographr/ruc21_lsoa21.csv"]),
    ("imd2025", ["imd_mhclg_via_humaniverse/imd2025_england_lsoa21.csv"]),
    ("imd2019", ["imd_mhclg_via_humaniverse/imd2019_england_lsoa11.csv"]),
    ("population", ["ons_lsoa_population_mid2017/pop_table_SAPE20DT1_mid2017_population_estimates.csv"]),
    (
        "gp-list-sizes",
        [
            "nhsd_gp_registered_patients_practice_totals/gp-reg-pat-prac-all_2021-01.csv",
            "nhsd_gp_registered_patients_practice_totals/gp-reg-pat-prac-all_2026-04_LLR_partial_subset.csv",
        ],
    ),
    ("gp-workforce", ["heec_gp_workforce_annual/workforce_year.csv"]),
    ("practice-age-mix", ["hocl_qof_prevalence_modelled_2019_20/gp_demographics.csv"]),
    ("qof-prevalence", ["heec_qof_cvd_practice/QOF.csv"]),
    ("practice-deprivation", ["ohid_fingertips_gp_practice_imd2019/indicator-data_93553_imd2019_gp.csv"]),
    ("osm", ["osm_rutland_geofabrik_2018/rutland-latest.osm.pbf"]),
]


def import_national(store: Store, data: Path) -> None:
    for kind, files in NATIONAL_FILES:
        result = import_files(store, kind, [data / f for f in files])
        print(f"{kind}: {result.rows}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=bundle_dir())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "national.duckdb") as store:
        import_national(store, args.data)
        result = build(store, BUNDLE_AREA)
        print(f"built {result.label}: {result.lsoas} LSOAs, sites {result.sites}")
        counts = make_bundle(store, args.out, england_workforce=england_workforce(store))
    print(f"wrote {args.out}: {counts}")


if __name__ == "__main__":
    main()
