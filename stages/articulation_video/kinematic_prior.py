"""Articulation clips from a kinematic prior: scored joint hypotheses, rendered from rest to open.

For each movable part without a user clip:

1. Find the part's exposed face (the side of its bounding box, upright unless the part leans,
   that the base does not cover, preferring large faces turned to the camera); its outward
   normal is the opening direction.
2. Hypotheses: a hinge on each of the face's 4 edges (axis along the edge, on the panel's outer
   face so that it swings clear of the body, signed so that positive angles open outwards) and
   a slide along the normal.
3. Score each: agreement with part_masks' proposal (joint type and hinge side, the edges named
   as ``stages._shared.box_faces`` names them) weighted by its confidence; shape (thin panels
   swing on their long edge, deep wide parts slide); and the free range, the share of the
   target opening (a 90 degree swing, a slide of 0.7 of the depth) reachable before the part
   would enter the base.
4. Render the best one from rest to its free opening: base and moved part z-buffered together,
   surfaces coloured from the photo where the rest pose shows them, a shaded neutral grey
   elsewhere (darker than a light part, lighter than a dark one, so that what the motion reveals
   stands out from the part, as a shadowed cavity does).

A part with a user clip (``--motion``) gets its frames read, resized to the photo's size and
copied instead. Writes ``frames/<part>/frame_NNN.png``, ``previews/<part>.gif`` and
``hypotheses.json``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stages._shared import kinematics
from stages._shared.box_faces import box_faces
from stages._shared.camera import Camera
from stages._shared.clip import read_clip
from stages._shared.io import atomic_dir, atomic_path, read_mask, read_mesh, read_rgb, write_image, write_json
from stages._shared.sampling import sample_bilinear

log = logging.getLogger(__name__)

#: Share of the target opening below which a part is reported as hardly able to move.
LITTLE_FREEDOM = 0.25
#: Hinge sides, with the in-face direction (as multiples of the face's ``right`` and ``down``)
#: from the panel centre towards that edge.
SIDES = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "top": (0.0, -1.0), "bottom": (0.0, 1.0)}


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["kinematic_prior"] = "kinematic_prior"
    n_frames: int = Field(16, ge=2, description="frames per generated clip, frame 0 at rest")
    revolute_open: float = Field(
        math.pi / 2, gt=0, le=math.pi, description="target opening of a hinge, radians"
    )
    prismatic_open: float = Field(
        0.7, gt=0, le=1.0, description="target opening of a slide, fraction of the part's depth"
    )
    prior_weight: float = Field(
        0.5, ge=0, description="score weight of the agreement with part_masks' proposal"
    )
    shape_weight: float = Field(0.25, ge=0, description="score weight of the shape plausibility")
    free_weight: float = Field(
        0.25, ge=0, description="score weight of the reachable share of the target opening"
    )
    exposure_rays: int = Field(
        7, ge=2, description="rays per side of a face's grid when testing which face is exposed"
    )
    collision_points: int = Field(
        400, ge=10, description="points sampled on the part for the free-range sweep"
    )
    collision_tolerance: float = Field(
        0.005, ge=0, description="penetration ignored by the sweep, fraction of the object's diagonal"
    )
    seen_tolerance: float = Field(
        0.005, gt=0, description="depth slack for a surface to count as seen in the photo, fraction of diagonal"
    )
    neutral_contrast: float = Field(
        0.4,
        ge=0,
        le=0.5,
        description="least brightness gap between the grey of unseen surfaces and the part's mean brightness, [0, 1]",
    )
    gif_fps: float = Field(8.0, gt=0, description="frame rate of the preview GIF, frames per second")


def run(cfg: Config, fg, recon, masks, amodal, motions: tuple[Path | None, ...], out_dir: Path):
    """Generate (or read) one clip per part; see the module docstring.

    Parameters
    ----------
    cfg : Config
    fg : ForegroundResult
      The photo (``image``) every frame is rendered at the size of.
    recon : ReconstructResult
      Its camera (base frame) renders the frames.
    masks : PartMasksResult
      Part names, joint proposals and confidences, in the order of ``amodal.part_meshes``.
    amodal : AmodalResult
      Watertight base (with cavities) and part meshes, base frame at rest, metres.
    motions : tuple of (Path or None)
      ``motions[k]``: the user's clip for part k (video or folder of frames), or None.
    out_dir : Path

    Returns
    -------
    ArticulationVideoResult
    """
    from stages.articulation_video import ArticulationVideoResult, PartClip

    # 1. check inputs
    n = len(masks.parts)
    if len(amodal.part_meshes) != n or len(motions) != n:
        raise ValueError(
            f"{n} part mask(s), {len(amodal.part_meshes)} part mesh(es) and {len(motions)} motion entr(ies): "
            "give one mesh and one motion (a path or None) per part, in part order"
        )
    camera = recon.camera
    if (camera.width, camera.height) != (fg.width, fg.height):
        raise ValueError(
            f"camera is {camera.width}x{camera.height} but the photo {fg.width}x{fg.height}; "
            "`recon` and `fg` must come from the same run"
        )
    out_dir = Path(out_dir)
    photo = read_rgb(fg.image)
    photo_mask = read_mask(fg.mask)
    base = read_mesh(amodal.base_mesh)
    parts = [read_mesh(p) for p in amodal.part_meshes]
    diag = float(np.linalg.norm(np.ptp(np.concatenate([base.vertices] + [p.vertices for p in parts]), axis=0)))

    # 2. one clip per part: the user's, or rendered from the best hypothesis
    clips, report = [], {}
    for k, (part_mask, mesh, motion) in enumerate(zip(masks.parts, parts, motions)):  # one clip per part
        started = time.perf_counter()
        static = kinematics.static_scene(base, parts, k)
        if motion is not None:
            frames, skipped = read_clip(Path(motion), (fg.width, fg.height))
            _check_rest(frames[0], photo, photo_mask, Path(motion))
            report[part_mask.name] = {"source": "motion", "clip": motion, "frames": len(frames), "skipped": skipped}
        else:
            hypotheses, faces = score_hypotheses(cfg, camera, static, mesh, part_mask, diag)
            best = max(hypotheses, key=lambda h: h["score"])
            if best["free"] < LITTLE_FREEDOM:
                log.warning(
                    "articulation_video: part %r can move only %.0f%% of a normal opening before it enters the "
                    "base (check the amodal cavity); its clip shows little motion",
                    part_mask.name,
                    100 * best["free"],
                )
            magnitudes = np.linspace(0.0, best["open"], cfg.n_frames)
            frames = render_clip(cfg, camera, photo, photo_mask, static, mesh, best, magnitudes, diag)
            skipped = []
            report[part_mask.name] = {
                "source": "prior",
                "chosen": hypotheses.index(best),
                "magnitudes": magnitudes,
                "hypotheses": hypotheses,
                "exposed_face": faces,
            }
        paths, preview = _write_clip(cfg, out_dir, part_mask.name, frames)
        report[part_mask.name]["seconds"] = round(time.perf_counter() - started, 3)
        clips.append(
            PartClip(
                part=part_mask.name,
                frames=paths,
                preview=preview,
                source="motion" if motion is not None else "prior",
                skipped=tuple(skipped),
            )
        )

    # 3. the scored hypotheses, for the artifact browser
    write_json(out_dir / "hypotheses.json", {"parts": report})
    log.info(
        "articulation_video: %s",
        ", ".join(_describe(name, r) for name, r in report.items()) or "no parts",
    )
    return ArticulationVideoResult(clips=tuple(clips))


def _describe(name: str, r: dict) -> str:
    if r["source"] == "motion":
        return f"{name}: user clip, {r['frames']} frames ({len(r['skipped'])} skipped)"
    h = r["hypotheses"][r["chosen"]]
    unit = "rad" if h["joint_type"] == "revolute" else "m"
    edge = f" on {h['side']}" if h["side"] else ""
    return f"{name}: {h['joint_type']}{edge} to {h['open']:.2f} {unit} (score {h['score']:.2f}, {r['seconds']:.1f} s)"


# ----------------------------------------------------------------------------------------------
# Hypotheses


def exposed_face(base, box: kinematics.Box, camera: Camera, rays: int) -> tuple[int, int, dict]:
    """The part's box face that faces out of the object: ``(axis index, sign, scores per face)``.

    Rays leave a grid on each of the 6 faces along its outward normal; the share that escapes
    the base, times the face's area, times how much the face turns to the camera, scores it.
    """
    scores = {}
    u = (np.arange(rays) + 0.5) / rays - 0.5  # (rays,) grid in [-0.5, 0.5]
    for i in range(3):  # six faces, one batch of rays each
        j, k = [a for a in range(3) if a != i]
        for sign in (1, -1):
            normal = sign * box.axes[i]
            gj, gk = np.meshgrid(u * box.extents[j], u * box.extents[k])
            origins = box.face_centre(i, sign) + gj.reshape(-1, 1) * box.axes[j] + gk.reshape(-1, 1) * box.axes[k]
            origins = origins + 1e-3 * box.diagonal * normal
            escaped = 1.0 - base.ray.intersects_any(origins, np.repeat(normal[None], len(origins), axis=0)).mean()
            to_camera = camera.position - box.face_centre(i, sign)
            facing = max(0.0, float(normal @ to_camera / np.linalg.norm(to_camera)))
            area = float(box.extents[j] * box.extents[k])
            scores[(i, sign)] = float(escaped * area * (0.25 + 0.75 * facing))
    (i, sign) = max(scores, key=scores.get)
    return i, sign, {f"{'+-'[s < 0]}{'xyz'[a]}_box": v for (a, s), v in scores.items()}


def score_hypotheses(cfg: Config, camera: Camera, base, part, proposal, diag: float) -> tuple[list[dict], dict]:
    """All joint hypotheses for one part, each with its score terms; see the module docstring.

    Parameters
    ----------
    camera : Camera
      The photo's camera (the exposed face is preferably one it sees).
    base : trimesh.Trimesh
      Everything that stays put: the base and the other parts at rest.
    part : trimesh.Trimesh
      The moving part at rest.
    proposal : PartMask
      part_masks' joint type, hinge side and confidence.
    diag : float
      The object's bounding-box diagonal, metres (scales the collision tolerance).

    Returns
    -------
    hypotheses : list of dict
      ``joint_type``, ``axis`` (3,), ``origin`` (3,), ``side`` (the hinge's edge of the panel,
      None for a slide), ``open`` (reachable opening, rad or m), ``free`` (its share of the
      target), the score terms ``prior``, ``shape`` and their weighted sum ``score``.
    faces : dict
      Exposure score of each face of the part's box (the best is the opening side).
    """
    box = kinematics.part_box(part.vertices)
    i, sign, face_scores = exposed_face(base, box, camera, cfg.exposure_rays)
    normal = sign * box.axes[i]
    face_centre = box.face_centre(i, sign)
    # hinges sit on the panel's outer face, not on the tip of a handle standing out of it
    face_centre = face_centre + (kinematics.outer_plane(part, normal) - face_centre @ normal) * normal
    j, k = [a for a in range(3) if a != i]
    depth = float(box.extents[i])
    # hinge sides are named as part_masks names them: in the frame of the object's box face the
    # panel lies on, as a viewer outside it and upright sees it (a lid's "top" edge is its back)
    lo, hi = part.bounds
    face = max(box_faces(lo, hi + 1e-9).values(), key=lambda f: float(f.normal @ normal))
    probes = kinematics.probe_points(part, cfg.collision_points, cfg.collision_tolerance * diag)

    # the face's horizontal width and vertical height (a horizontal face has no height)
    vertical = abs(normal[2]) < 0.5
    width = float(box.extents[j]) if vertical else float(max(box.extents[j], box.extents[k]))
    height = float(box.extents[k]) if vertical else float(min(box.extents[j], box.extents[k]))
    thin = float(np.clip(1.0 - depth / min(box.extents[j], box.extents[k]) / 0.5, 0.0, 1.0))

    hypotheses = []
    for e, along in ((j, k), (k, j)):  # the hinge lies along `along`, at either end of `e`
        for side_sign in (1.0, -1.0):
            origin = face_centre + side_sign * 0.5 * box.extents[e] * box.axes[e]
            free_edge = -side_sign * box.extents[e] * box.axes[e]  # hinge -> free edge
            axis = box.axes[along] * np.sign(np.cross(box.axes[along], free_edge) @ normal)
            towards = (origin - face_centre) / np.linalg.norm(origin - face_centre)
            cosines = {name: float(towards @ (a * face.right + b * face.down)) for name, (a, b) in SIDES.items()}
            side = max(cosines, key=cosines.get)
            long_edge = float(box.extents[along] / max(box.extents[along], box.extents[e]))
            hypotheses.append(
                {
                    "joint_type": "revolute",
                    "axis": axis,
                    "origin": origin,
                    "side": side,
                    "side_cos": cosines[side],
                    "target": cfg.revolute_open,
                    "shape": 0.6 * thin + 0.4 * long_edge,
                }
            )
    wide = float(np.clip(width / max(height, 1e-9) / 2.0, 0.0, 1.0)) if vertical else 0.0
    hypotheses.append(
        {
            "joint_type": "prismatic",
            "axis": normal,
            "origin": box.centre,
            "side": None,
            "side_cos": 0.0,
            "target": cfg.prismatic_open * depth,
            "shape": 0.6 * (1.0 - thin) + 0.4 * wide,
        }
    )

    c = float(np.clip(proposal.confidence, 0.0, 1.0))
    for h in hypotheses:  # one free-range sweep per hypothesis
        reach = kinematics.free_range(base, probes, h["joint_type"], h["axis"], h["origin"], h["target"])
        h["open"] = reach
        h["free"] = reach / h["target"]
        h["prior"] = c * _agreement(h, proposal) + (1.0 - c) * 0.5
        h["score"] = cfg.prior_weight * h["prior"] + cfg.shape_weight * h["shape"] + cfg.free_weight * h["free"]
    plain = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in h.items()} for h in hypotheses]
    return plain, face_scores


def _agreement(h: dict, proposal) -> float:
    """How well a hypothesis matches part_masks' proposal, [0, 1]."""
    if h["joint_type"] != proposal.joint_type:
        return 0.0
    if h["joint_type"] == "prismatic":
        return 1.0
    if proposal.hinge_side is None:
        return 0.5
    want = np.asarray(SIDES[proposal.hinge_side])
    got = np.asarray(SIDES[h["side"]]) * max(h["side_cos"], 0.0)
    return float(max(0.0, want @ got))


