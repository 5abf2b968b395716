"""Score a predicted URDF package against a ground-truth one (``image-to-urdf eval``).

Both packages describe the same photo and each records the camera of that photo in its own base
frame (package.json ``camera``, DESIGN.md), so joints are compared in the camera frame: no
registration. Positions are metric when the prediction was made with ``--max-dim`` equal to the
true largest dimension; distances are reported as fractions of the ground truth's bounding-box
diagonal.

Matching: a predicted part with a click is matched to the ground-truth part whose mask holds
that click; the others by mask IoU in the photo (Hungarian assignment, IoU >= ``MIN_IOU``).

Per matched joint:
- ``type_correct``: same joint type.
- ``axis_error_deg``: angle between the axes (sign-agnostic: an axis pointing the other way with
  its limits negated is the same joint).
- ``pivot_error`` (revolute): distance from the true axis line of the predicted axis's point
  nearest the true pivot (the ground truth's ``origin_base``), fraction of the diagonal.
- ``limit_range_error``: |(upper - lower) predicted - true|, in degrees for revolute joints and
  as a fraction of the diagonal for prismatic ones.
- ``chamfer``: symmetric Chamfer distance (mean of both directions' mean nearest-neighbour
  distances) between the parts' visual surfaces at rest, fraction of the diagonal.
Per package: ``valid`` (package.json ``validation.passed``), ``found``/``missed``/``extra``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

#: Smallest mask IoU for a predicted part to count as a ground-truth part (without a click).
MIN_IOU = 0.5
#: Surface samples per part for the Chamfer distance.
CHAMFER_SAMPLES = 2000
#: Joint metrics summarised by ``summarize`` (key, unit).
METRICS = (
    ("axis_error_deg", "deg"),
    ("pivot_error", "diag"),
    ("limit_range_error_revolute_deg", "deg"),
    ("limit_range_error_prismatic", "diag"),
    ("chamfer", "diag"),
)


def read_package(package_dir: Path) -> dict:
    """package.json of ``package_dir`` with its camera and joint masks checked and loaded.

    Returns the package.json dict plus ``_dir`` (Path) and, per joint, ``_mask`` ((H, W) bool or
    None).
    """
    from stages._shared.io import read_mask

    package_dir = Path(package_dir)
    path = package_dir / "package.json"
    if not path.is_file():
        raise ValueError(f"{package_dir}: no package.json; pass a package folder written by `image-to-urdf convert`")
    info = json.loads(path.read_text())
    if not info.get("camera"):
        raise ValueError(f"{path}: no `camera`; the run's camera is needed to compare joints in the camera frame")
    for j in info.get("joints", []):
        mask = j.get("mask")
        j["_mask"] = read_mask(package_dir / mask) if mask and (package_dir / mask).is_file() else None
    info["_dir"] = package_dir
    return info


def evaluate_package(pred_dir: Path | None, gt_dir: Path, valid: bool | None = None) -> dict:
    """Score the package at ``pred_dir`` against the ground truth at ``gt_dir``.

    Parameters
    ----------
    pred_dir : Path or None
      The predicted package; None (no package was produced) scores every true joint as missed.
    gt_dir : Path
      The ground-truth package (e.g. from ``synth.package.write_synth_package``).
    valid : bool or None
      Override of the prediction's validity (e.g. the convert command's exit status); None reads
      package.json ``validation.passed``.

    Returns
    -------
    dict
      ``valid``, ``found``, ``missed``, ``extra``, ``diagonal_m`` and ``joints``: one entry per
      true joint with ``gt``, ``pred`` (joint names, ``pred`` None when missed), ``matched_by``,
      ``iou`` and the metrics of the module docstring.
    """
    gt = read_package(gt_dir)
    gt_joints = [j for j in gt["joints"] if j["type"] != "fixed"]
    diag = _diagonal(Path(gt_dir), gt)
    if pred_dir is None or not (Path(pred_dir) / "package.json").is_file():
        rows = [{"gt": j["name"], "pred": None, "matched_by": None} for j in gt_joints]
        return {"valid": False, "found": 0, "missed": len(gt_joints), "extra": 0, "diagonal_m": diag, "joints": rows}
    pred = read_package(pred_dir)
    if valid is None:
        valid = bool((pred.get("validation") or {}).get("passed", False))
    pred_joints = pred["joints"]
    matches = match_joints(pred_joints, gt_joints)

    T_gt = np.linalg.inv(np.asarray(gt["camera"]["T_base_camera"], dtype=np.float64))  # camera <- gt base
    T_pred = np.linalg.inv(np.asarray(pred["camera"]["T_base_camera"], dtype=np.float64))  # camera <- pred base
    pred_points = _part_points(Path(pred_dir), pred, T_pred)
    gt_points = _part_points(Path(gt_dir), gt, T_gt)
    rows = []
    for gi, g in enumerate(gt_joints):
        match = matches.get(gi)
        if match is None:
            rows.append({"gt": g["name"], "pred": None, "matched_by": None})
            continue
        pi, how, iou = match
        p = pred_joints[pi]
        row = {"gt": g["name"], "pred": p["name"], "matched_by": how, "iou": iou}
        row.update(score_joint(p, g, T_pred, T_gt, diag))
        row["chamfer"] = _chamfer(pred_points.get(p["child"]), gt_points.get(g["child"]), diag)
        rows.append(row)
    found = sum(r["pred"] is not None for r in rows)
    return {
        "valid": bool(valid),
        "found": found,
        "missed": len(gt_joints) - found,
        "extra": len(pred_joints) - found,
        "diagonal_m": diag,
        "joints": rows,
    }


def match_joints(pred_joints: list[dict], gt_joints: list[dict]) -> dict[int, tuple[int, str, float]]:
    """Match predicted to true joints: ``{gt index: (pred index, "click" or "iou", IoU)}``.

    A predicted joint with a ``click`` goes to the true part whose mask holds the click (first
    come first served); the rest by Hungarian assignment on mask IoU, keeping IoU >= MIN_IOU.
    """
    from scipy.optimize import linear_sum_assignment

    iou = np.zeros((len(pred_joints), len(gt_joints)))
    for i, p in enumerate(pred_joints):
        for k, g in enumerate(gt_joints):
            iou[i, k] = _iou(p.get("_mask"), g.get("_mask"))
    matches: dict[int, tuple[int, str, float]] = {}
    used_pred = set()
    for i, p in enumerate(pred_joints):
        click = p.get("click")
        if not click:
            continue
        x, y = int(click[0]), int(click[1])
        for k, g in enumerate(gt_joints):
            m = g.get("_mask")
            if k not in matches and m is not None and 0 <= y < m.shape[0] and 0 <= x < m.shape[1] and m[y, x]:
                matches[k] = (i, "click", float(iou[i, k]))
                used_pred.add(i)
                break
    free_pred = [i for i in range(len(pred_joints)) if i not in used_pred]
    free_gt = [k for k in range(len(gt_joints)) if k not in matches]
    if free_pred and free_gt:
        sub = iou[np.ix_(free_pred, free_gt)]
        rows, cols = linear_sum_assignment(-sub)
        for r, c in zip(rows, cols):
            if sub[r, c] >= MIN_IOU:
                matches[free_gt[c]] = (free_pred[r], "iou", float(sub[r, c]))
    return matches


def score_joint(pred: dict, gt: dict, T_pred: np.ndarray, T_gt: np.ndarray, diag: float) -> dict:
    """Metrics of one matched joint pair; ``T_*`` map each package's base frame into the camera frame."""
    out = {"type_pred": pred["type"], "type_gt": gt["type"], "type_correct": pred["type"] == gt["type"]}
    if pred["type"] not in ("revolute", "prismatic"):  # e.g. "fixed": no axis to compare
        return out | {"axis_error_deg": None, "pivot_error": None}
    a_p = T_pred[:3, :3] @ np.asarray(pred["axis_base"], dtype=np.float64)
    a_g = T_gt[:3, :3] @ np.asarray(gt["axis_base"], dtype=np.float64)
    a_p, a_g = a_p / np.linalg.norm(a_p), a_g / np.linalg.norm(a_g)
    lower, upper = float(pred["lower"]), float(pred["upper"])
    if float(a_p @ a_g) < 0:  # the same joint with its axis and limits flipped
        a_p, lower, upper = -a_p, -upper, -lower
    out["axis_error_deg"] = math.degrees(math.atan2(float(np.linalg.norm(np.cross(a_p, a_g))), float(a_p @ a_g)))
    out["lower_pred"], out["upper_pred"] = lower, upper
    range_error = abs((upper - lower) - (float(gt["upper"]) - float(gt["lower"])))
    if gt["type"] == "revolute" and pred["type"] == "revolute":
        o_p = T_pred[:3, :3] @ np.asarray(pred["origin_base"], dtype=np.float64) + T_pred[:3, 3]
        o_g = T_gt[:3, :3] @ np.asarray(gt["origin_base"], dtype=np.float64) + T_gt[:3, 3]
        q = o_p + float((o_g - o_p) @ a_p) * a_p  # predicted axis point nearest the true pivot
        out["pivot_error"] = float(np.linalg.norm(np.cross(q - o_g, a_g))) / diag
        out["limit_range_error_revolute_deg"] = math.degrees(range_error)
    else:
        out["pivot_error"] = None
        if gt["type"] == "prismatic" and pred["type"] == "prismatic":
            out["limit_range_error_prismatic"] = range_error / diag
    return out


