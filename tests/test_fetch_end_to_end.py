"""``nearcare fetch --area QK1`` from a local server, then ``nearcare build --area QK1 --from DIR``,
gives the same area as today's demo data path (the bundle built from the same real files)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import SHARED_DATA, shared_file
from tests.test_fetch import BUNDLED_PBF, Server, cache_files, serving, sha
from typer.testing import CliRunner

from nearcare.area import build
from nearcare.bundle import BUNDLE_AREA, load_bundle
from nearcare.cli import app
from nearcare.fetch._http import verify
from nearcare.store import Store

# (kind, file under shared/data, path on the server as the publisher lays it out), in the order
# scripts/build_demo_data.py imports them for the bundle.
SERVED = [
    ("ods-pharmacies", "ods_pharmacies_edispensary/edispensary.csv", "/api/getReport?report=edispensary"),
    ("ods-dental-practices", "ods_dental_practices_egdpprac/egdpprac.csv", "/api/getReport?report=egdpprac"),
    ("nhs-choices-opticians", "nhs_choices_opticians_2014/Optician.csv", "/data/foi/Optician.csv"),
    ("postcodes", "os_codepoint_open_le/le.csv", "/downloads/CodePointOpen/le.csv"),
    (
        "lsoa-centroids",
        "lsoa_centroids_2011_drkane/lsoa_latlong.csv",
        "/api/download/centroids/lsoa_latlong.csv",
    ),
    *[
        (
            "lsoa-boundaries",
            f"lsoa_boundaries_llr_drkane/lsoa21/{lad}.geojson",
            f"/boundaries/lsoa21/{lad}.geojson",
        )
        for lad in (
            "E06000016",
            "E06000017",
            "E07000129",
            "E07000130",
            "E07000131",
            "E07000132",
            "E07000133",
            "E07000134",
            "E07000135",
        )
    ],
    (
        "lsoa-nhs-lookup",
        "ons_lookups_via_geographr/lookup_lsoa21_icb24.csv",
        "/api/download/lookup_lsoa21_icb24.csv",
    ),
    (
        "lsoa11-lsoa21-lookup",
        "ons_lookups_via_geographr/lookup_lsoa11_lsoa21_ltla22.csv",
        "/api/download/lookup_lsoa11_lsoa21_ltla22.csv",
    ),
    ("rural-urban", "ons_lookups_via_geographr/ruc21_lsoa21.csv", "/api/download/ruc21_lsoa21.csv"),
    ("imd2025", "imd_mhclg_via_humaniverse/imd2025_england_lsoa21.csv", "/media/691ded56/File_7_IoD2025.csv"),
    ("imd2019", "imd_mhclg_via_humaniverse/imd2019_england_lsoa11.csv", "/media/5dc407b4/File_7_IoD2019.csv"),
    (
        "population",
        "ons_lsoa_population_mid2017/pop_table_SAPE20DT1_mid2017_population_estimates.csv",
        "/file/SAPE20DT1_mid2017.csv",
    ),
    (
        "gp-list-sizes",
        "nhsd_gp_registered_patients_practice_totals/gp-reg-pat-prac-all_2021-01.csv",
        "/F1/3E4D66/gp-reg-pat-prac-all_2021-01.csv",
    ),
    (
        "gp-list-sizes",
        "nhsd_gp_registered_patients_practice_totals/gp-reg-pat-prac-all_2026-04_LLR_partial_subset.csv",
        "/A0/000000/gp-reg-pat-prac-all_2026-04.csv",
    ),
    ("gp-workforce", "heec_gp_workforce_annual/workforce_year.csv", "/gpw/workforce_year.csv"),
    (
        "practice-age-mix",
        "hocl_qof_prevalence_modelled_2019_20/gp_demographics.csv",
        "/hocl/gp_demographics.csv",
    ),
    ("qof-prevalence", "heec_qof_cvd_practice/QOF.csv", "/qof/QOF.csv"),
    (
        "practice-deprivation",
        "ohid_fingertips_gp_practice_imd2019/indicator-data_93553_imd2019_gp.csv",
        "/api/all_data/csv/by_indicator_id?indicator_ids=93553",
    ),
]
AREA_TABLES = ["small_areas", "sites", "site_placement", "practices"]


def _manifest(server: Server, tmp_path: Path) -> Path:
    """A manifest pointing at the local server: epraccur as the ODS zip, the rest as published."""
    epraccur = shared_file("ods_gp_practices_epraccur/epraccur.csv")
    archive = tmp_path / "epraccur.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(epraccur, "epraccur.csv")
    zip_url = server.add("/assets/ods/current/epraccur.zip", archive.read_bytes())
    lines = [
        f'[[source]]\nkind = "ods-gp-practices"\nname = "epraccur.zip"\nurl = "{zip_url}"\nmember = "epraccur.csv"\n'
        'format = "zip"\npage = "https://digital.nhs.uk/"\npublisher = "NHS England"\nlicence = "OGL v3"\n'
    ]
    for kind, relative, path in SERVED:
        data = shared_file(relative).read_bytes()
        fmt = "geojson" if relative.endswith(".geojson") else "csv"
        url = server.add(path, data)
        lines.append(
            f'[[source]]\nkind = "{kind}"\nname = "{Path(relative).name if kind != "lsoa-boundaries" else "lsoa21_" + Path(relative).name}"\n'
            f'url = "{url}"\nformat = "{fmt}"\nsha256 = "{sha(data)}"\npage = "https://example.org/"\n'
        )
    server.add("/england/rutland-latest.osm.pbf", BUNDLED_PBF.read_bytes())
    lines.append(
        f'[osm]\nurl_pattern = "{server.url}/england/{{region}}-latest.osm.pbf"\nbuffer_km = 10\n'
        "[osm.regions]\nrutland = [-0.83, 52.52, -0.42, 52.77]\n"
    )
    manifest = tmp_path / "sources.toml"
    manifest.write_text("\n".join(lines), encoding="utf-8")
    return manifest


def _area_tables(path: Path) -> dict[str, pd.DataFrame]:
    with Store(path, read_only=True) as store:
        tables = {}
        for table in AREA_TABLES:
            frame = store.df(f"SELECT * FROM {table}")
            frame = frame.drop(columns=[c for c in frame.columns if c == "source_id"])
            for column in frame.columns:  # geometries come back as bytearray, which cannot be sorted
                if frame[column].map(lambda v: isinstance(v, bytearray)).any():
                    frame[column] = frame[column].map(lambda v: bytes(v) if isinstance(v, bytearray) else v)
            tables[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return tables


@pytest.fixture()
def server() -> Iterator[Server]:
    with serving() as state:
        yield state


@pytest.mark.national
def test_fetch_then_build_from_gives_the_demo_area(server, tmp_path):
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not here")
    manifest = _manifest(server, tmp_path)
    cache, into, store = tmp_path / "cache", tmp_path / "qk1", tmp_path / "qk1.duckdb"
    runner = CliRunner()
    kinds = ["ods-gp-practices", *dict.fromkeys(k for k, _, _ in SERVED), "osm"]
    options = ["--manifest", str(manifest), "--cache", str(cache)]
    chosen = [a for k in kinds for a in ("--kind", k)]  # optional kinds too, as the bundle has them
    fetched = runner.invoke(app, ["fetch", "--area", "QK1", "--into", str(into), *options, *chosen])
    assert fetched.exit_code == 0, fetched.output
    assert "missing" not in fetched.output
    # Every national file is in the cache byte for byte; nothing is left half-written.
    for kind, relative, _ in SERVED:
        name = Path(relative).name if kind != "lsoa-boundaries" else "lsoa21_" + Path(relative).name
        assert sha((cache / kind / name).read_bytes()) == sha(shared_file(relative).read_bytes())
    assert not list((cache / ".partial").iterdir())
    record = json.loads((into / "fetched.json").read_text())
    assert [f["kind"] for f in record["files"]] == kinds

    built = runner.invoke(app, ["build", "--area", "QK1", "--from", str(into), "--store", str(store)])
    assert built.exit_code == 0, built.output
    assert "built " in built.output and "634 LSOAs" in built.output

    demo = tmp_path / "demo.duckdb"
    with Store(demo) as opened:
        load_bundle(opened)
        build(opened, BUNDLE_AREA)
    ours, theirs = _area_tables(store), _area_tables(demo)
    for table in AREA_TABLES:
        assert len(ours[table]) > 0
        pd.testing.assert_frame_equal(ours[table], theirs[table], check_dtype=False, obj=table)
    with Store(store, read_only=True) as opened:
        extract = opened.df("SELECT * FROM osm_extracts")
        assert len(extract) == 1 and extract["highway_ways"].iloc[0] > 0

    # A second area reuses the national files: only the cut is new, nothing is downloaded again.
    before = len(server.requests)
    cached = cache_files(cache)
    again = runner.invoke(app, ["fetch", "--area", "03W", "--into", str(tmp_path / "03w"), *options, *chosen])
    assert again.exit_code == 0, again.output
    assert len(server.requests) == before and cache_files(cache) == cached
    assert "cutting the area" in again.output and (tmp_path / "03w" / "osm" / "area.osm.pbf").exists()
    # OpenStreetMap alone for Rutland: its box comes from the lookups already in the cache.
    rutland = runner.invoke(
        app, ["fetch", "--area", "E06000017", "--into", str(tmp_path / "rut"), *options, "--kind", "osm"]
    )
    assert rutland.exit_code == 0, rutland.output
    record = json.loads((tmp_path / "rut" / "fetched.json").read_text())
    assert record["files"] == [{"kind": "osm", "paths": ["osm/area.osm.pbf"], "options": {}}]
    verify(tmp_path / "rut" / "osm" / "area.osm.pbf", fmt="pbf")
    assert len(server.requests) == before
