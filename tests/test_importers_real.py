"""Each importer on the real public file, with counts and values checked against the file itself."""

from __future__ import annotations

import csv

import pytest
from tests.conftest import shared_file

from nearcare.sources import import_files, importers
from nearcare.store import Store

# kind, file, table, rows expected (independently: data rows in the file less those documented as left out)
REAL_FILES = [
    ("ods-gp-practices", "ods_gp_practices_epraccur/epraccur.csv", "organisations", None),
    ("ods-pharmacies", "ods_pharmacies_edispensary/edispensary.csv", "organisations", 20932),
    ("ods-dental-practices", "ods_dental_practices_egdpprac/egdpprac.csv", "organisations", 9908),
    ("nhs-choices-opticians", "nhs_choices_opticians_2014/Optician.csv", "organisations", 6343),
    ("postcodes", "os_codepoint_open_le/le.csv", "postcodes", 22230),
    ("lsoa-centroids", "lsoa_centroids_2011_drkane/lsoa_latlong.csv", "lsoa_centroids", None),
    ("lsoa-boundaries", "lsoa_boundaries_llr_drkane/lsoa21/E06000017.geojson", "lsoa_boundaries", 26),
    ("lsoa-nhs-lookup", "ons_lookups_via_geographr/lookup_lsoa21_icb24.csv", "lsoa_nhs_lookup", 33755),
    (
        "lsoa11-lsoa21-lookup",
        "ons_lookups_via_geographr/lookup_lsoa11_lsoa21_ltla22.csv",
        "lsoa11_lsoa21",
        35795,
    ),
    ("rural-urban", "ons_lookups_via_geographr/ruc21_lsoa21.csv", "rural_urban", 35672),
    ("imd2025", "imd_mhclg_via_humaniverse/imd2025_england_lsoa21.csv", "imd", 33755),
    ("imd2019", "imd_mhclg_via_humaniverse/imd2019_england_lsoa11.csv", "imd", 32844),
    (
        "population",
        "ons_lsoa_population_mid2017/pop_table_SAPE20DT1_mid2017_population_estimates.csv",
        "population",
        32844 + 1909,
    ),
    (
        "gp-list-sizes",
        "nhsd_gp_registered_patients_practice_totals/gp-reg-pat-prac-all_2021-01.csv",
        "gp_list_sizes",
        6658,
    ),
    ("gp-workforce", "heec_gp_workforce_annual/workforce_year.csv", "gp_workforce", 62673),
    (
        "practice-age-mix",
        "hocl_qof_prevalence_modelled_2019_20/gp_demographics.csv",
        "practice_age_mix",
        6797,
    ),
    ("qof-prevalence", "heec_qof_cvd_practice/QOF.csv", "qof_prevalence", None),
    ("osm", "osm_rutland_geofabrik_2018/rutland-latest.osm.pbf", "osm_extracts", 1),
]


@pytest.mark.national
@pytest.mark.parametrize("kind, relative, table, expected", REAL_FILES, ids=[r[0] for r in REAL_FILES])
def test_import_real_file(tmp_path, kind, relative, table, expected):
    path = shared_file(relative)
    with Store(tmp_path / "s.duckdb") as store:
        result = import_files(store, kind, [path])
        assert result.rows[table] == store.count(table) > 0
        if expected is not None:
            assert store.count(table) == expected
        provenance = store.df("SELECT * FROM provenance")
        assert list(provenance["kind"]) == [kind] and provenance["sha256"].str.len().iloc[0] == 64


@pytest.mark.national
def test_epraccur_keeps_gp_practices_only(tmp_path):
    path = shared_file("ods_gp_practices_epraccur/epraccur.csv")
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    settings = [r[25] for r in rows]
    parsed = importers()["ods-gp-practices"].parse(path).tables["organisations"]
    assert len(parsed) == settings.count("4")
    c82001 = parsed.set_index("code").loc["C82001"]
    raw = next(r for r in rows if r[0] == "C82001")
    assert (c82001["name"], c82001["postcode"], c82001["sub_icb_code"]) == (raw[1], raw[9], raw[14])


@pytest.mark.national
def test_centroids_leave_out_other_nations(tmp_path):
    path = shared_file("lsoa_centroids_2011_drkane/lsoa_latlong.csv")
    with open(path, newline="") as handle:
        codes = [r[0] for r in csv.reader(handle)][1:]
    english_welsh = sum(c[:3] in ("E01", "W01") for c in codes)
    parsed = importers()["lsoa-centroids"].parse(path)
    assert len(parsed.tables["lsoa_centroids"]) == english_welsh
    assert f"{len(codes) - english_welsh} areas" in parsed.notes[0]


@pytest.mark.national
def test_postcode_coordinates_round_trip(tmp_path):
    """Code-Point grid references become lat/lon that land back within a metre."""
    from nearcare.geo import to_bng

    frame = importers()["postcodes"].parse(shared_file("os_codepoint_open_le/le.csv")).tables["postcodes"]
    e, n = to_bng(frame["lon"], frame["lat"])
    assert abs(e - frame["easting"]).max() < 1 and abs(n - frame["northing"]).max() < 1
    assert frame["postcode"].str.fullmatch(r"LE\d{1,2} \d[A-Z]{2}").all()
