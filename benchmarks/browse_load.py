"""Page load times of the artifact browser with many runs in RUNS_DIR (median of N page loads).

    .venv/bin/python benchmarks/browse_load.py --source OUT/runs --runs 300 --repeat 5

RUNS_DIR is filled with ``--runs`` run folders copied (hard links; each manifest rewritten with
a new run id and creation time) from the real runs in ``--source``, so every copy is a complete
run. ``image-to-urdf browse`` serves it; headless Chromium (Debian's, via Playwright, fresh
browser context per load so nothing is cached in the browser) opens the run list and a run page.
The first list load also pays for indexing every manifest (the server's cache is cold); later
loads find the index cached. Results go to stdout as a markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.flows.browse_fixtures import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

from stages._shared.io import write_json  # noqa: E402


def fill_runs_dir(source: Path, dest: Path, n: int) -> list[str]:
    """``n`` copies of the run folders in ``source`` under new ids, one minute apart."""
    sources = sorted(p for p in source.iterdir() if (p / "manifest.json").is_file())
    if not sources:
        raise SystemExit(f"{source}: no run folders with a manifest.json; run `image-to-urdf convert` first")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    ids = []
    for i in range(n):
        src = sources[i % len(sources)]
        manifest = json.loads((src / "manifest.json").read_text())
        created = start + dt.timedelta(minutes=i)
        run_id = f"{created:%Y%m%d-%H%M%S}-{manifest['input'].get('name', 'run')}-{i:06x}"
        shutil.copytree(src, dest / run_id, copy_function=os.link)
        (dest / run_id / "manifest.json").unlink()  # a hard link: replace, never edit, the source's file
        write_json(dest / run_id / "manifest.json", {**manifest, "run_id": run_id, "created": created.isoformat()})
        ids.append(run_id)
    return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_get(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url) as r:
        r.read()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="RUNS_DIR holding real runs to copy")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="browse-load-") as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        ids = fill_runs_dir(args.source, runs, args.runs)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "flows.cli", "browse", str(runs), "--port", str(port)],
                                  cwd=REPO, stdout=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(base + "/static/style.css").read()
                    break
                except OSError:
                    time.sleep(0.1)
            rows = {"list page, first load (index cold)": [], "list page": [], "list page, all thumbnails": [],
                    "run page, URDF viewer ready": [], "compare page, both URDF viewers ready": []}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                for k in range(args.repeat + 1):
                    page = browser.new_context(viewport={"width": 1300, "height": 950}).new_page()
                    start = time.perf_counter()
                    page.goto(base + "/")
                    page.wait_for_selector("#app[data-ready='1']")
                    ready = time.perf_counter() - start
                    page.wait_for_load_state("networkidle")
                    thumbs = time.perf_counter() - start
                    rows["list page, first load (index cold)" if k == 0 else "list page"].append(ready)
                    rows["list page, all thumbnails"].append(thumbs) if k else None
                    assert page.locator("#runs tbody tr").count() == 50
                    page.context.close()
                for k in range(args.repeat):
                    page = browser.new_context(viewport={"width": 1300, "height": 950}).new_page()
                    start = time.perf_counter()
                    page.goto(f"{base}/run/{ids[k * 7 % len(ids)]}")
                    page.wait_for_selector(".viewer.urdf[data-ready='1']", timeout=120_000)
                    rows["run page, URDF viewer ready"].append(time.perf_counter() - start)
                    page.goto(f"{base}/compare?a={ids[k]}&b={ids[-1 - k]}")
                    start = time.perf_counter()
                    page.locator(".viewer.urdf[data-ready='1']").nth(1).wait_for(timeout=120_000)
                    rows["compare page, both URDF viewers ready"].append(time.perf_counter() - start)
                    page.context.close()
                browser.close()
            api = {q: [timed_get(f"{base}/api/runs?{q}") for _ in range(args.repeat)]
                   for q in ("sort=created", "sort=joints&order=asc", "q=cabinet&validation=passed", "offset=250")}
        finally:
            server.terminate()
            server.wait(10)
    load = os.getloadavg()
    print(f"{args.runs} runs (copies of {len(set(i.rsplit('-', 2)[1] for i in ids))} real runs), "
          f"{args.repeat} loads each; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| what | median (s) | loads (s) |\n|---|---|---|")
    for name, times in rows.items():
        print(f"| {name} | {statistics.median(times):.3f} | {', '.join(f'{t:.3f}' for t in times)} |")
    for q, times in api.items():
        print(f"| GET /api/runs?{q} (index warm) | {statistics.median(times):.4f} | "
              f"{', '.join(f'{t:.4f}' for t in times)} |")


if __name__ == "__main__":
    main()
