"""Benchmark E2SFCA on a national-size case: about 34,000 LSOAs and 6,500 GP practices.

Origins and practices are scattered over an England-sized box (clustered like towns), and the
pairs within a 15-minute drive catchment are made by crow-fly times (as `nearcare travel-times
--crowfly` would). The time covered is what a rerun costs: reading the sparse pairs table from
the store and computing E2SFCA from it.

Run:  .venv/bin/python benchmarks/bench_e2sfca.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nearcare.access import Catchment, e2sfca
from nearcare.network.search import Points, crowfly_pairs
from nearcare.store import Store

ORIGINS, PRACTICES, TOWNS = 34_000, 6_500, 600


def scatter(count: int, centres: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    town = rng.integers(0, len(centres), count)
    spread = rng.exponential(4_000, count)
    angle = rng.uniform(0, 2 * np.pi, count)
    return centres[town, 0] + spread * np.cos(angle), centres[town, 1] + spread * np.sin(angle)


def main() -> None:
    rng = np.random.default_rng(0)
    centres = np.column_stack([rng.uniform(130_000, 650_000, TOWNS), rng.uniform(10_000, 650_000, TOWNS)])
    origins = Points(np.array([f"E01{i:06d}" for i in range(ORIGINS)]), *scatter(ORIGINS, centres, rng))
    practices = Points(np.array([f"P{i:05d}" for i in range(PRACTICES)]), *scatter(PRACTICES, centres, rng))
    demand = pd.Series(rng.integers(1_000, 3_000, ORIGINS).astype(float), index=origins.ids)
    supply = pd.Series(rng.uniform(1, 15, PRACTICES), index=practices.ids)
    for minutes in (15, 30):
        run(origins, practices, demand, supply, minutes)


def run(origins, practices, demand, supply, minutes: float) -> None:
    start = time.perf_counter()
    pairs = crowfly_pairs(origins, practices, "drive", max_minutes=minutes)
    print(
        f"\n{minutes}-minute catchment: made {len(pairs):,} pairs in {time.perf_counter() - start:.2f} s "
        f"({len(pairs) / ORIGINS:.0f} practices per LSOA on average)"
    )
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "national.duckdb") as store:
        with store.transaction():
            store.insert("travel_times", pairs.assign(destination_kind="gp", profile="drive", mode="crowfly"))
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            stored = store.df(
                "SELECT origin_id, destination_id, minutes FROM travel_times "
                "WHERE profile = 'drive' AND destination_kind = 'gp' AND mode = 'crowfly'"
            )
            read = time.perf_counter() - start
            access = e2sfca(stored, demand, supply, Catchment(minutes))
            timings.append((read, time.perf_counter() - start))
    read, total = min(timings, key=lambda t: t[1])
    print(
        f"E2SFCA for {ORIGINS:,} LSOAs and {PRACTICES:,} practices: {total:.2f} s "
        f"(of which reading the pairs from the store {read:.2f} s); best of 3; target under 5 s"
    )
    print(
        f"mean access {access.mean() * 1000:.3f} per 1,000 people; {int((access == 0).sum()):,} LSOAs with none"
    )


if __name__ == "__main__":
    main()
