"""Batch timing: render N synth product photos, run ``image-to-urdf batch`` on them, report wall
time and the peak resident memory of the whole process tree (sampled every 0.2 s).

    .venv/bin/python benchmarks/batch_convert.py --photos /tmp/issue6/photos --make 30
    .venv/bin/python benchmarks/batch_convert.py --photos /tmp/issue6/photos --out /tmp/issue6/out1 --jobs 1

``--make N`` renders N photos (the 12 synth categories in turn, seeded) plus, with ``--bad``, a
truncated PNG, a text file and a JPEG saved under a ``.dat`` name; without ``--out`` it stops there.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_photos(folder: Path, n: int, size: int = 512, bad: bool = False) -> list[Path]:
    """Render ``n`` synth photos into ``folder`` (category i % 12, seed i); optionally add bad files."""
    from PIL import Image

    from stages._shared.io import write_bytes, write_image
    from synth.objects import CATEGORIES, make_object
    from synth.render import product_camera, render_view

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        obj = make_object(category, seed=i)
        view = render_view(obj, product_camera(obj, seed=i, width=size, height=size))
        written.append(write_image(folder / f"{i:02d}_{category}.png", view.rgb))
    if bad:
        good = written[0].read_bytes()
        write_bytes(folder / "broken" / "truncated.png", good[: len(good) // 3])
        write_bytes(folder / "notes.txt", b"not a photo\n")
        buffer = io.BytesIO()
        Image.open(written[-1]).convert("RGB").save(buffer, format="JPEG", quality=92)
        write_bytes(folder / "misnamed.dat", buffer.getvalue())
    return written


def run_batch(photos: Path, out: Path, jobs: int, extra: list[str]) -> dict:
    """Run the CLI batch in a subprocess; wall seconds, peak tree RSS (MB), exit code, summary counts."""
    import psutil

    cmd = [str(REPO / ".venv" / "bin" / "image-to-urdf"), "batch", str(photos), "--out", str(out),
           "--jobs", str(jobs), "--no-progress", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO)
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - start
    summaries = sorted((out / "summaries").glob("*/summary.json"))
    counts = json.loads(summaries[-1].read_text())["counts"] if summaries else {}
    return {"command": " ".join(cmd), "wall_s": round(wall, 1), "peak_rss_mb": round(peak / 2**20),
            "exit_code": proc.returncode, "counts": counts}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--make", type=int, default=0, metavar="N", help="render N photos into --photos first")
    parser.add_argument("--bad", action="store_true", help="with --make: add a truncated, a text and a misnamed file")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--jobs", type=int, default=1)
    args, extra = parser.parse_known_args(argv)
    if args.make:
        make_photos(args.photos, args.make, bad=args.bad)
    if args.out:
        print(json.dumps(run_batch(args.photos, args.out, args.jobs, extra), indent=2))


if __name__ == "__main__":
    main()
