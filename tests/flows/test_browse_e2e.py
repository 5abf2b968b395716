"""Artifact browser end to end, in real headless Chromium (Debian's /usr/bin/chromium + Playwright).

Two real runs of assets/cabinet.png with two configurations (--max-dim 0.8 and 1.2) are made once
per session. Screenshots go to $IMAGE_TO_URDF_SCREENSHOTS when set, else to a temporary folder.
"""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.browse import publish_run_link, run_url
from tests.flows.browse_fixtures import CHROMIUM, CHROMIUM_ARGS, live_server

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BACKGROUND = np.array([0xEE, 0xF0, 0xF3])  # the viewers' clear colour (viewer.js)


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory):
    """The two runs, made once per test session even when xdist workers share the tests."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # pytest-N/: common to this session's workers, new for each session
    out = shared / "browse-e2e"
    with FileLock(str(shared / "browse-e2e.lock")):
        if not (out / "done").exists():
            for max_dim in ("0.8", "1.2"):
                subprocess.run([sys.executable, "-m", "flows.cli", "convert", str(REPO / "assets" / "cabinet.png"),
                                "--out", str(out), "--max-dim", max_dim], check=True, cwd=REPO, timeout=600)
            (out / "done").touch()
    return out / "runs"


@pytest.fixture(scope="session")
def server(runs_dir):
    with live_server(runs_dir) as url:
        yield url


@pytest.fixture(scope="session")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("IMAGE_TO_URDF_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(server):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 950})
        page.requests, page.errors = [], []
        page.on("request", lambda r: page.requests.append(r.url))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        yield page
        browser.close()
    outside = [u for u in page.requests if not u.startswith((server, "data:", "blob:"))]
    assert not outside, f"the page fetched from elsewhere: {outside}"
    assert not page.errors, page.errors


def pixels(locator) -> np.ndarray:
    """(H, W, 3) int RGB of what the element shows on screen."""
    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB")).astype(int)


def drawn_fraction(image: np.ndarray) -> float:
    """Fraction of pixels clearly unlike the clear colour (grid lines are a small part of it)."""
    return float((np.abs(image - BACKGROUND).sum(axis=2) > 60).mean())


def run_ids(runs_dir):
    return sorted(p.name for p in runs_dir.iterdir())


def test_run_page_shows_3d_and_joint_slider_moves_part(page, server, runs_dir, shots):
    run_id = run_ids(runs_dir)[0]
    page.goto(f"{server}/run/{run_id}")
    page.wait_for_selector("#app[data-ready='1']", timeout=60_000)
    urdf = page.locator(".viewer.urdf[data-ready='1']")
    urdf.wait_for(timeout=120_000)
    page.screenshot(path=shots / "run_page.png", full_page=True)

    canvas = urdf.locator("canvas")
    before = pixels(canvas)
    assert drawn_fraction(before) > 0.05, "the URDF viewer shows (almost) nothing"
    urdf.screenshot(path=shots / "urdf_rest.png")
    sliders = urdf.locator("input[type=range]")
    assert sliders.count() == 2  # the cabinet's two doors
    sliders.first.focus()
    sliders.first.press("End")  # the joint's upper limit
    assert float(sliders.first.input_value()) > 1.0
    after = pixels(canvas)
    urdf.screenshot(path=shots / "urdf_joint_moved.png")
    changed = (np.abs(after - before).sum(axis=2) > 60).mean()
    assert changed > 0.01, f"moving the joint changed only {changed:.2%} of the picture"
    assert "°" in urdf.locator(".slider .value").first.inner_text()

    meshes = page.locator(".mesh-host .viewer[data-ready='1']")
    meshes.wait_for(timeout=60_000)
    solid = pixels(meshes.locator("canvas"))
    assert drawn_fraction(solid) > 0.05
    meshes.get_by_label("wireframe").check()
    wire = pixels(meshes.locator("canvas"))
    meshes.screenshot(path=shots / "meshes_wireframe.png")
    assert drawn_fraction(wire) < drawn_fraction(solid)  # a wireframe leaves the faces' insides empty

    assert page.locator(".overlay .tint:not([hidden])").count() == 2  # one tinted mask per door
    assert page.locator("svg.plot polyline").count() == 4  # 2 parts x (revolute, prismatic)
    assert page.locator(".clips img").count() >= 2
    assert page.locator(".timeline .stage.done").count() == 10


def test_run_list_sorts_and_filters(page, server, runs_dir, shots):
    page.goto(server + "/")
    page.wait_for_selector("#app[data-ready='1']")
    rows = page.locator("#runs tbody tr")
    assert rows.count() == 2
    assert page.locator("#runs img.thumb").first.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    page.screenshot(path=shots / "run_list.png", full_page=True)
    from playwright.sync_api import expect

    name = page.locator("th[data-sort='name']")
    name.click()
    expect(name).to_have_attribute("data-active", "desc")
    name.click()
    expect(name).to_have_attribute("data-active", "asc")
    page.fill("input[name=q]", "no-such-run")
    expect(rows).to_have_count(0)
    expect(page.locator("#count")).to_have_text("0 run(s)")
    page.fill("input[name=q]", "cabinet")
    expect(rows).to_have_count(2)


def test_compare_two_configurations(page, server, runs_dir, shots):
    a, b = run_ids(runs_dir)
    page.goto(f"{server}/compare?a={a}&b={b}")
    page.wait_for_selector("#app[data-ready='1']")
    viewers = page.locator(".viewer.urdf[data-ready='1']")
    viewers.nth(1).wait_for(timeout=120_000)
    assert all(drawn_fraction(pixels(viewers.nth(k).locator("canvas"))) > 0.05 for k in range(2))
    changed = page.locator("table.diff tr.changed").all_inner_texts()
    assert any("max_dim" in row and "0.8" in row and "1.2" in row for row in changed), changed
    assert "same photo" in page.locator("table.diff").inner_text()
    page.screenshot(path=shots / "compare.png", full_page=True)


def test_flow_run_links_to_its_browser_page(tmp_path):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.testing.utilities import prefect_test_harness

    @flow
    def link(run_id: str) -> str:
        return publish_run_link(run_id)

    with prefect_test_harness(server_startup_timeout=120):
        assert link("20261121-000000-cabinet-abc123") == run_url("20261121-000000-cabinet-abc123")
        with get_client(sync_client=True) as client:
            artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["run-browser"])))
    assert len(artifacts) == 1
    assert "/run/20261121-000000-cabinet-abc123" in artifacts[0].data