# ----------------------------------------------------------------------------------------------
# Rendering


def render_clip(
    cfg: Config, camera: Camera, photo: np.ndarray, photo_mask: np.ndarray, base, part, joint: dict, magnitudes, diag
) -> list[np.ndarray]:
    """Frames of the part moving by ``magnitudes`` (rad or m), z-buffered with the base.

    A visible surface point takes the photo's colour where the rest pose shows it in the photo
    (its rest position projects inside the object's mask and is the nearest surface there), and
    the neutral albedo with headlight shading elsewhere (cavities, inner faces, hidden sides).

    Returns
    -------
    list of (H, W, 3) uint8
      White background; frame 0 is the rest pose.
    """
    from stages._shared.raster import nearer, rasterize

    V_rest = np.concatenate([base.vertices, part.vertices])
    F = np.concatenate([base.faces, part.faces + len(base.vertices)])
    n_base = len(base.vertices)
    base_raster = rasterize(camera, base.vertices, base.faces)  # the base stays put: rendered once
    rest = nearer(base_raster, rasterize(camera, part.vertices, part.faces), len(base.faces))
    rest_depth = np.where(rest.mask, rest.depth, np.inf)
    photo_f = photo.astype(np.float32)
    is_part = rest.mask & (rest.face_id >= len(base.faces))
    neutral = np.full(3, 255.0 * _neutral_grey(photo[is_part], cfg.neutral_contrast))
    forward = camera.pose[:3, 2]
    tol = cfg.seen_tolerance * diag
    H, W = camera.height, camera.width

    frames = []
    for m in magnitudes:  # one z-buffered render per frame
        T = kinematics.joint_matrix(joint["joint_type"], joint["axis"], joint["origin"], float(m))
        V = V_rest.copy()
        V[n_base:] = part.vertices @ T[:3, :3].T + T[:3, 3]
        r = nearer(base_raster, rasterize(camera, V[n_base:], part.faces), len(base.faces))
        covered = r.mask
        fid = r.face_id[covered]
        # rest position of each visible surface point, seen from the photo's camera
        # a rigid motion keeps barycentrics: (n, 3) weights x (n, 3, 3) rest corners -> (n, 3)
        p_rest = np.einsum("nk,nkc->nc", r.bary[covered], V_rest[F[fid]])
        uv, z = camera.project(p_rest)
        ix = np.clip(np.floor(uv[:, 0]).astype(int), 0, W - 1)
        iy = np.clip(np.floor(uv[:, 1]).astype(int), 0, H - 1)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
        seen = inside & photo_mask[iy, ix] & (z <= rest_depth[iy, ix] + tol)
        colour = np.empty((len(fid), 3))
        colour[seen] = sample_bilinear(photo_f, uv[seen])
        normals = np.cross(V[F[fid, 1]] - V[F[fid, 0]], V[F[fid, 2]] - V[F[fid, 0]])
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        shade = 0.55 + 0.45 * np.abs(normals[~seen] @ forward)
        colour[~seen] = shade[:, None] * neutral
        frame = np.full((H, W, 3), 255, dtype=np.uint8)
        frame[covered] = np.clip(np.rint(colour), 0, 255).astype(np.uint8)
        frames.append(frame)
    return frames