def evaluate_folder(pred_root: Path, gt_root: Path) -> dict:
    """Score ``pred_root/<case>`` against every ``gt_root/<case>`` package (a missing prediction
    scores as invalid with every joint missed). Returns ``{"cases": {case: result}, "summary"}``."""
    gt_root, pred_root = Path(gt_root), Path(pred_root)
    cases = sorted(d.name for d in gt_root.iterdir() if (d / "package.json").is_file())
    if not cases:
        raise ValueError(f"{gt_root}: no <case>/package.json inside; pass a folder of ground-truth packages")
    results = {}
    for case in cases:
        pred = pred_root / case
        results[case] = evaluate_package(pred if (pred / "package.json").is_file() else None, gt_root / case)
    return {"cases": results, "summary": summarize(list(results.values()))}


def summarize(results: list[dict]) -> dict:
    """Medians and 90th percentiles of the joint metrics over ``results`` and package counts."""
    rows = [r for res in results for r in res["joints"] if r["pred"] is not None]
    out = {
        "packages": len(results),
        "valid": sum(r["valid"] for r in results),
        "found": sum(r["found"] for r in results),
        "missed": sum(r["missed"] for r in results),
        "extra": sum(r["extra"] for r in results),
        "type_accuracy": (sum(r["type_correct"] for r in rows) / len(rows)) if rows else None,
    }
    for key, _ in METRICS:
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = {"n": len(values), "median": _quantile(values, 0.5), "p90": _quantile(values, 0.9)}
    return out


