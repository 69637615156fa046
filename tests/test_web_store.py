"""Issue 13, items 3 and 6: heavy pages are computed once per store version, a report invalidates only
what it affects, and while `nearcare serve` runs other commands can read the same store."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from nearcare.cli import app as cli
from nearcare.store import Store

warnings.filterwarnings("ignore", message=".*httpx.*")
from fastapi.testclient import TestClient  # noqa: E402

from nearcare.web.app import create_app  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"
REPORT = {"lat": 52.70, "lon": -0.60, "access": "public", "hours": "24/7"}


@pytest.fixture()
def web_store(demo, tmp_path):
    path = tmp_path / "web.duckdb"
    shutil.copyfile(demo.store_path, path)
    return path


def test_heavy_pages_are_computed_once_per_store_version(web_store):
    app = create_app(web_store)
    client = TestClient(app, base_url="http://127.0.0.1")
    computed = app.state.site.store.computed
    with ThreadPoolExecutor(4) as pool:  # concurrent first requests share one computation
        pages = list(pool.map(lambda _: client.get("/neighbourhoods"), range(4)))
    assert all(p.status_code == 200 for p in pages) and computed["neighbourhoods_page"] == 1
    first = client.get("/equity")
    second = client.get("/equity")
    assert first.status_code == second.status_code == 200 and computed["equity_page"] == 1
    assert client.get("/defibrillators").status_code == 200 and computed["defib_coverage"] == 1
    client.get("/defibrillators")
    assert computed["defib_coverage"] == 1  # served from the cache
    # A report changes the register: the coverage and the neighbourhood profiles (which count
    # defibrillators) are computed again; the equity page is not.
    assert client.post("/api/defibrillators/reports", json=REPORT).status_code == 201
    assert client.get("/defibrillators").status_code == 200 and computed["defib_coverage"] == 2
    client.get("/equity")
    client.get("/neighbourhoods")
    assert computed["equity_page"] == 1 and computed["neighbourhoods_page"] == 2
    # Any change made to the store by another command invalidates everything. (In this process the
    # app's idle read-only connection must go first; another process would wait for it to lapse.)
    app.state.site.store.release()
    with Store(web_store) as store:
        store.con.execute("CREATE TABLE elsewhere AS SELECT 1 AS x")
    client.get("/equity")
    client.get("/defibrillators")
    assert computed["equity_page"] == 2 and computed["defib_coverage"] == 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def served(web_store):
    """`nearcare serve` in its own process, on 127.0.0.1."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from nearcare.cli import app; app()",
            "serve",
            "--store",
            str(web_store),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/area", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            if process.poll() is not None:
                pytest.fail(f"the server stopped: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("the server did not start in 120 s")
    yield url, web_store
    process.terminate()
    process.wait(timeout=20)


def test_other_commands_read_the_store_while_serve_runs(served, tmp_path):
    url, path = served
    statuses: list[int] = []
    stop = threading.Event()

    def browse() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not stop.is_set():
                statuses.append(http.get("/api/area").status_code)
                statuses.append(http.get("/api/defibrillators").status_code)

    visitor = threading.Thread(target=browse)
    visitor.start()
    try:
        runner = CliRunner()
        for _ in range(3):
            listed = runner.invoke(cli, ["tables", "--store", str(path)])
            assert listed.exit_code == 0, listed.output
            assert "defibrillators" in listed.output
        exported = runner.invoke(cli, ["export", "sites", str(tmp_path / "sites.csv"), "--store", str(path)])
        assert exported.exit_code == 0, exported.output
    finally:
        stop.set()
        visitor.join(timeout=60)
    assert statuses and set(statuses) == {200}

    # A report waits briefly for another reader to let go, then writes.
    reader = Store(path, read_only=True)
    threading.Timer(1.0, reader.close).start()
    written = httpx.post(f"{url}/api/defibrillators/reports", json=REPORT, timeout=60)
    assert written.status_code == 201, written.text

    # A writer that holds on: one line saying what holds the store and what to do.
    with Store(path):
        held = httpx.get(f"{url}/api/area", timeout=60)
    assert held.status_code == 503
    detail = held.json()["detail"]
    assert "\n" not in detail and f"process {os.getpid()}" in detail and "try again" in detail
    assert httpx.get(f"{url}/api/area", timeout=60).status_code == 200


_EXIT_SCRIPT = """
import atexit, sys, threading
seen = {}
# Registered before nearcare's own exit handler, so it runs after it: what the interpreter finalizes.
atexit.register(lambda: print("at finalize:", seen["store"]._idle is None, seen["store"]._closer is None,
                               sum(isinstance(t, threading.Timer) and t.is_alive() for t in threading.enumerate())))
from pathlib import Path
from nearcare.web.state import StoreAccess
store = seen["store"] = StoreAccess(Path(sys.argv[1]))
with store.reading() as project:
    project.table("practices")
print("idle open:", store._idle is not None, store._closer is not None)
"""


def test_a_server_process_closes_its_idle_store_before_the_interpreter_finalizes(web_store):
    # A timer that closed DuckDB's idle connection while the interpreter finalized aborted the whole
    # process (exit 134, "FATAL: exception not rethrown") after a clean run: at exit the connection
    # is closed and the timer stopped first.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT, str(web_store)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "idle open: True True" in run.stdout  # the request left the lingering connection and its timer
    assert "at finalize: True True 0" in run.stdout, run.stdout


def test_one_store_that_fails_to_close_at_exit_leaves_the_others_closed(web_store, monkeypatch, caplog):
    import weakref

    from nearcare.web import state

    class Broken:
        path = Path("broken.duckdb")

        def release(self):
            raise OSError("disk gone")

    good = state.StoreAccess(web_store)
    with good.reading():
        pass
    broken = Broken()
    monkeypatch.setattr(state, "_OPEN", weakref.WeakSet([broken, good]))
    monkeypatch.setattr(state, "_exiting", False)  # put back for the rest of the session
    with caplog.at_level("WARNING", logger="nearcare"):
        state._close_at_exit()
    assert good._idle is None and good._closer is None
    assert "could not close the store broken.duckdb at exit: disk gone" in caplog.text
