"""Build the third-party benchmark set (metaworld + robosuite objects) in ``build_set.py``'s layout.

    .venv/bin/python benchmarks/build_set.py --source third-party --out DIR [--quick] [--jobs 2] [--cache DIR]

1. Objects: each model of ``wheels.OBJECTS`` is compiled by MuJoCo and converted
   (``mjcf_to_urdf``); its front is the side that shows the moving parts best (``front_yaw``);
   its URDF package goes to ``OUT/objects/<object>/`` and must pass the forward-kinematics check
   against MuJoCo, else the object is dropped with its reason (logged, and in ``OUT/objects.json``).
2. Split: objects sorted by the CRC-32 of their name alternate dev / held-out (deterministic,
   balanced to one object); ``OUT/split.json`` lists both halves and every case.json has ``split``.
3. Cases: ``CONDITIONS`` photos per object (``conditions.draw_condition``), each with photo, masks,
   depth, one clip per joint, case.json and the ground-truth package ``OUT/gt/<case>/`` (the
   object's package plus this photo's camera, part masks and clicks).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.third_party import conditions as C
from benchmarks.third_party import mjcf_to_urdf as M
from benchmarks.third_party.wheels import DEFAULT_CACHE, source_objects
from stages._shared.io import write_image, write_json, write_npy

log = logging.getLogger("third_party.build")

#: Photo conditions per object in the full set, and the ``--quick`` subset (objects x conditions).
CONDITIONS = 4
QUICK_OBJECTS, QUICK_CONDITIONS = 4, 3
SIZE_PX = 512
CLIP_FRAMES, CLIP_SUPERSAMPLE = 10, 1
MIN_PART_PIXELS, CAMERA_TRIES = 150, 12
#: Coarse category of each object model (the tables' rows).
CATEGORY = {
    "buttonbox": "button", "coffeemachine": "button", "dial": "knob", "doorlocka": "lock", "doorlockb": "door",
    "drawer": "drawer", "faucet": "faucet", "hammerblock": "nail", "handle_press": "press_handle",
    "laptop": "laptop", "lever": "lever", "window": "window", "window_horiz": "window", "door": "door",
    "door_lock": "door",
}


def convert_objects(out: Path, cache: Path = DEFAULT_CACHE) -> list[dict]:
    """Convert and check every source object; returns the passing ones' records (see module doc)."""
    records, report = [], []
    for src in source_objects(cache):
        entry = {"object": src.name, "package": src.package, "version": src.version, "xml": str(src.xml.name)}
        try:
            model = M.load_model(src.xml, src.angle_radian)
            art = M.mjcf_articulation(model)
            if not art.joints:
                raise ValueError("no hinge or slide joint on a kept body")
            yaw, scores = M.front_yaw(art)
            T = M.base_transform(art, yaw)
            links, joints = M.base_frame_specs(art, T)
            points = np.concatenate([m.vertices for m in links.values()])
            extents = np.ptp(points, axis=0)
            model_name = src.name.split("_", 1)[1]
            extra = {"source": {"generator": "benchmarks.third_party", "wheel": f"{src.package}-{src.version}",
                                "model": src.xml.name, "front_yaw_deg": float(np.rad2deg(yaw))},
                     "scale_m": float(extents.max()), "extents_m": [float(v) for v in extents]}
            pkg = M.write_articulation_package(out / "objects", src.name, links, joints, extra)
            dp, dr = M.fk_mismatch(model, art, T, pkg / f"{src.name}.urdf", joints)
            entry |= {"fk_position_error_m": dp, "fk_rotation_error_rad": dr, "front_scores": scores, "dropped": art.dropped}
            if dp > M.FK_TOL_M or dr > M.FK_TOL_RAD:
                raise ValueError(f"forward kinematics differ from MuJoCo's by {dp:.2e} m / {dr:.2e} rad")
            entry |= {"passed": True, "category": CATEGORY.get(model_name, model_name), "joints": len(joints),
                      "joint_types": [j["type"] for j in joints], "max_dim_m": float(extents.max())}
            records.append(entry)
            log.info("object %s: %d joint(s) %s, FK check %.1e m / %.1e rad, front yaw %.0f deg", src.name,
                     len(joints), [j["type"] for j in joints], dp, dr, np.rad2deg(yaw))
        except Exception as exc:  # a failed conversion or check drops the object, with its reason
            entry |= {"passed": False, "reason": f"{type(exc).__name__}: {exc}"}
            log.warning("object %s dropped: %s", src.name, entry["reason"])
        report.append(entry)
    write_json(out / "objects.json", report)
    log.info("%d of %d object(s) converted and passed the FK check (%d joints)", len(records), len(report),
             sum(r["joints"] for r in records))
    return records


def split_objects(names: list[str]) -> dict[str, str]:
    """``{object: "dev" | "heldout"}``: sorted by CRC-32 of the name, alternating (balanced)."""
    ordered = sorted(names, key=lambda n: (zlib.crc32(n.encode()), n))
    return {n: ("dev" if k % 2 == 0 else "heldout") for k, n in enumerate(ordered)}


