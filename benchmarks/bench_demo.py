"""Benchmark: ``nearcare demo`` from nothing, as a new user runs it (#19; target under 60 s on an idle
2-core machine).

Runs the demo in a fresh temporary folder under GNU ``/usr/bin/time -v`` and prints the wall time,
the CPU time (user + system, the demo's processes and their workers) and the peak memory; with
``--steps`` also each step's time from the demo's own progress lines. On a busy machine compare CPU
time, which other people's work does not inflate.

Run:  .venv/bin/python benchmarks/bench_demo.py [--steps]
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TIME = "/usr/bin/time"
DEMO = "from nearcare.cli import app; app()"


def main() -> None:
    if not Path(TIME).exists():
        sys.exit(f"{TIME} (GNU time) is needed: apt-get install time")
    folder = Path(tempfile.mkdtemp(prefix="nearcare-demo-"))
    try:
        run = subprocess.run(
            [TIME, "-v", sys.executable, "-c", DEMO, "demo", "--out", str(folder / "out")],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if run.returncode != 0:
        sys.exit(run.stdout + run.stderr)
    measured = dict(re.findall(r"^\s*(.+?): (.+)$", run.stderr, flags=re.MULTILINE))
    wall = _seconds(measured["Elapsed (wall clock) time (h:mm:ss or m:ss)"])
    cpu = float(measured["User time (seconds)"]) + float(measured["System time (seconds)"])
    peak_mb = int(measured["Maximum resident set size (kbytes)"]) / 1024
    if "--steps" in sys.argv:
        for name, seconds in re.findall(r"^\s+(.+): done in ([\d.]+) s", run.stderr, flags=re.MULTILINE):
            print(f"  {float(seconds):6.1f} s  {name}")
    print(f"nearcare demo: {wall:.1f} s wall, {cpu:.1f} s CPU, peak memory {peak_mb:,.0f} MB")


def _seconds(clock: str) -> float:
    """GNU time's h:mm:ss or m:ss.ss as seconds."""
    total = 0.0
    for part in clock.split(":"):
        total = total * 60 + float(part)
    return total


if __name__ == "__main__":
    main()
