"""Joint fitting with ground-truth part meshes: accuracy, robustness and speed of ``fit_joint``.

    .venv/bin/python benchmarks/joint_fit_gt.py [--seeds 3] [--size 256] [--frames 16] [--jobs 1]
        [--json /tmp/joint_fit_gt.json]

The first half of the joint-fitting targets: each case is one movable part of a procedural
object (``synth.objects``, every category, seeds ``0..seeds-1``, at most ``--parts`` parts per
object), a product camera drawn from the object's seed, and a clip of ``--frames`` frames of that
part opening from rest, rendered at ``--size`` pixels. The fitter gets the true base (with the
other parts at rest) and the true part mesh, so only the joint is estimated; both are in the base
frame, so errors are measured there. Each case is fitted twice:

- ``clean``: the rendered clip as it is;
- ``noisy``: every frame's silhouette randomly eroded or dilated by 3 px, 10 % of the frames
  after the rest frame dropped, and a colour shift of the clip against the photo (per-channel gain
  in [0.9, 1.1] and offset in [-0.03, 0.03] on object pixels of every frame after the first).

Reported per case: type correct, axis angle error (degrees, sign-agnostic), pivot error of
revolute joints (distance of the fitted origin from the true axis line / the object's diagonal),
fit seconds (the ``fit_joint`` call) and peak resident memory of the worker process that ran the
fit (the largest over all fits it ran so far: an upper bound on one fit's). Summary: medians and 90th percentiles, overall and per category.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: Perturbations of the ``noisy`` variant.
MASK_NOISE_PX = 3
DROP_SHARE = 0.10
GAIN = (0.9, 1.1)
OFFSET = (-0.03, 0.03)


def list_cases(seeds: int, parts: int) -> list[dict]:
    """Every (category, seed, part) case, at most ``parts`` parts per object, in a fixed order."""
    from synth.objects import CATEGORIES, make_object

    cases = []
    for category in CATEGORIES:
        for seed in range(seeds):
            obj = make_object(category, seed)
            for part in obj.parts[:parts]:
                cases.append({"category": category, "seed": seed, "part": part.name})
    return cases


def perturb_clip(views, rng: np.random.Generator) -> list[np.ndarray]:
    """The ``noisy`` variant of a rendered clip (see the module docstring); frame 0 is kept first."""
    from scipy.ndimage import binary_dilation, binary_erosion, distance_transform_edt

    ball = _disc(MASK_NOISE_PX)
    frames = []
    for t, view in enumerate(views):
        rgb = view.rgb.astype(np.float64) / 255.0
        mask = view.mask
        if t > 0:  # the clip's colours drift away from the photo's
            gain = rng.uniform(*GAIN, size=3)
            offset = rng.uniform(*OFFSET, size=3)
            rgb[mask] = np.clip(rgb[mask] * gain + offset, 0.0, 1.0)
        if rng.random() < 0.5:  # erode: the rim becomes background
            rim = mask & ~binary_erosion(mask, ball)
            rgb[rim] = rgb[~mask].mean(axis=0) if (~mask).any() else 1.0
        else:  # dilate: the rim takes the colour of the nearest object pixel
            grown = binary_dilation(mask, ball)
            _, (iy, ix) = distance_transform_edt(~mask, return_indices=True)
            rim = grown & ~mask
            rgb[rim] = rgb[iy[rim], ix[rim]]
        frames.append(np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8))
    n_drop = int(round(DROP_SHARE * (len(frames) - 1)))
    dropped = set(rng.choice(np.arange(1, len(frames)), size=n_drop, replace=False).tolist())
    return [f for t, f in enumerate(frames) if t not in dropped]


def _disc(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return x**2 + y**2 <= radius**2


def fit_case(case: dict, size: int, n_frames: int, variant: str) -> dict:
    """Render the case's clip, fit its joint with the true meshes, and score the fit."""
    import torch
    import trimesh

    from stages._shared import kinematics  # noqa: F401  (imported before timing: first use compiles)
    from stages.joint_fit import dual_quaternion as dq
    from synth.objects import make_object
    from synth.render import product_camera, render_clip

    obj = make_object(case["category"], case["seed"])
    camera = product_camera(obj, case["seed"], size, size)
    k = [p.name for p in obj.parts].index(case["part"])
    truth = obj.parts[k]
    views = render_clip(obj, camera, truth.name, n_frames)
    if variant == "noisy":
        rng = np.random.default_rng([case["seed"], k, len(case["category"])])
        frames = perturb_clip(views, rng)
    else:
        frames = [v.rgb for v in views]
    base = trimesh.util.concatenate([obj.base] + [p.mesh for j, p in enumerate(obj.parts) if j != k])
    diag = float(np.linalg.norm(obj.extents))
    cfg = dq.Config()
    torch.set_num_threads(cfg.threads)  # as the stage runs it

    started = time.perf_counter()
    report = dq.fit_joint(cfg, camera, base, truth.mesh, frames, diag)
    seconds = time.perf_counter() - started
    est = report["estimate"]

    axis = np.asarray(est["axis_base"])
    axis_err = float(np.degrees(np.arccos(np.clip(abs(axis @ truth.axis), 0.0, 1.0))))
    pivot = None
    if truth.joint_type == "revolute" and est["joint_type"] == "revolute":
        d = np.asarray(est["origin_base"]) - truth.origin
        pivot = float(np.linalg.norm(d - (d @ truth.axis) * truth.axis) / diag)
    return {
        **case,
        "variant": variant,
        "true_type": truth.joint_type,
        "type": est["joint_type"],
        "type_ok": est["joint_type"] == truth.joint_type,
        "axis_err_deg": axis_err,
        "pivot_err": pivot,
        "seconds": seconds,
        "frames": len(frames),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def _run(job):
    return fit_case(*job)


def summarise(rows: list[dict]) -> dict:
    """Medians and 90th percentiles of ``rows`` (one variant)."""

    def q(values, p):
        return float(np.percentile(values, p)) if values else float("nan")

    axis = [r["axis_err_deg"] for r in rows]
    pivot = [r["pivot_err"] for r in rows if r["pivot_err"] is not None]
    secs = [r["seconds"] for r in rows]
    return {
        "n": len(rows),
        "type_accuracy": sum(r["type_ok"] for r in rows) / max(len(rows), 1),
        "axis_median_deg": q(axis, 50),
        "axis_p90_deg": q(axis, 90),
        "pivot_median": q(pivot, 50),
        "pivot_p90": q(pivot, 90),
        "n_revolute_scored": len(pivot),
        "seconds_median": q(secs, 50),
        "peak_rss_mb_max": max((r["peak_rss_mb"] for r in rows), default=float("nan")),
    }


def markdown(rows: list[dict]) -> str:
    """One table per variant: per category and overall."""
    lines = []
    for variant in ("clean", "noisy"):
        sel = [r for r in rows if r["variant"] == variant]
        if not sel:
            continue
        lines += [
            f"**{variant}**",
            "",
            "| category | joints | type acc. | axis median (deg) | axis p90 (deg) | pivot median (% diag) | "
            "pivot p90 (% diag) | fit median (s) | peak RSS (MB) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        groups = sorted({r["category"] for r in sel})
        for name, group in [(c, [r for r in sel if r["category"] == c]) for c in groups] + [("**all**", sel)]:
            s = summarise(group)
            lines.append(
                f"| {name} | {s['n']} | {100 * s['type_accuracy']:.0f} % | {s['axis_median_deg']:.2f} | "
                f"{s['axis_p90_deg']:.2f} | {100 * s['pivot_median']:.2f} | {100 * s['pivot_p90']:.2f} | "
                f"{s['seconds_median']:.1f} | {s['peak_rss_mb_max']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="objects per category (seeds 0..N-1)")
    parser.add_argument("--parts", type=int, default=2, help="most parts fitted per object")
    parser.add_argument("--size", type=int, default=256, help="clip size, pixels (square)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip, rest included")
    parser.add_argument("--variants", nargs="+", default=["clean", "noisy"], choices=["clean", "noisy"])
    parser.add_argument("--categories", nargs="*", help="only these categories")
    parser.add_argument("--jobs", type=int, default=1, help="fits run at once (one process each)")
    parser.add_argument("--json", type=Path, help="write every row and the summaries here")
    args = parser.parse_args()

    cases = list_cases(args.seeds, args.parts)
    if args.categories:
        cases = [c for c in cases if c["category"] in args.categories]
    jobs = [(c, args.size, args.frames, v) for v in args.variants for c in cases]
    print(f"{len(jobs)} fits ({len(cases)} joints x {len(args.variants)} variants), {args.jobs} at a time",
          file=sys.stderr)
    rows = []
    # Worker processes are reused: a row's peak RSS is its process's peak so far, an upper bound on the fit's.
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        for n, row in enumerate(pool.imap(_run, jobs), 1):
            rows.append(row)
            print(
                f"[{n}/{len(jobs)}] {row['variant']} {row['category']} s{row['seed']} {row['part']}: "
                f"{row['type']} ({'ok' if row['type_ok'] else 'WRONG, true ' + row['true_type']}) "
                f"axis {row['axis_err_deg']:.2f} deg"
                + (f" pivot {100 * row['pivot_err']:.2f} %" if row["pivot_err"] is not None else "")
                + f" {row['seconds']:.1f} s",
                file=sys.stderr, flush=True,
            )  # fmt: skip
    summary = {v: summarise([r for r in rows if r["variant"] == v]) for v in args.variants}
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows,
                                         "summary": summary}, indent=1))
    print(markdown(rows))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
