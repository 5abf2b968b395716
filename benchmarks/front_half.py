"""The front half of the pipeline (foreground -> amodal) on rendered photos, stage by stage.

    .venv/bin/python benchmarks/front_half.py [--seeds 3] [--size 512] [--json /tmp/front_half.json]

Each case is a procedural object (``synth.objects``, every category, seeds ``0..seeds-1``) seen by
its product camera (drawn from the seed) at ``--size`` pixels on white, the photo a user would
give. ``--max-dim`` is the true largest dimension, so the pipeline's metres are comparable.

1. The pipeline's own chain, no clicks (what track A runs): foreground, reconstruct, part_masks,
   segment3d, amodal with the ``cpu`` preset, timed (the front half's seconds are the sum).
   - foreground IoU with the rendered mask;
   - reconstruction: symmetric Chamfer distance (mean of both directions, 20k surface samples)
     between the reconstructed mesh and the true object at rest, over the true bounding-box
     diagonal, once in each one's camera frame (OpenCV: pose and distance errors count) and once
     in the base frame (origin at the bottom centre, +x front: the shape alone); camera elevation and azimuth error (degrees)
     of the camera centre seen from the object's box centre, in each base frame;
   - movable-part discovery: predicted part masks matched to the true visible part masks
     (Hungarian on IoU, a match needs IoU >= 0.5): recall and precision, and the share of matched
     parts whose proposed joint type is the true one.
2. The same photo with one click per part (the true part's interior point): mask IoU per part.
3. Given the ground-truth camera, box and 2D masks (as ``tests/stages/synth_inputs.py`` builds
   them): segment3d face IoU with the true part's faces on the refined box; amodal parts and base
   watertight; each amodal part swept through its true joint range (17 poses): deepest
   interpenetration with the amodal base and the other parts at rest, millimetres.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHAMFER_SAMPLES = 20_000
SWEEP_POSES = 17
MATCH_IOU = 0.5


def run_case(category: str, seed: int, size: int, work: Path) -> dict:
    """All measurements of one (category, seed) case; see the module docstring."""
    import trimesh

    from flows.presets import resolve
    from stages import amodal, foreground, part_masks, reconstruct, segment3d
    from stages._shared.io import read_json, read_mask, read_mesh, write_image
    from synth.objects import make_object
    from synth.render import click_point, product_camera, render_view
    from tests.stages.synth_inputs import gt_faces, gt_part_masks, mask_iou, synth_case

    cfg = resolve("cpu", {})
    obj = make_object(category, seed)
    camera = product_camera(obj, seed, size, size)
    view = render_view(obj, camera)
    photo = write_image(work / "photo.png", view.rgb)
    truth = trimesh.util.concatenate(obj.posed())
    diag = float(np.linalg.norm(obj.extents))
    row = {"category": category, "seed": seed, "n_parts": len(obj.parts)}

    # 1. the pipeline's own chain, no clicks
    seconds = {}
    started = time.perf_counter()
    fg = foreground.run(cfg.foreground, photo, work / "fg")
    seconds["foreground"] = time.perf_counter() - started
    started = time.perf_counter()
    recon = reconstruct.run(cfg.reconstruct, fg, float(obj.extents.max()), work / "recon")
    seconds["reconstruct"] = time.perf_counter() - started
    started = time.perf_counter()
    try:
        masks = part_masks.run(cfg.part_masks, fg, recon, (), work / "masks")
    except ValueError as exc:  # nothing found: the convert would stop here, the case counts as 0 proposed
        masks = part_masks.PartMasksResult(parts=())
        row["part_masks_error"] = str(exc)
    seconds["part_masks"] = time.perf_counter() - started
    if masks.parts:
        try:  # a failure here stops the convert; the case still counts for the other measures
            started = time.perf_counter()
            seg = segment3d.run(cfg.segment3d, recon, masks, work / "seg")
            seconds["segment3d"] = time.perf_counter() - started
            started = time.perf_counter()
            amodal.run(cfg.amodal, recon, masks, seg, work / "amodal")
            seconds["amodal"] = time.perf_counter() - started
        except ValueError as exc:
            row["front_half_error"] = f"{type(exc).__name__}: {exc}"
    row["seconds"] = seconds
    row["front_half_s"] = sum(seconds.values())

    row["fg_iou"] = mask_iou(_at_size(read_mask(fg.mask), view.mask.shape), view.mask)
    row["silhouette_iou"] = recon.silhouette_iou
    row["shape"] = read_json(work / "recon" / "fit.json")["shape"]  # box or clamshell
    row["chamfer"] = _chamfer(_in_camera(read_mesh(recon.mesh), recon.camera), _in_camera(truth, camera)) / diag
    row["chamfer_base"] = _chamfer(read_mesh(recon.mesh), _bottom_centred(truth)) / diag
    el_p, az_p = _elevation_azimuth(recon.camera, read_mesh(recon.mesh).bounds)
    el_t, az_t = _elevation_azimuth(camera, obj.bounds)
    row["elevation_err_deg"] = abs(el_p - el_t)
    row["azimuth_err_deg"] = abs((az_p - az_t + 180.0) % 360.0 - 180.0)
    predicted = [_at_size(read_mask(p.mask), view.mask.shape) for p in masks.parts]
    visible = [n for n, m in view.part_masks.items() if m.any()]
    pairs = _matches(predicted, [view.part_masks[n] for n in visible])
    row["true_visible_parts"] = len(visible)
    row["predicted_parts"] = len(predicted)
    row["matched_parts"] = len(pairs)
    row["matched_type_ok"] = [masks.parts[i].joint_type == obj.part(visible[j]).joint_type for i, j in pairs]

    # 2. one click per visible part
    names = [n for n, m in view.part_masks.items() if m.any()]
    clicks = tuple(click_point(view.part_masks[n]) for n in names)
    clicked = part_masks.run(cfg.part_masks, fg, recon, clicks, work / "clicked")
    row["click_mask_iou"] = [
        mask_iou(_at_size(read_mask(p.mask), view.mask.shape), view.part_masks[n])
        for p, n in zip(clicked.parts, names)
    ]

    # 3. ground-truth camera, box and masks
    case = synth_case(category, seed, work / "gt", size)
    gt_masks = gt_part_masks(case, work / "gt" / "masks")
    seg = segment3d.run(cfg.segment3d, case.recon, gt_masks, work / "gt" / "seg")
    mesh, labels = read_mesh(seg.mesh), np.load(seg.labels)
    row["face_iou"] = [
        mask_iou(labels == k + 1, gt_faces(case, mesh, p.name)) for k, p in enumerate(gt_masks.parts)
    ]
    am = amodal.run(cfg.amodal, case.recon, gt_masks, seg, work / "gt" / "amodal")
    base, parts = read_mesh(am.base_mesh), [read_mesh(p) for p in am.part_meshes]
    row["watertight"] = bool(base.is_watertight and all(p.is_watertight for p in parts))
    row["sweep_penetration_mm"] = [
        1000.0 * _sweep(base, parts, k, case.obj.part(p.name)) for k, p in enumerate(gt_masks.parts)
    ]
    return row


def _at_size(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``mask`` resized (nearest) to ``shape`` when the stage worked at another resolution."""
    if mask.shape == shape:
        return mask
    import cv2

    return cv2.resize(mask.astype(np.uint8), shape[::-1], interpolation=cv2.INTER_NEAREST).astype(bool)