def format_table(summary_by_name: dict[str, dict]) -> str:
    """Markdown table, one row per summary (e.g. per category and "all")."""
    head = ("| set | packages | valid | found / missed / extra | type acc | axis err deg (med / p90) | "
            "pivot err (med / p90) | range err rev deg (med / p90) | range err pris (med / p90) | chamfer (med / p90) |")
    lines = [head, "|" + "---|" * 10]
    for name, s in summary_by_name.items():
        def cell(key, digits):
            m = s[key]
            if not m["n"]:
                return "-"
            return f"{m['median']:.{digits}f} / {m['p90']:.{digits}f}"

        acc = "-" if s["type_accuracy"] is None else f"{s['type_accuracy']:.0%}"
        lines.append(
            f"| {name} | {s['packages']} | {s['valid']}/{s['packages']} | {s['found']} / {s['missed']} / {s['extra']} | "
            f"{acc} | {cell('axis_error_deg', 1)} | {cell('pivot_error', 3)} | {cell('limit_range_error_revolute_deg', 1)} | "
            f"{cell('limit_range_error_prismatic', 3)} | {cell('chamfer', 3)} |"
        )
    return "\n".join(lines)


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.quantile(np.asarray(values, dtype=np.float64), q))


def _iou(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None or a.shape != b.shape:
        return 0.0
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def _urdf_path(package_dir: Path, info: dict) -> Path:
    path = package_dir / f"{info['name']}.urdf"
    if not path.is_file():
        found = sorted(package_dir.glob("*.urdf"))
        if len(found) != 1:
            raise ValueError(f"{package_dir}: expected {info['name']}.urdf (or one .urdf file), found {[p.name for p in found]}")
        path = found[0]
    return path


def _diagonal(package_dir: Path, info: dict) -> float:
    """Bounding-box diagonal of the package's visual meshes at rest, metres."""
    from synth.render import load_urdf

    points = load_urdf(_urdf_path(package_dir, info)).points()
    return float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))


def _part_points(package_dir: Path, info: dict, T_camera_base: np.ndarray) -> dict[str, np.ndarray]:
    """Per movable part: (CHAMFER_SAMPLES, 3) surface samples of its subtree at rest, camera frame."""
    import trimesh

    from synth.render import load_urdf

    scene = load_urdf(_urdf_path(package_dir, info))
    meshes = scene.posed()
    out = {}
    for part in scene.parts:
        picked = [m for (link, _), m in zip(scene.visuals, meshes) if scene.part_of_link[link] == part]
        if not picked:
            continue
        mesh = trimesh.util.concatenate(picked) if len(picked) > 1 else picked[0]
        points, _ = trimesh.sample.sample_surface(mesh, CHAMFER_SAMPLES, seed=0)
        out[part] = points @ T_camera_base[:3, :3].T + T_camera_base[:3, 3]
    return out


def _chamfer(a: np.ndarray | None, b: np.ndarray | None, diag: float) -> float | None:
    from scipy.spatial import cKDTree

    if a is None or b is None:
        return None
    d_ab, _ = cKDTree(b).query(a)
    d_ba, _ = cKDTree(a).query(b)
    return float(0.5 * (d_ab.mean() + d_ba.mean())) / diag


def main_eval(pred: Path, gt: Path, json_out: Path | None) -> int:
    """The ``eval`` subcommand: one package pair, or two folders of ``<case>/`` packages."""
    from stages._shared.io import write_json

    gt, pred = Path(gt), Path(pred)
    if (gt / "package.json").is_file():
        result = evaluate_package(pred, gt)
        table = format_table({gt.name: summarize([result])})
        detail = "\n".join(
            f"  {r['gt']}: " + ("missed" if r["pred"] is None else
                                f"{r['pred']} ({r['matched_by']}), type {'ok' if r['type_correct'] else 'WRONG'}, "
                                f"axis {_fmt(r.get('axis_error_deg'), 1)} deg, pivot {_fmt(r.get('pivot_error'), 3)}, "
                                f"chamfer {_fmt(r.get('chamfer'), 3)}")
            for r in result["joints"]
        )
        print(f"{table}\n{detail}")
    else:
        result = evaluate_folder(pred, gt)
        print(format_table({"all": result["summary"]}))
    if json_out is not None:
        write_json(Path(json_out), result)
    return 0


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
