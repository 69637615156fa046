"""The web app in Debian's Chromium through Playwright: the map draws, a practice opens, a closure
returns results, a defibrillator report round-trips, controls are reachable by keyboard.
Screenshots go to test-output/."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "test-output"

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail("CI must have Debian's chromium (.ci/run installs it)", pytrace=False)
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    import uvicorn

    from nearcare.web.app import create_app

    path = tmp_path_factory.mktemp("browser") / "web.duckdb"
    shutil.copyfile(demo.store_path, path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(path), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    for _ in range(100):
        if running.started:
            break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        yield launched
        launched.close()


@pytest.fixture()
def page(browser):
    SHOTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    opened = context.new_page()
    remote = []
    opened.on("request", lambda r: remote.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:")) else None)
    yield opened
    context.close()
    assert not remote, f"the page asked for remote resources: {remote[:3]}"


def test_overview_map_draws_polygons_and_switches_measure(server, page):
    page.goto(server + "/")
    page.wait_for_function("document.querySelectorAll('path.leaflet-interactive').length >= 634")
    assert "(decile)" in page.locator("#legend").inner_text()
    page.select_option("#measure", "gp:drive:crowfly:e2sfca_need")
    page.wait_for_function("!document.querySelector('#legend').innerText.includes('(decile)')")
    page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)


def test_clicking_a_practice_opens_its_page(server, page):
    page.goto(server + "/")
    # Wait until the polygons are drawn (the map has zoomed to them), then click a marker; the event
    # goes to the marker itself, so a zoom animation still running cannot move it from under a mouse.
    page.wait_for_function("document.querySelectorAll('path.leaflet-interactive').length >= 634")
    page.wait_for_selector("path.nearcare-site")
    with page.expect_navigation(url="**/organisations/*"):
        page.locator("path.nearcare-site").first.dispatch_event("click")
    assert page.locator("h1").inner_text()
    assert "Registered patients" in page.content()
    page.wait_for_selector("path.leaflet-interactive")
    page.screenshot(path=str(SHOTS / "organisation.png"), full_page=True)


def test_a_closure_scenario_returns_results(server, page):
    page.goto(server + "/scenario")
    page.select_option("#close", ["C82044"])
    page.click("#run-scenario")
    page.wait_for_selector("text=Scenario: Close C82044")
    assert "Where the patients go" in page.content()
    page.screenshot(path=str(SHOTS / "scenario.png"), full_page=True)


def test_a_defibrillator_report_round_trips(server, page):
    page.goto(server + "/defibrillators")
    page.fill("#lat", "52.6583")
    page.fill("#lon", "-0.6705")
    page.check("#access")
    page.fill("#hours", "24/7")
    page.click("#send-report")
    page.wait_for_selector("text=your report was added to defibrillator osm-n5036730561")
    page.screenshot(path=str(SHOTS / "defibrillators.png"), full_page=True)
    page.goto(server + "/defibrillators")
    page.click("#send-report")  # empty form: errors, nothing stored
    assert page.locator(".nhsuk-error-summary").is_visible()


def test_controls_are_reachable_by_keyboard(server, page):
    page.goto(server + "/")
    reached = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement && document.activeElement.id"))
        if {"measure", "services"} <= reached:
            break
    assert {"measure", "services"} <= reached