def _in_camera(mesh, camera):
    """A copy of ``mesh`` (base frame) in ``camera``'s frame (OpenCV)."""
    return mesh.copy().apply_transform(camera.T_camera_base)


def _bottom_centred(mesh):
    """A copy of ``mesh`` moved so its bounding box's bottom centre is the origin (the base-frame
    convention every package follows)."""
    lo, hi = mesh.bounds
    return mesh.copy().apply_translation(-np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]]))


def _chamfer(a, b) -> float:
    """Symmetric Chamfer distance (metres) between two meshes' surfaces."""
    from scipy.spatial import cKDTree

    pa = a.sample(CHAMFER_SAMPLES, return_index=False)
    pb = b.sample(CHAMFER_SAMPLES, return_index=False)
    return 0.5 * float(cKDTree(pb).query(pa)[0].mean() + cKDTree(pa).query(pb)[0].mean())


def _elevation_azimuth(camera, bounds: np.ndarray) -> tuple[float, float]:
    """Degrees: the camera centre's elevation above the box centre's horizontal plane, and its
    azimuth about +z from the front (+x), both in the base frame."""
    v = camera.position - 0.5 * (bounds[0] + bounds[1])
    return float(np.degrees(np.arctan2(v[2], np.hypot(v[0], v[1])))), float(np.degrees(np.arctan2(v[1], v[0])))


def _matches(predicted: list, true: list) -> list[tuple[int, int]]:
    """(predicted, true) index pairs of the Hungarian matching on IoU that reach MATCH_IOU."""
    from scipy.optimize import linear_sum_assignment

    from tests.stages.synth_inputs import mask_iou

    if not predicted or not true:
        return []
    iou = np.array([[mask_iou(p, t) for t in true] for p in predicted])
    rows, cols = linear_sum_assignment(-iou)
    return [(int(i), int(j)) for i, j in zip(rows, cols) if iou[i, j] >= MATCH_IOU]


def _sweep(base, parts: list, k: int, truth) -> float:
    """Deepest interpenetration (metres) of part k moved through ``truth``'s range vs the rest."""
    import trimesh

    from stages._shared.contact import contact_points, interpenetration
    from stages._shared.kinematics import joint_matrix

    static = trimesh.util.concatenate([base] + [p for j, p in enumerate(parts) if j != k])
    part = parts[k]
    part_points, static_points = contact_points(part, 1000, seed=0), contact_points(static, 1000, seed=1)
    deepest = 0.0
    for value in np.linspace(truth.lower, truth.upper, SWEEP_POSES):
        T = joint_matrix(truth.joint_type, truth.axis, truth.origin, float(value))
        deepest = max(deepest, interpenetration(part, part_points, static, static_points, T))
    return deepest


