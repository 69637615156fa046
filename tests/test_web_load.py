"""Issue 13: a bounded load test on the demo store, over loopback only. After one warming request per
page, a fixed number of requests at fixed concurrency must bring no 5xx and a 95th percentile under
1 s on the cached pages. A correctness bound (a cached page is served from the cache, not recomputed
under load), not a benchmark: the machine running the suite may be busy."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from tests.web_server import serve_app

# The heavy pages (computed once per store version) and the layers their maps fetch.
CACHED = [
    "/equity",
    "/neighbourhoods",
    "/defibrillators",
    "/api/defibrillators/coverage.geojson?time=night",
    "/api/defibrillators/proposed.geojson",
    "/api/areas.geojson?measure=imd_decile",
    "/api/local-authorities.geojson",
    "/api/neighbourhoods.geojson",
]
REQUESTS = 120
CONCURRENCY = 4


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    from nearcare.web.app import create_app

    path = tmp_path_factory.mktemp("load") / "web.duckdb"
    shutil.copyfile(demo.store_path, path)
    app = create_app(path)
    with serve_app(app) as url:
        yield url, app


def test_cached_pages_under_load(server):
    url, app = server
    with httpx.Client(base_url=url, timeout=30) as client:
        for page in CACHED:  # warm: each heavy result computed once
            assert client.get(page).status_code == 200, page
        computed = dict(app.state.site.store.computed)

        def fetch(i: int) -> tuple[int, float]:
            start = time.perf_counter()
            status = client.get(CACHED[i % len(CACHED)]).status_code
            return status, time.perf_counter() - start

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            results = list(pool.map(fetch, range(REQUESTS)))
    statuses = [s for s, _ in results]
    seconds = np.array([t for _, t in results])
    assert len(results) == REQUESTS and not [s for s in statuses if s >= 500]
    assert set(statuses) == {200}
    assert dict(app.state.site.store.computed) == computed  # nothing was computed again under load
    p95 = float(np.percentile(seconds, 95))
    assert p95 < 1.0, f"95th percentile {p95:.2f} s over {REQUESTS} cached requests"
