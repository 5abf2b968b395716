"""Time `image-to-urdf convert` on the example photos in assets/ (whole process, median of N).

    .venv/bin/python benchmarks/convert_assets.py --repeat 3 [--clicks] [--assets NAME ...]

Each run is a fresh process (ephemeral Prefect API included), so the figures are what a user
waits for. Peak memory is the largest resident set of the convert process and the processes it
waited for (os.wait4). Results go to stdout as a table; paste them into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = ("cabinet", "drawer_unit", "microwave", "laptop", "box_lid")


def convert_once(asset: str, clicks: bool, out: Path) -> dict:
    """One whole `convert` process; returns wall time, peak RSS, exit code and the joints."""
    cmd = [sys.executable, "-m", "flows.cli", "convert", str(REPO / "assets" / f"{asset}.png"), "--out", str(out)]
    if clicks:
        meta = json.loads((REPO / "assets" / f"{asset}.json").read_text())
        for x, y in meta["clicks"].values():
            cmd += ["--click", f"{x},{y}"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.stderr.read()
    package = out / asset / "package.json"
    joints = []
    if package.exists():
        info = json.loads(package.read_text())
        joints = [f"{j['child']}:{j['type']}" for j in info["joints"]]
    return {
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,
        "exit_code": os.waitstatus_to_exitcode(status),
        "joints": joints,
        "valid": package.exists(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clicks", action="store_true", help="pass the assets' ground-truth clicks")
    parser.add_argument("--assets", nargs="*", default=list(ASSETS))
    args = parser.parse_args()

    print("| photo | clicks | median wall (s) | runs (s) | peak RSS (MB) | validation | joints |")
    print("|---|---|---|---|---|---|---|")
    for asset in args.assets:
        runs = []
        for k in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(convert_once(asset, args.clicks, Path(tmp)))
            print(f"  {asset} run {k + 1}: {runs[-1]['wall_s']:.1f} s", file=sys.stderr)
        walls = [r["wall_s"] for r in runs]
        last = runs[-1]
        verdict = "passed" if all(r["valid"] for r in runs) else f"FAILED (exit {last['exit_code']})"
        print(
            f"| {asset} | {'yes' if args.clicks else 'no'} | {statistics.median(walls):.1f} | "
            f"{', '.join(f'{w:.1f}' for w in walls)} | {max(r['peak_rss_mb'] for r in runs):.0f} | "
            f"{verdict} | {', '.join(last['joints']) or '-'} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
