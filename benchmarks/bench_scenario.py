"""Benchmark: one practice closure re-evaluated from the stored travel times on the LLR demo store.

Target: under a second, so that a person trying options in the web app gets an answer while they
wait. Loading the context (travel times, flows, the calibrated choice model) happens once per store.

Run:  .venv/bin/nearcare demo --out demo-output && .venv/bin/python benchmarks/bench_scenario.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nearcare.scenarios import Scenario, evaluate, load_context
from nearcare.store import Store


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output/nearcare.duckdb")
    with Store(path, read_only=True) as store:
        start = time.perf_counter()
        ctx = load_context(store, mode="crowfly")
        print(
            f"context for {len(ctx.areas)} LSOAs and {len(ctx.practices)} practices loaded once in "
            f"{time.perf_counter() - start:.2f} s ({ctx.model.describe()})"
        )
        codes = sorted(set(ctx.flows["destination_id"]))
        timings = []
        for code in codes:
            start = time.perf_counter()
            evaluate(ctx, Scenario(f"close {code}", close=[code]))
            timings.append(time.perf_counter() - start)
        timings.sort()
        print(
            f"single closure, {len(codes)} practices tried: median {timings[len(timings) // 2] * 1000:.0f} ms, "
            f"slowest {timings[-1] * 1000:.0f} ms (target under 1,000 ms)"
        )


if __name__ == "__main__":
    main()