def summarise(rows: list[dict]) -> dict:
    """Medians (and rates) over ``rows``."""

    def med(values):
        values = [v for v in values if v is not None]
        return float(statistics.median(values)) if values else float("nan")

    true = sum(r["true_visible_parts"] for r in rows)
    pred = sum(r["predicted_parts"] for r in rows)
    matched = sum(r["matched_parts"] for r in rows)
    return {
        "cases": len(rows),
        "fg_iou": med([r["fg_iou"] for r in rows]),
        "chamfer": med([r["chamfer"] for r in rows]),
        "chamfer_base": med([r["chamfer_base"] for r in rows]),
        "elevation_err_deg": med([r["elevation_err_deg"] for r in rows]),
        "azimuth_err_deg": med([r["azimuth_err_deg"] for r in rows]),
        "recall": matched / max(true, 1),
        "precision": matched / max(pred, 1),
        "type_accuracy": float(np.mean(v)) if (v := [t for r in rows for t in r.get("matched_type_ok", [])]) else float("nan"),
        "click_mask_iou": med([v for r in rows for v in r["click_mask_iou"]]),
        "face_iou": med([v for r in rows for v in r["face_iou"]]),
        "watertight": sum(r["watertight"] for r in rows) / max(len(rows), 1),
        "sweeps_over_1mm": sum(v > 1.0 for r in rows for v in r["sweep_penetration_mm"]),
        "sweeps": sum(len(r["sweep_penetration_mm"]) for r in rows),
        "front_half_s": med([r["front_half_s"] for r in rows]),
        "front_half_failed": sum("front_half_error" in r or "part_masks_error" in r for r in rows),
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "| category | cases | fg IoU | Chamfer, camera frame (% diag) | Chamfer, base frame (% diag) | elev. err (deg) | azim. err (deg) | recall | precision "
        "| type proposed right | click mask IoU | face IoU (GT mask) | watertight | sweeps > 1 mm | front half (s) | front half failed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = sorted({r["category"] for r in rows})
    for name, group in [(c, [r for r in rows if r["category"] == c]) for c in groups] + [("**all**", rows)]:
        s = summarise(group)
        lines.append(
            f"| {name} | {s['cases']} | {s['fg_iou']:.3f} | {100 * s['chamfer']:.1f} | {100 * s['chamfer_base']:.1f} | {s['elevation_err_deg']:.1f} | "
            f"{s['azimuth_err_deg']:.1f} | {s['recall']:.2f} | {s['precision']:.2f} | {s['type_accuracy']:.2f} | {s['click_mask_iou']:.2f} | "
            f"{s['face_iou']:.2f} | {100 * s['watertight']:.0f} % | {s['sweeps_over_1mm']}/{s['sweeps']} | "
            f"{s['front_half_s']:.1f} | {s['front_half_failed']} |"
        )
    return "\n".join(lines)


def main() -> None:
    from synth.objects import CATEGORIES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="objects per category (seeds 0..N-1)")
    parser.add_argument("--size", type=int, default=512, help="photo size, pixels (square)")
    parser.add_argument("--categories", nargs="*", default=list(CATEGORIES))
    parser.add_argument("--json", type=Path, help="write every row and the summary here")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    rows, failures = [], []
    cases = [(c, s) for c in args.categories for s in range(args.seeds)]
    for n, (category, seed) in enumerate(cases, 1):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                row = run_case(category, seed, args.size, Path(tmp))
            except Exception as exc:  # a failed case is a result too: count it, keep going
                failures.append({"category": category, "seed": seed, "error": f"{type(exc).__name__}: {exc}"})
                print(f"[{n}/{len(cases)}] {category} s{seed}: FAILED {failures[-1]['error']}", file=sys.stderr)
                continue
        rows.append(row)
        print(
            f"[{n}/{len(cases)}] {category} s{seed}: fg {row['fg_iou']:.3f} chamfer {100 * row['chamfer']:.1f} % "
            f"el/az err {row['elevation_err_deg']:.1f}/{row['azimuth_err_deg']:.1f} deg parts "
            f"{row['matched_parts']}/{row['true_visible_parts']} found, {row['predicted_parts']} proposed; "
            f"front half {row['front_half_s']:.1f} s",
            file=sys.stderr, flush=True,
        )  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows,
                                         "failures": failures, "summary": summarise(rows)}, indent=1))
    print(markdown(rows))
    print(f"\nfailed cases: {len(failures)}" + "".join(f"\n- {f}" for f in failures))


if __name__ == "__main__":
    main()