def _neutral_grey(part_pixels: np.ndarray, contrast: float) -> float:
    """Grey level in [0, 1] for unseen surfaces: the part's mean brightness mirrored about
    mid-grey, pushed to at least ``contrast`` away from it."""
    lum = float(part_pixels.mean()) / 255.0 if part_pixels.size else 0.5
    grey = 1.0 - lum
    if abs(grey - lum) < contrast:
        grey = lum - contrast if lum >= 0.5 else lum + contrast
    return float(np.clip(grey, 0.0, 1.0))


def _check_rest(frame0: np.ndarray, photo: np.ndarray, mask: np.ndarray, clip: Path) -> None:
    """Warn when the clip's first frame does not look like the photo (another view or not at rest)."""
    diff = np.abs(frame0.astype(np.int16) - photo.astype(np.int16)).max(axis=2)[mask]
    if diff.size and (diff > 0.2 * 255).mean() > 0.5:
        log.warning(
            "motion clip %s: its first frame differs from the photo on %.0f%% of the object; the clip must be "
            "filmed from the photo's camera and start at rest",
            clip,
            100 * (diff > 0.2 * 255).mean(),
        )


def _write_clip(cfg: Config, out_dir: Path, name: str, frames: list[np.ndarray]) -> tuple[tuple[Path, ...], Path]:
    """Write ``frames/<name>/frame_NNN.png`` (atomically, as one folder) and ``previews/<name>.gif``."""
    import imageio.v3 as iio

    final = out_dir / "frames" / name
    with atomic_dir(final) as tmp:
        for t, frame in enumerate(frames):  # one PNG per frame
            write_image(tmp / f"frame_{t:03d}.png", frame)
    preview = out_dir / "previews" / f"{name}.gif"
    with atomic_path(preview) as tmp:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=1000.0 / cfg.gif_fps, loop=0)
    return tuple(final / f"frame_{t:03d}.png" for t in range(len(frames))), preview
