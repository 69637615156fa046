"""Bad input gets an error naming file, line and field; a good file parses."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import epraccur, good_row, write

from nearcare import InputError
from nearcare.sources import importers


def parse(kind, path, **options):
    return importers()[kind].parse(path, **options)


def test_good_epraccur_parses(tmp_path, tiny_floors):
    result = parse(
        "ods-gp-practices",
        epraccur(tmp_path, [good_row(), good_row("C82002"), good_row("C82099", setting="1")]),
    )
    orgs = result.tables["organisations"]
    assert list(orgs["code"]) == ["C82001", "C82002"]
    assert set(orgs["status"]) == {"active"} and set(orgs["sub_icb_code"]) == {"03W"}
    assert "1 prescribing cost centres" in result.notes[0]


def test_truncated_row_names_line(tmp_path):
    path = epraccur(tmp_path, [good_row(), good_row("C82002"), good_row("C82003").rsplit(",", 5)[0]])
    with pytest.raises(InputError) as err:
        parse("ods-gp-practices", path)
    assert err.value.line == 3 and "expected 27" in str(err.value) and str(path) in str(err.value)


def test_duplicate_key_names_both_lines(tmp_path):
    path = epraccur(tmp_path, [good_row(), good_row("C82002"), good_row()])
    with pytest.raises(InputError, match=r"line 3.*duplicate code C82001 \(first seen on line 1\)"):
        parse("ods-gp-practices", path)


def test_malformed_postcode(tmp_path):
    with pytest.raises(InputError) as err:
        parse("ods-gp-practices", epraccur(tmp_path, [good_row(), good_row("C82002", postcode="NOT A CODE")]))
    assert (err.value.line, err.value.field) == (2, "postcode (column 10)")


def test_malformed_date(tmp_path):
    row = good_row().replace('"20000101"', '"2000-01-01"')
    with pytest.raises(InputError, match="not a date"):
        parse("ods-gp-practices", epraccur(tmp_path, [row]))


def test_malformed_lsoa_code(tmp_path):
    path = write(
        tmp_path / "lookup.csv",
        "lsoa21_name,lsoa21_code,sicbl24_name,sicbl24_code,sicbl24_code_nhs,icb24_name,icb24_code,icb24_code_nhs\n"
        "Rutland 001A,E01013787,X,E38000051,03W,Y,E54000015,QK1\n"
        "Rutland 001B,E0101378,X,E38000051,03W,Y,E54000015,QK1\n",
    )
    with pytest.raises(InputError) as err:
        parse("lsoa-nhs-lookup", path)
    assert (err.value.line, err.value.field, err.value.value) == (3, "lsoa21_code", "E0101378")


def test_missing_column(tmp_path):
    path = write(tmp_path / "pop.csv", "Area Codes,Persons\nE01013787,1500\n")
    with pytest.raises(InputError, match=r"line 1.*missing column.*'All Ages'"):
        parse("population", path, year=2017)


def test_non_numeric_count(tmp_path):
    path = write(
        tmp_path / "gp-reg-pat-prac-all.csv",
        "PUBLICATION,EXTRACT_DATE,TYPE,CCG_CODE,ONS_CCG_CODE,CODE,POSTCODE,SEX,AGE,NUMBER_OF_PATIENTS\n"
        "GP_PRAC_PAT_LIST,01JAN2021,GP,03W,E38000051,C82001,LE8 0LG,ALL,ALL,25822\n"
        "GP_PRAC_PAT_LIST,01JAN2021,GP,03W,E38000051,C82002,LE8 5QJ,ALL,ALL,many\n",
    )
    with pytest.raises(InputError) as err:
        parse("gp-list-sizes", path)
    assert (err.value.line, err.value.field, err.value.value) == (3, "NUMBER_OF_PATIENTS", "many")


def test_negative_count(tmp_path):
    path = write(tmp_path / "pop_mid2017.csv", 'Area Codes,All Ages\nE01013787,"1,500"\nE01013788,-3\n')
    with pytest.raises(InputError, match="negative"):
        parse("population", path)


def test_population_keeps_lsoa_rows_and_reads_thousands(tmp_path):
    path = write(tmp_path / "pop_mid2017.csv", 'Area Codes,All Ages\nE06000017,"39,000"\nE01013787,"1,500"\n')
    result = parse("population", path)
    frame = result.tables["population"]
    assert list(frame["lsoa_code"]) == ["E01013787"] and list(frame["population"]) == [1500]
    assert (frame["year"].iloc[0], frame["geography"].iloc[0]) == (2017, "lsoa11")


def test_lsoa_registrations_file(tmp_path, tiny_floors):
    path = write(
        tmp_path / "gp-reg-pat-prac-lsoa-all.csv",
        "PUBLICATION,EXTRACT_DATE,PRACTICE_CODE,PRACTICE_NAME,LSOA_CODE,SEX,NUMBER_OF_PATIENTS\n"
        "GP_PRAC_PAT_LIST,01APR2024,C82001,X,E01013787,ALL,120\n"
        "GP_PRAC_PAT_LIST,01APR2024,C82001,X,NO2011,ALL,3\n"
        "GP_PRAC_PAT_LIST,01APR2024,C82002,X,E01013787,ALL,7\n",
    )
    result = parse("gp-lsoa-registrations", path)
    frame = result.tables["gp_registrations_lsoa"]
    assert list(frame["patients"]) == [120, 7] and "3 patients with no known LSOA" in result.notes[0]


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(InputError, match="empty"):
        parse("ods-gp-practices", write(tmp_path / "empty.csv", ""))
    with pytest.raises(InputError, match="no such file"):
        parse("ods-gp-practices", tmp_path / "absent.csv")


def test_not_text(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x81\x82" * 20)
    with pytest.raises(InputError):
        parse("imd2025", path)


def test_corrupt_and_roadless_osm(tmp_path):
    corrupt = tmp_path / "corrupt.osm.pbf"
    corrupt.write_bytes(b"\x00\x00\x00\x0dnot a pbf file at all" * 10)
    with pytest.raises(InputError, match="not a readable OpenStreetMap file"):
        parse("osm", corrupt)
    roadless = write(
        tmp_path / "roadless.osm",
        "<?xml version='1.0'?><osm version='0.6'><node id='1' lat='52.6' lon='-0.7' version='1'/></osm>",
    )
    with pytest.raises(InputError, match="no roads"):
        parse("osm", roadless)


def test_gzipped_files_are_read_as_published(tmp_path, tiny_floors):
    import gzip

    path = tmp_path / "epraccur.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([good_row(), good_row("C82002")]) + "\n").encode()))
    assert list(parse("ods-gp-practices", path).tables["organisations"]["code"]) == ["C82001", "C82002"]


@given(people=st.integers(0, 100_000))
@settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_thousands_must_be_grouped_in_threes(tmp_path, people):
    """Correctly grouped counts ("1,592") read as written; a separator anywhere else is refused."""
    header = "Area Codes,All Ages\n"
    written = f"{people:,}"
    good = parse("population", write(tmp_path / "pop_mid2017.csv", header + f'"E01013787","{written}"\n'))
    assert list(good.tables["population"]["population"]) == [people]
    digits = str(people)
    misplaced = {f"{digits[:i]},{digits[i:]}" for i in range(1, len(digits)) if (len(digits) - i) % 3}
    misplaced |= {digits[:1] + "," + digits[1:2] + "," + digits[2:]} if len(digits) >= 3 else set()
    misplaced |= {written + ",", "," + written}
    for bad in sorted(misplaced):
        with pytest.raises(InputError, match="thousands separators") as err:
            parse("population", write(tmp_path / "pop_mid2017.csv", header + f'"E01013787","{bad}"\n'))
        assert err.value.line == 2 and err.value.field == "All Ages"