def build_case(spec: dict, out: Path) -> dict:
    """Render and write one case of ``spec`` (object, condition index, split) and its ground truth."""
    from synth.render import click_point, framed_camera, load_urdf, render_urdf, render_urdf_clip

    started = time.perf_counter()
    name = spec["object"]
    obj_dir = out / "objects" / name
    scene = load_urdf(obj_dir / f"{name}.urdf")
    info = json.loads((obj_dir / "package.json").read_text())
    points = scene.points()
    # 1. Condition and a camera from which every part can be clicked
    for attempt in range(CAMERA_TRIES):
        cond = C.draw_condition(name, spec["condition"], attempt)
        camera = framed_camera(points, np.deg2rad(cond.azimuth_deg), np.deg2rad(cond.elevation_deg), cond.fov_y,
                               cond.fill, SIZE_PX, SIZE_PX)
        ambient, lights = C.LIGHTING[cond.lighting]
        backdrop = C.background_image(cond.background, SIZE_PX, SIZE_PX, cond.seed)
        bg = tuple(int(v) for v in backdrop.reshape(-1, 3).mean(axis=0))
        view = render_urdf(scene, camera, background=bg, lights=lights, ambient=ambient)
        if all(m.sum() >= MIN_PART_PIXELS for m in view.part_masks.values()):
            break
    else:
        raise RuntimeError(f"case {spec['case']}: no camera in {CAMERA_TRIES} tries shows every part")
    shadow = C.floor_shadow(camera, points, SIZE_PX, SIZE_PX) if cond.shadow else None

    # 2. Photo (condition applied) and its exact annotations
    case_dir = out / "cases" / spec["case"]
    write_image(case_dir / "photo.png", C.finish_photo(view.rgb, view.mask, cond, backdrop, shadow))
    write_image(case_dir / "mask.png", view.mask)
    write_npy(case_dir / "depth.npy", view.depth.astype(np.float32))
    for part, mask in view.part_masks.items():
        write_image(case_dir / "masks" / f"{part}.png", mask)

    # 3. One clip per joint, rest -> open, same camera and condition
    clips = {}
    for part in scene.parts:
        frames = render_urdf_clip(scene, camera, scene.joint_of_part[part], CLIP_FRAMES, bg, CLIP_SUPERSAMPLE,
                                  lights, ambient)
        for t, f in enumerate(frames):
            write_image(case_dir / "clips" / part / f"frame_{t:03d}.png",
                        C.finish_photo(f.rgb, f.mask, cond, backdrop, shadow))
        clips[part] = f"clips/{part}"

    # 4. Ground-truth package: the object's, with this photo's camera, masks and clicks
    clicks = {p: list(click_point(m)) for p, m in view.part_masks.items()}
    gt = out / "gt" / spec["case"]
    shutil.rmtree(gt, ignore_errors=True)
    shutil.copytree(obj_dir, gt)
    for part, mask in view.part_masks.items():
        write_image(gt / "masks" / f"{part}.png", mask)
    for j in info["joints"]:
        j |= {"mask": f"masks/{j['child']}.png", "click": clicks[j["child"]], "confidence": 1.0}
    info |= {"camera": camera.to_dict(), "condition": cond.to_dict()}
    write_json(gt / "package.json", info)

    record = dict(
        spec,
        photo="photo.png",
        max_dim_m=float(info["scale_m"]),
        extents_m=info["extents_m"],
        camera=camera.to_dict(),
        condition=cond.to_dict(),
        parts=list(scene.parts),
        clicks={p: clicks[p] for p in scene.parts},
        clips=clips,
        joints=[{k: j[k] for k in ("name", "type", "parent", "child", "axis_base", "origin_base", "lower", "upper")}
                for j in info["joints"]],
        gt_package=f"../../gt/{spec['case']}",
    )
    write_json(case_dir / "case.json", record)
    log.info("%s: %d part(s), %s/%s/%s, %.1f s", spec["case"], len(scene.parts), cond.background, cond.lighting,
             cond.framing, time.perf_counter() - started)
    return record


def case_specs(objects: list[dict], split: dict[str, str], n_conditions: int) -> list[dict]:
    """One spec per (object, condition): ``case`` name, ``object``, ``category``, ``condition``, ``split``.

    Condition-major (every object's condition 0, then 1, ...), so any prefix spans the objects.
    """
    return [
        {"case": f"{o['object']}_c{k}", "object": o["object"], "category": o["category"], "condition": k,
         "split": split[o["object"]], "source": "third-party"}
        for k in range(n_conditions) for o in objects
    ]


def build_third_party_set(out: Path, quick: bool = False, jobs: int = 1, cache: Path = DEFAULT_CACHE) -> list[dict]:
    """Build the set under ``out`` (cases already complete are kept); returns every case.json."""
    out = Path(out)
    start = time.perf_counter()
    objects = convert_objects(out, cache)
    if not objects:
        raise RuntimeError(f"no object passed conversion; see {out / 'objects.json'}")
    split = split_objects([o["object"] for o in objects])
    n_conditions = CONDITIONS
    if quick:  # the first objects of each half, alternating
        dev = [o for o in objects if split[o["object"]] == "dev"][: (QUICK_OBJECTS + 1) // 2]
        held = [o for o in objects if split[o["object"]] == "heldout"][: QUICK_OBJECTS // 2]
        objects, n_conditions = dev + held, QUICK_CONDITIONS
    specs = case_specs(objects, split, n_conditions)
    write_json(out / "split.json", {
        "source": "third-party", "rule": "objects sorted by CRC-32 of their name alternate dev / heldout",
        "dev": sorted(n for n, s in split.items() if s == "dev"),
        "heldout": sorted(n for n, s in split.items() if s == "heldout"),
        "cases": {s["case"]: s["split"] for s in specs},
        "specs": specs,
    })
    todo = [s for s in specs if not (out / "cases" / s["case"] / "case.json").is_file()]
    log.info("building %d of %d case(s) in %s with %d job(s)", len(todo), len(specs), out, jobs)
    if jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(build_case, todo, [out] * len(todo)))
    else:
        for spec in todo:
            build_case(spec, out)
    cases = [json.loads((out / "cases" / s["case"] / "case.json").read_text()) for s in specs]
    log.info("third-party set: %d case(s) of %d object(s), %d joint(s) per condition, %.0f s", len(cases),
             len(objects), sum(o["joints"] for o in objects), time.perf_counter() - start)
    return cases
