"""Build the procedural benchmark set: seeded articulated objects, photos, clicks, clips, ground truth.

    .venv/bin/python benchmarks/build_set.py --out bench-out/set [--seed 0] [--cases 60] [--jobs 2]
    .venv/bin/python benchmarks/build_set.py --source third-party --out DIR [--quick] [--jobs 2] [--cache DIR]

``--source third-party`` builds the set of metaworld and robosuite objects instead
(``benchmarks/third_party``, same case layout plus ``split``; see docs/benchmarks.md).

Case k is category ``CATEGORIES[k % 12]`` (so any prefix of the set spreads over categories;
``--quick`` is the first ``QUICK_CASES``), with object and camera seeds drawn from
``(--seed, k)``. Each case folder ``OUT/cases/<case>/`` holds:

    photo.png            product photo (textured, white background, 3/4 or front camera)
    mask.png, depth.npy  foreground mask and camera-frame depth (metres, inf off the object)
    masks/<part>.png     each movable part's visible pixels
    clips/<part>/        frames of that part opening from rest (same camera; frame 0 at rest)
    case.json            category, seeds, max_dim_m, camera, clicks and clips per part, joints

and ``OUT/gt/<case>/`` is its ground-truth package (``synth.package.write_synth_package``), the
layout ``image-to-urdf eval`` reads. The set is deterministic per seed, so it is not committed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from stages._shared.io import write_json  # noqa: E402
from synth.objects import CATEGORIES, make_object  # noqa: E402
from synth.render import product_camera, render_clip, render_view  # noqa: E402
from synth.render_package import write_frames, write_view  # noqa: E402

log = logging.getLogger("build_set")

#: Cases in the full set and in the ``--quick`` subset (the first ones: one per category).
FULL_CASES = 60
QUICK_CASES = 10
SIZE_PX = 512
#: Frames per articulation clip; clips are rendered without supersampling (speed).
CLIP_FRAMES = 10
CLIP_SUPERSAMPLE = 1
#: A part must cover at least this many pixels of the photo to be clickable; else the next camera.
MIN_PART_PIXELS = 150
CAMERA_TRIES = 10


def case_spec(set_seed: int, k: int) -> dict:
    """Category and seeds of case ``k`` (deterministic)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(set_seed), int(k), zlib.crc32(b"benchmark")]))
    category = CATEGORIES[k % len(CATEGORIES)]
    return {
        "case": f"{k:03d}_{category}",
        "category": category,
        "seed": int(rng.integers(0, 1_000_000)),
        "camera_seed": int(rng.integers(0, 1_000_000)),
    }


def build_case(spec: dict, out: Path) -> dict:
    """Render and write one case (photo, masks, depth, clips, case.json) and its ground-truth package."""
    from stages.urdf_package.template import Config
    from synth.package import write_synth_package

    started = time.perf_counter()
    obj = make_object(spec["category"], spec["seed"])
    # 1. A camera from which every part can be clicked
    for attempt in range(CAMERA_TRIES):
        camera = product_camera(obj, spec["camera_seed"] + attempt, SIZE_PX, SIZE_PX)
        view = render_view(obj, camera, textured=True)
        if all(m.sum() >= MIN_PART_PIXELS for m in view.part_masks.values()):
            break
    else:
        raise RuntimeError(f"case {spec['case']}: no camera in {CAMERA_TRIES} tries shows every part")
    spec = dict(spec, camera_seed=spec["camera_seed"] + attempt)

    # 2. Photo and its exact annotations
    case_dir = out / "cases" / spec["case"]
    write_view(case_dir, view)

    # 3. One clip per joint, rest -> open
    clips = {}
    for part in obj.parts:
        frames = render_clip(obj, camera, part.name, CLIP_FRAMES, supersample=CLIP_SUPERSAMPLE, textured=True)
        write_frames(case_dir / "clips" / part.name, frames)
        clips[part.name] = f"clips/{part.name}"

    # 4. Ground-truth package (cheaper CoACD settings than the pipeline's: it is only scored)
    gt = write_synth_package(obj, out / "gt", spec["case"], camera, view, Config(coacd_mcts_iterations=20, coacd_resolution=500))
    info = json.loads(gt.package_json.read_text())
    record = dict(
        spec,
        photo="photo.png",
        max_dim_m=float(obj.extents.max()),
        extents_m=[float(v) for v in obj.extents],
        camera=camera.to_dict(),
        parts=[p.name for p in obj.parts],
        clicks={j["child"]: j["click"] for j in info["joints"]},
        clips=clips,
        joints=obj.joints(),
        gt_package=f"../../gt/{spec['case']}",
    )
    write_json(case_dir / "case.json", record)
    log.info("%s: %d part(s), %.1f s", spec["case"], len(obj.parts), time.perf_counter() - started)
    return record


def build_set(out: Path, seed: int = 0, n_cases: int = FULL_CASES, jobs: int = 1) -> list[dict]:
    """Build cases ``0 .. n_cases - 1`` under ``out`` (cases already complete are kept)."""
    out = Path(out)
    specs = [case_spec(seed, k) for k in range(n_cases)]
    todo = [s for s in specs if not (out / "cases" / s["case"] / "case.json").is_file()]
    if todo:
        log.info("building %d of %d case(s) in %s with %d job(s)", len(todo), n_cases, out, jobs)
    if jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(build_case, todo, [out] * len(todo)))
    else:
        for spec in todo:
            build_case(spec, out)

    return [json.loads((out / "cases" / s["case"] / "case.json").read_text()) for s in specs]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "set", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole set")
    parser.add_argument("--cases", type=int, default=FULL_CASES, help="number of cases")
    parser.add_argument("--quick", action="store_true", help=f"only the first {QUICK_CASES} cases")
    parser.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--source", choices=("procedural", "third-party"), default="procedural",
                        help="procedural synth objects, or metaworld + robosuite MJCF objects")
    parser.add_argument("--cache", type=Path, default=None,
                        help="third-party wheel cache (default ~/.cache/image-to-urdf/third_party)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    if args.source == "third-party":
        from benchmarks.third_party.build import build_third_party_set
        from benchmarks.third_party.wheels import DEFAULT_CACHE

        cases = build_third_party_set(args.out, args.quick, args.jobs, args.cache or DEFAULT_CACHE)
        log.info("%d case(s) in %s (%.0f s)", len(cases), args.out, time.perf_counter() - start)
        return
    cases = build_set(args.out, args.seed, QUICK_CASES if args.quick else args.cases, args.jobs)
    cats = sorted({c["category"] for c in cases})
    log.info("%d case(s) over %d categories in %s (%.0f s)", len(cases), len(cats), args.out, time.perf_counter() - start)


if __name__ == "__main__":
    main()
