"""Joint fitting with a unified dual-quaternion motion model and soft depth blending (DreamArt §3.3).

For each part and its clip (frame 0 at rest, same camera as the photo):

1. Observe: the object's silhouette in every frame (difference from the plain background
   colour) and its colours. A clip in which the part's region hardly changes is ``fixed``.
2. Model: a screw motion about the line (unit axis ``u``, pivot ``p``) written as a unit dual
   quaternion ``q_t = q_r + eps q_d``; revolute joints rotate by ``m_t`` radians about the line,
   prismatic joints translate by ``m_t`` metres along ``u``. Magnitudes are monotone from rest:
   ``m_0 = 0``, ``m_t = s * cumsum(softplus(delta))``.
3. Render: the base (static, exact, rendered once) and the moved part (soft rasteriser, per
   frame) are separate layers composited by soft depth blending (see ``soft_render``). The part
   is coloured by projecting each surface point's *rest* position into frame 0 where frame 0 saw
   it; surfaces frame 0 did not see get one learned albedo per layer, shaded by their normal.
4. Initialise (ATOP-style): discrete candidates from the part's upright bounding box (axes = its
   3 principal directions x both signs; revolute lines through the centre, face centres and edge
   midlines), each scored at low resolution with the best magnitude per frame from a grid.
5. Refine: Adam on (u, p, delta, albedos) for the best candidates per type, coarse to fine.
6. Choose the type by final loss (prismatic, having no pivot, wins unless revolute is lower by a
   margin), then the limits: observed range of the fitted magnitudes, extended by the free range
   swept until the part would enter the base.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stages._shared import kinematics
from stages._shared.camera import Camera
from stages._shared.io import read_mesh, read_rgb, write_json

log = logging.getLogger(__name__)

JOINT_TYPES = ("revolute", "prismatic")


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["dual_quaternion"] = "dual_quaternion"
    fit_size: int = Field(256, ge=32, description="long side of the images for the final refinement, pixels")
    coarse_size: int = Field(128, ge=16, description="long side of the images for the coarse refinement, pixels")
    search_size: int = Field(64, ge=16, description="long side of the images for scoring candidates, pixels")
    texture_size: int = Field(512, ge=32, description="long side of frame 0 when used as the colour source, pixels")
    search_frames: int = Field(8, ge=2, description="frames of the clip used to score candidates (evenly spread)")
    search_steps: int = Field(13, ge=3, description="magnitudes per frame tried when scoring a candidate")
    keep: int = Field(2, ge=1, description="best candidates per joint type refined by gradient")
    coarse_iters: int = Field(60, ge=0, description="Adam iterations at coarse_size")
    fine_iters: int = Field(30, ge=0, description="Adam iterations at fit_size (best candidate per type)")
    lr_axis: float = Field(0.01, gt=0, description="Adam step of the raw axis vector (~radians per step)")
    lr_pivot: float = Field(0.004, gt=0, description="Adam step of the pivot, fraction of the object's diagonal")
    lr_magnitude: float = Field(0.05, gt=0, description="Adam step of the raw magnitude increments")
    lr_albedo: float = Field(0.05, gt=0, description="Adam step of the unseen-surface albedos (logits)")
    sigma_px: float = Field(0.6, gt=0, description="edge softness of the soft rasteriser, pixels")
    tau_layer: float = Field(0.003, gt=0, description="depth softness within a layer, fraction of the object's diagonal")
    tau_blend: float = Field(0.01, gt=0, description="depth softness between base and part, fraction of the object's diagonal")
    silhouette_weight: float = Field(1.0, ge=0, description="weight of the silhouette L1 loss")
    colour_weight: float = Field(1.0, ge=0, description="weight of the colour Charbonnier loss")
    charbonnier_eps: float = Field(0.01, gt=0, description="Charbonnier epsilon, colour units in [0, 1]")
    background_threshold: float = Field(0.08, gt=0, lt=1, description="colour distance from the background that counts as object, [0, 1]")
    plain_background: float = Field(0.9, gt=0, le=1, description="share of frame 0's border near its median colour for a plain background")
    change_threshold: float = Field(0.1, gt=0, lt=1, description="colour change of a pixel that counts as motion, [0, 1]")
    min_motion: float = Field(0.05, ge=0, description="changed pixels / part's pixels at rest below which the part is fixed")
    revolute_margin: float = Field(0.1, ge=0, description="revolute is chosen only if its loss is this fraction below prismatic's")
    revolute_cap: float = Field(math.pi, gt=0, description="largest revolute range considered, radians")
    prismatic_cap: float = Field(1.0, gt=0, description="largest prismatic range, fraction of the part's depth along the axis")
    collision_points: int = Field(400, ge=10, description="points sampled on the part for the free-range sweep")
    collision_tolerance: float = Field(0.005, ge=0, description="penetration ignored by the sweep, fraction of the object's diagonal")
    seen_tolerance: float = Field(0.005, gt=0, description="depth slack for a surface point to count as seen in frame 0, fraction of diagonal")
    seed: int = Field(0, description="seed for surface sampling")


def run(cfg: Config, recon, amodal, video, out_dir: Path):
    """Fit one joint per clip of ``video``; clip k belongs to ``amodal.part_meshes[k]``.

    Parameters
    ----------
    cfg : Config
    recon : ReconstructResult
      Gives the camera (base frame) that saw the photo and every clip.
    amodal : AmodalResult
      Watertight base (with cavities) and part meshes, base frame at rest, metres.
    video : ArticulationVideoResult
      One clip per part, frames at the photo's size, frame 0 at rest.
    out_dir : Path
      Receives ``fit.json``.

    Returns
    -------
    JointFitResult
    """
    import torch

    from stages.joint_fit import JointEstimate, JointFitResult

    # 1. check inputs
    if len(video.clips) != len(amodal.part_meshes):
        raise ValueError(
            f"`video` has {len(video.clips)} clip(s) but `amodal` has {len(amodal.part_meshes)} part mesh(es); "
            "clip k must belong to part k: run articulation_video on the same amodal result"
        )
    camera = recon.camera
    base = read_mesh(amodal.base_mesh)
    parts = [read_mesh(p) for p in amodal.part_meshes]
    diag = float(np.linalg.norm(np.ptp(np.concatenate([base.vertices] + [p.vertices for p in parts]), axis=0)))
    torch.manual_seed(cfg.seed)

    # 2. fit each part to its clip
    estimates, reports = [], []
    for k, (clip, part) in enumerate(zip(video.clips, parts)):
        frames = [read_rgb(f) for f in clip.frames]
        for path, f in zip(clip.frames, frames):
            if f.shape[:2] != (camera.height, camera.width):
                raise ValueError(
                    f"clip frame {path} is {f.shape[1]}x{f.shape[0]}, the camera {camera.width}x{camera.height}; "
                    "clips must be at the photo's size (articulation_video resizes them)"
                )
        if len(frames) < 2:
            raise ValueError(f"clip of part {clip.part!r} has {len(frames)} frame(s); a clip needs rest + >= 1 moved frame")
        started = time.perf_counter()
        fit = fit_joint(cfg, camera, base, part, frames, diag)
        fit["seconds"] = time.perf_counter() - started
        fit["part"] = clip.part
        fit["source"] = clip.source
        reports.append(fit)
        estimates.append(JointEstimate(part=clip.part, **fit["estimate"]))
        est = estimates[-1]
        log.info(
            "joint_fit %s: %s axis %s origin %s range [%.3f, %.3f] (observed [%.3f, %.3f], free [%.3f, %.3f]) "
            "losses %s confidence %.2f in %.1f s",
            clip.part, est.joint_type, np.round(est.axis_base, 3).tolist(), np.round(est.origin_base, 3).tolist(),
            est.lower, est.upper, est.observed_lower, est.observed_upper, est.free_lower, est.free_upper,
            {t: round(v, 4) for t, v in est.losses.items()}, est.confidence, fit["seconds"],
        )  # fmt: skip

    # 3. write fit.json
    params = write_json(
        Path(out_dir) / "fit.json",
        {"config": cfg.model_dump(), "camera": camera.to_dict(), "object_diagonal_m": diag, "parts": reports},
    )
    log.info(
        "joint_fit: %d part(s): %s",
        len(estimates),
        ", ".join(f"{e.part} {e.joint_type} ({r['seconds']:.1f} s)" for e, r in zip(estimates, reports)) or "none",
    )
    return JointFitResult(joints=tuple(estimates), params_json=params)


# ----------------------------------------------------------------------------------------------
# Dual quaternions: (w, x, y, z) with w first; a dual quaternion is a pair (real, dual).


def qmul(a, b):
    """Hamilton product of quaternions ``(..., 4)`` (broadcasting)."""
    import torch

    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def qconj(a):
    """Quaternion conjugate ``(..., 4)``: (w, -x, -y, -z)."""
    return a * a.new_tensor([1.0, -1.0, -1.0, -1.0])


def dq_mul(q1, q2):
    """Product of dual quaternions ``(r1 + eps d1)(r2 + eps d2) = r1 r2 + eps (r1 d2 + d1 r2)``."""
    r1, d1 = q1
    r2, d2 = q2
    return qmul(r1, r2), qmul(r1, d2) + qmul(d1, r2)


def dq_conjugate(q):
    """Combined (quaternion and dual) conjugate ``r* - eps d*``, the one that transforms points."""
    r, d = q
    return qconj(r), -qconj(d)


def dq_screw(axis, pivot, angle, displacement):
    """Unit dual quaternion of a screw motion about the line through ``pivot`` along ``axis``.

    ``q = cos(theta_hat / 2) + sin(theta_hat / 2) s_hat`` with the dual angle
    ``theta_hat = angle + eps displacement`` and the Pluecker line ``s_hat = u + eps (p x u)``:
    ``q_r = (cos(a/2), sin(a/2) u)``, ``q_d = (-d/2 sin(a/2), d/2 cos(a/2) u + sin(a/2) (p x u))``.
    A revolute joint is the screw with ``displacement = 0``, a prismatic one with ``angle = 0``.

    Parameters
    ----------
    axis : (3,) float tensor
      Unit axis direction, base frame.
    pivot : (3,) float tensor
      A point on the axis, metres.
    angle, displacement : (B,) float tensor
      Rotation (radians, right-hand rule about ``axis``) and translation along ``axis`` (metres).

    Returns
    -------
    (q_r, q_d) : pair of (B, 4) float tensors
    """
    import torch

    half = 0.5 * angle[:, None]  # (B, 1)
    c, s = torch.cos(half), torch.sin(half)
    moment = torch.linalg.cross(pivot, axis)  # (3,)
    q_r = torch.cat([c, s * axis], dim=-1)
    q_d = torch.cat([-0.5 * displacement[:, None] * s, 0.5 * displacement[:, None] * c * axis + s * moment], dim=-1)
    return q_r, q_d


def dq_transform(q, points):
    """Apply unit dual quaternions to points: ``q (1 + eps x) (r* - eps d*)``.

    Parameters
    ----------
    q : pair of (..., 4) float tensors
      (real, dual) parts, broadcastable against ``points`` without its last axis.
    points : (..., 3) float tensor

    Returns
    -------
    (..., 3) float tensor
    """
    import torch

    zero = torch.zeros_like(points[..., :1])
    point = (torch.cat([torch.ones_like(zero), zero, zero, zero], dim=-1), torch.cat([zero, points], dim=-1))
    _, d = dq_mul(dq_mul(q, point), dq_conjugate(q))
    return d[..., 1:]


def q_rotate(q_r, vectors):
    """Rotate vectors ``(..., 3)`` by unit quaternions ``q_r`` (broadcastable): ``vec(r v r*)``."""
    import torch

    v = torch.cat([torch.zeros_like(vectors[..., :1]), vectors], dim=-1)
    return qmul(qmul(q_r, v), qconj(q_r))[..., 1:]


# ----------------------------------------------------------------------------------------------
# Fitting one joint.


@dataclass
class _Scene:
    """Everything the loss needs at one resolution; tensors are float32."""

    view: object  # soft_render.View
    base_alpha: object  # (1, H, W)
    base_depth: object  # (1, H, W)
    base_seen: object  # (1, H, W, 3) premultiplied seen colour
    base_unseen: object  # (1, H, W, 1) unseen shading weight
    obs_alpha: object  # (T, H, W) observed silhouette coverage
    obs_rgb: object  # (T, H, W, 3) observed colours
    background: object  # (3,) background colour
    sigma: float


@dataclass
class _Part:
    """The moving part's mesh and its colour source (frame 0 at texture resolution)."""

    vertices: object  # (V, 3) rest positions
    faces: object  # (F, 3) int64
    normals: object  # (F, 3) face normals at rest
    texture: object  # (3, Ht, Wt) frame 0
    rest_depth: object  # (Ht, Wt) depth of the visible surface at rest (base + part)
    texture_view: object  # soft_render.View at texture resolution
    forward: object  # (3,) camera viewing direction, base frame
    seen_tol: float


def fit_joint(cfg: Config, camera: Camera, base, part, frames: list[np.ndarray], diag: float) -> dict:
    """Fit the joint of ``part`` to ``frames``; returns the report dict with an ``estimate`` entry.

    The ``estimate`` entry holds the :class:`~stages.joint_fit.JointEstimate` fields except
    ``part``; the rest of the report (candidates, loss curves, settings) goes to fit.json.
    """
    import torch

    box = kinematics.upright_box(part.vertices)
    tex_cam = camera.scaled(cfg.texture_size / max(camera.width, camera.height))
    frames_tex = [_resize(f, tex_cam) for f in frames]

    # 1. observe: background, silhouettes, motion
    background, plain = _background(frames_tex[0], cfg.background_threshold)
    rest = _rest_render(tex_cam, base, part)
    motion = _motion(frames_tex, rest["part_area"], cfg.change_threshold)
    report = {
        "background_rgb": (background * 255).round().tolist(),
        "plain_background": bool(plain),
        "motion": motion,
        "part_box": {"centre": box.centre, "axes": box.axes, "extents": box.extents},
    }
    if not plain:
        log.warning(
            "joint_fit: frame 0's border is not a plain background; silhouettes are not observed, "
            "fitting on colours only (film the part in front of a plain backdrop for a better fit)"
        )
    if motion["score"] < cfg.min_motion:
        report["estimate"] = _fixed_estimate(box, len(frames), motion["score"], cfg.min_motion)
        return report

    sil_w = cfg.silhouette_weight if plain else 0.0
    weights = (sil_w, cfg.colour_weight)
    model = _part_model(cfg, part, frames_tex[0], rest, tex_cam, diag)
    scenes = {
        name: _scene(cfg, camera.scaled(size / max(camera.width, camera.height)), base, part, frames, background, model)
        for name, size in (("search", cfg.search_size), ("coarse", cfg.coarse_size), ("fine", cfg.fit_size))
    }
    albedo0 = torch.full((2, 3), 0.5)
    T = len(frames)

    # 2. score the discrete candidates (ATOP-style) with a per-frame magnitude grid
    sub = np.unique(np.linspace(1, T - 1, min(cfg.search_frames, T - 1)).round().astype(int))
    candidates = _candidates(box, cfg)
    for c in candidates:
        c.update(_score_candidate(cfg, scenes["search"], model, c, sub, albedo0, diag, weights))
    report["candidates"] = [
        {k: c[k] for k in ("joint_type", "axis", "origin", "score", "grid_magnitudes")} for c in candidates
    ]

    # 3. refine the best candidates of each type, coarse to fine
    fits = {}
    for jt in JOINT_TYPES:
        ranked = sorted((c for c in candidates if c["joint_type"] == jt), key=lambda c: c["score"])[: cfg.keep]
        coarse = [_refine(cfg, scenes["coarse"], model, c, sub, T, diag, weights, cfg.coarse_iters) for c in ranked]
        best = min(coarse, key=lambda r: r["loss"])
        fine = _refine(cfg, scenes["fine"], model, best, sub, T, diag, weights, cfg.fine_iters)
        fine["curve"] = best["curve"] + fine["curve"]
        fine["coarse_losses"] = [r["loss"] for r in coarse]
        fits[jt] = fine
    static = _static_loss(cfg, scenes["fine"], model, T, weights, diag)

    # 4. choose the type: the pivot-free prismatic model unless revolute is clearly better
    losses = {jt: fits[jt]["loss"] for jt in JOINT_TYPES}
    chosen = "revolute" if losses["revolute"] < (1.0 - cfg.revolute_margin) * losses["prismatic"] else "prismatic"
    other = "prismatic" if chosen == "revolute" else "revolute"
    fit = fits[chosen]
    report["fits"] = {
        jt: {k: fits[jt][k] for k in ("axis", "origin", "magnitudes", "loss", "curve", "coarse_losses", "albedo")}
        for jt in JOINT_TYPES
    }
    report["static_loss"] = static

    # 5. limits: observed range, free range swept against the base
    axis = np.asarray(fit["axis"], dtype=np.float64)
    origin = _origin_on_axis(chosen, axis, np.asarray(fit["origin"]), box.centre)
    mags = np.asarray(fit["magnitudes"])
    cap = cfg.revolute_cap if chosen == "revolute" else cfg.prismatic_cap * _extent_along(part.vertices, axis)
    points = _surface_points(part, cfg.collision_points, cfg.seed)
    tol = cfg.collision_tolerance * diag
    free_hi = kinematics.free_range(base, points, chosen, axis, origin, cap, tol)
    free_lo = kinematics.free_range(base, points, chosen, axis, origin, -cap, tol)
    obs_lo, obs_hi = float(mags.min()), float(mags.max())
    if obs_hi > free_hi + 1e-6:
        log.warning(
            "joint_fit: the clip opens the part to %.3f but it enters the base beyond %.3f; keeping the observed range",
            obs_hi,
            free_hi,
        )
    explained = float(np.clip(1.0 - losses[chosen] / max(static, 1e-12), 0.0, 1.0))
    separation = float(np.clip((losses[other] - losses[chosen]) / max(losses[other], 1e-12) / 0.5, 0.0, 1.0))
    report["estimate"] = {
        "joint_type": chosen,
        "axis_base": tuple(float(v) for v in axis),
        "origin_base": tuple(float(v) for v in origin),
        "lower": min(obs_lo, free_lo),
        "upper": max(obs_hi, free_hi),
        "observed_lower": obs_lo,
        "observed_upper": obs_hi,
        "free_lower": free_lo,
        "free_upper": free_hi,
        "magnitudes": tuple(float(m) for m in mags),
        "losses": {jt: float(v) for jt, v in losses.items()},
        "confidence": explained * (0.5 + 0.5 * separation),
    }
    report["explained"] = explained
    report["type_separation"] = separation
    return report


def _fixed_estimate(box, n_frames: int, score: float, threshold: float) -> dict:
    """A fixed joint: no axis (zeros), origin at the part's centre, no range."""
    return {
        "joint_type": "fixed",
        "axis_base": (0.0, 0.0, 0.0),
        "origin_base": tuple(float(v) for v in box.centre),
        "lower": 0.0,
        "upper": 0.0,
        "observed_lower": 0.0,
        "observed_upper": 0.0,
        "free_lower": 0.0,
        "free_upper": 0.0,
        "magnitudes": (0.0,) * n_frames,
        "losses": {},
        "confidence": float(np.clip(1.0 - score / max(threshold, 1e-12), 0.0, 1.0)),
    }


def _resize(image: np.ndarray, camera: Camera) -> np.ndarray:
    import cv2

    if image.shape[:2] == (camera.height, camera.width):
        return image
    shrink = camera.width < image.shape[1]
    return cv2.resize(image, (camera.width, camera.height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _background(frame: np.ndarray, threshold: float) -> tuple[np.ndarray, bool]:
    """Median colour of the frame's border, [0, 1], and whether the border is plain."""
    border = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]]).astype(np.float64) / 255.0
    colour = np.median(border, axis=0)
    near = np.abs(border - colour).max(axis=1) < threshold
    return colour, bool(near.mean() >= 0.9)


def _silhouette(frame: np.ndarray, background: np.ndarray, threshold: float) -> np.ndarray:
    """(H, W) float32 mask: pixels further than ``threshold`` from the background colour."""
    diff = np.abs(frame.astype(np.float32) / 255.0 - background.astype(np.float32)).max(axis=2)
    return (diff > threshold).astype(np.float32)


def _rest_render(camera: Camera, base, part) -> dict:
    """Exact render of base + part at rest: visible depth and the part's pixel count."""
    from stages._shared.raster import rasterize

    V = np.concatenate([base.vertices, part.vertices])
    F = np.concatenate([base.faces, part.faces + len(base.vertices)])
    r = rasterize(camera, V, F)
    part_alone = rasterize(camera, part.vertices, part.faces)
    return {"raster": r, "n_base_faces": len(base.faces), "part_area": int(part_alone.mask.sum())}


def _motion(frames: list[np.ndarray], part_area: int, threshold: float) -> dict:
    """How much each frame differs from frame 0, as a fraction of the part's pixels at rest."""
    f0 = frames[0].astype(np.int16)
    changed = [int((np.abs(f.astype(np.int16) - f0).max(axis=2) > threshold * 255).sum()) for f in frames]
    per_frame = [c / max(part_area, 1) for c in changed]
    return {"part_pixels": part_area, "changed_fraction": per_frame, "score": float(max(per_frame))}


def _part_model(cfg: Config, part, frame0: np.ndarray, rest: dict, tex_cam: Camera, diag: float) -> _Part:
    import torch

    from stages.joint_fit.soft_render import View

    f32 = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
    depth = np.where(rest["raster"].mask, rest["raster"].depth, np.inf)
    return _Part(
        vertices=f32(part.vertices),
        faces=torch.as_tensor(np.asarray(part.faces), dtype=torch.int64),
        normals=f32(part.face_normals),
        texture=f32(frame0 / 255.0).permute(2, 0, 1).contiguous(),  # (H, W, 3) -> (3, H, W)
        rest_depth=f32(depth),
        texture_view=View.from_camera(tex_cam),
        forward=f32(tex_cam.pose[:3, 2]),
        seen_tol=cfg.seen_tolerance * diag,
    )


def _scene(cfg: Config, cam: Camera, base, part, frames, background, model: _Part) -> _Scene:
    """Observations and the static base layer at one resolution."""
    import torch

    from stages._shared.raster import rasterize
    from stages.joint_fit.soft_render import View, static_layer

    obs = [_resize(f, cam) for f in frames]
    # silhouettes from the full frames, area-averaged down to this resolution
    sil = [_resize(_silhouette(f, background, cfg.background_threshold), cam) for f in frames]
    V = np.concatenate([base.vertices, part.vertices])
    F = np.concatenate([base.faces, part.faces + len(base.vertices)])
    forward = cam.pose[:3, 2]
    frame0 = frames[0]

    def channels(r, sub_cam):
        # seen at rest: the base face is the visible surface of base + part at this sub-pixel
        both = rasterize(sub_cam, V, F)
        seen = (both.face_id == r.face_id) & r.mask
        rgb = _resize(frame0, sub_cam).astype(np.float64) / 255.0
        shade = _shade(base.face_normals[np.where(r.mask, r.face_id, 0)], forward)
        return np.concatenate([rgb * seen[..., None], ((~seen) * shade)[..., None]], axis=2)

    alpha, depth, values = static_layer(cam, base.vertices, base.faces, channels)
    as_t = lambda x: torch.as_tensor(np.stack(x), dtype=torch.float32)  # noqa: E731
    return _Scene(
        view=View.from_camera(cam),
        base_alpha=alpha[None],
        base_depth=depth[None],
        base_seen=values[None, ..., :3],
        base_unseen=values[None, ..., 3:4],
        obs_alpha=as_t(sil),
        obs_rgb=as_t(obs) / 255.0,
        background=torch.as_tensor(background, dtype=torch.float32),
        sigma=cfg.sigma_px,
    )


def _shade(normals, forward):
    """Headlight shading of unseen surfaces: 0.55 + 0.45 |n . forward| (numpy or torch)."""
    dot = (normals * forward).sum(-1)
    return 0.55 + 0.45 * abs(dot)


def _render(cfg: Config, scene: _Scene, model: _Part, joint_type: str, axis, pivot, mags, albedo, diag: float):
    """Composite (alpha (B, H, W), rgb (B, H, W, 3)) with the part moved by ``mags`` (B,)."""
    import torch

    from stages.joint_fit.soft_render import Layer, blend, composite_layer, rasterize, sample_image

    zero = torch.zeros_like(mags)
    angle, disp = (mags, zero) if joint_type == "revolute" else (zero, mags)
    q_r, q_d = dq_screw(axis, pivot, angle, disp)  # (B, 4) each
    q = (q_r[:, None], q_d[:, None])  # (B, 4) -> (B, 1, 4): broadcast over vertices
    verts = dq_transform(q, model.vertices[None])  # (B, V, 3)
    frags = rasterize(scene.view, verts, model.faces, scene.sigma)

    # colour: rest position of each fragment, projected into frame 0 where frame 0 saw it
    corners = model.vertices[model.faces[frags.face]]  # (n, 3, 3)
    rest = (frags.bary[..., None] * corners).sum(dim=1)  # (n, 3)
    uv0, z0 = model.texture_view.project(rest)
    with torch.no_grad():
        H0, W0 = model.rest_depth.shape
        ix = uv0[:, 0].floor().long().clamp(0, W0 - 1)
        iy = uv0[:, 1].floor().long().clamp(0, H0 - 1)
        inside = (uv0[:, 0] >= 0) & (uv0[:, 0] < W0) & (uv0[:, 1] >= 0) & (uv0[:, 1] < H0)
        seen = (inside & (z0 <= model.rest_depth[iy, ix] + model.seen_tol)).float()[:, None]
    normals = q_rotate(q_r[frags.batch], model.normals[frags.face])  # (n, 3)
    shade = _shade(normals, model.forward)[:, None]
    colours = seen * sample_image(model.texture, uv0) + (1.0 - seen) * shade * albedo[1]
    B, H, W = len(mags), scene.view.height, scene.view.width
    part_layer = composite_layer(frags, colours, B, H, W, cfg.tau_layer * diag)
    base_layer = Layer(scene.base_alpha, scene.base_depth, scene.base_seen + scene.base_unseen * albedo[0])
    return blend(base_layer, part_layer, scene.background, cfg.tau_blend * diag)


def _frame_losses(cfg: Config, scene: _Scene, alpha, rgb, frame_idx, weights):
    """(B,) loss per rendered frame: silhouette L1 + colour Charbonnier, means over pixels."""
    import torch

    sil = (alpha - scene.obs_alpha[frame_idx]).abs().mean(dim=(1, 2))
    diff = rgb - scene.obs_rgb[frame_idx]
    eps = cfg.charbonnier_eps
    col = (torch.sqrt(diff * diff + eps * eps) - eps).mean(dim=(1, 2, 3))
    return weights[0] * sil + weights[1] * col


def _candidates(box, cfg: Config) -> list[dict]:
    """Discrete joint hypotheses from the part's box (ATOP): 54 revolute lines, 6 slide directions.

    Revolute: for each box axis and sign, the lines parallel to it through the centre, the 4
    centres of the faces along it and its 4 edges (a 3 x 3 grid across the box). Prismatic: each
    box axis and sign. ``scale`` is the magnitude range scored: ``revolute_cap`` radians, or the
    part's depth along the slide (at least half its diagonal) in metres.
    """
    out = []
    for i in range(3):
        j, k = [a for a in range(3) if a != i]
        for sign in (1.0, -1.0):
            axis = sign * box.axes[i]
            for a in (-1, 0, 1):
                for b in (-1, 0, 1):
                    origin = box.centre + 0.5 * (a * box.extents[j] * box.axes[j] + b * box.extents[k] * box.axes[k])
                    out.append({"joint_type": "revolute", "axis": axis, "origin": origin, "scale": cfg.revolute_cap})
            reach = cfg.prismatic_cap * max(float(box.extents[i]), 0.5 * box.diagonal)
            out.append({"joint_type": "prismatic", "axis": axis, "origin": box.centre.copy(), "scale": reach})
    return out


def _score_candidate(cfg: Config, scene: _Scene, model: _Part, c: dict, sub, albedo, diag: float, weights) -> dict:
    """Loss of a candidate with the best magnitude per frame from a grid over ``[0, scale]``."""
    import torch

    grid = np.linspace(0.0, c["scale"], cfg.search_steps)
    G = len(grid)
    mags = torch.as_tensor(np.tile(grid, len(sub)), dtype=torch.float32)  # (S * G,)
    frame_idx = torch.as_tensor(np.repeat(sub, G))
    axis = torch.as_tensor(c["axis"], dtype=torch.float32)
    pivot = torch.as_tensor(c["origin"], dtype=torch.float32)
    with torch.no_grad():
        alpha, rgb = _render(cfg, scene, model, c["joint_type"], axis, pivot, mags, albedo, diag)
        losses = _frame_losses(cfg, scene, alpha, rgb, frame_idx, weights).reshape(len(sub), G).numpy()
    best = losses.argmin(axis=1)
    return {"score": float(losses.min(axis=1).mean()), "grid_magnitudes": grid[best].tolist()}


def _refine(cfg: Config, scene: _Scene, model: _Part, c: dict, sub, T: int, diag: float, weights, iters: int) -> dict:
    """Adam on axis, pivot, magnitude increments and albedos, starting from candidate ``c``."""
    import torch

    jt, scale = c["joint_type"], float(c["scale"])
    if "magnitudes" in c:
        m0 = np.asarray(c["magnitudes"], dtype=np.float64)
    else:  # grid magnitudes of the scored frames, interpolated over the clip and made monotone
        m0 = np.maximum.accumulate(np.interp(np.arange(T), np.r_[0, sub], np.r_[0.0, c["grid_magnitudes"]]))
    inc = np.maximum(np.diff(m0) / scale, 1e-3)
    axis_raw = torch.tensor(np.asarray(c["axis"]), dtype=torch.float32, requires_grad=True)
    pivot = torch.tensor(np.asarray(c["origin"]), dtype=torch.float32, requires_grad=True)
    delta = torch.tensor(inc + np.log(-np.expm1(-inc)), dtype=torch.float32, requires_grad=True)  # softplus^-1
    albedo_logit = torch.tensor(np.asarray(c.get("albedo_logit", np.zeros((2, 3)))), dtype=torch.float32, requires_grad=True)
    groups = [
        {"params": [axis_raw], "lr": cfg.lr_axis},
        {"params": [delta], "lr": cfg.lr_magnitude},
        {"params": [albedo_logit], "lr": cfg.lr_albedo},
    ]
    if jt == "revolute":
        groups.append({"params": [pivot], "lr": cfg.lr_pivot * diag})
    opt = torch.optim.Adam(groups)
    frame_idx = torch.arange(T)

    def loss_fn():
        axis = axis_raw / axis_raw.norm()
        mags = torch.cat([delta.new_zeros(1), torch.cumsum(torch.nn.functional.softplus(delta), 0)]) * scale
        alpha, rgb = _render(cfg, scene, model, jt, axis, pivot, mags, torch.sigmoid(albedo_logit), diag)
        return _frame_losses(cfg, scene, alpha, rgb, frame_idx, weights).mean(), axis, mags

    curve = []
    for _ in range(iters):
        opt.zero_grad()
        loss, _, _ = loss_fn()
        loss.backward()
        opt.step()
        with torch.no_grad():
            axis_raw /= axis_raw.norm()
        curve.append(float(loss))
    with torch.no_grad():
        loss, axis, mags = loss_fn()
    return {
        "joint_type": jt,
        "scale": scale,
        "axis": axis.numpy().astype(np.float64).tolist(),
        "origin": pivot.detach().numpy().astype(np.float64).tolist(),
        "magnitudes": mags.numpy().astype(np.float64).tolist(),
        "albedo_logit": albedo_logit.detach().numpy().tolist(),
        "albedo": torch.sigmoid(albedo_logit).detach().numpy().tolist(),
        "loss": float(loss),
        "curve": curve,
    }


def _static_loss(cfg: Config, scene: _Scene, model: _Part, T: int, weights, diag: float) -> float:
    """Loss of the clip explained by no motion at all (the part stays at rest)."""
    import torch

    with torch.no_grad():
        mags = torch.zeros(T)
        alpha, rgb = _render(
            cfg, scene, model, "prismatic", torch.tensor([1.0, 0, 0]), torch.zeros(3), mags, torch.full((2, 3), 0.5), diag
        )
        return float(_frame_losses(cfg, scene, alpha, rgb, torch.arange(T), weights).mean())


def _origin_on_axis(joint_type: str, axis: np.ndarray, pivot: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The reported origin: the axis point nearest the part's centre (revolute), the centre (prismatic)."""
    if joint_type != "revolute":
        return np.asarray(centre, dtype=np.float64)
    u = axis / np.linalg.norm(axis)
    return pivot + np.dot(centre - pivot, u) * u


def _extent_along(points: np.ndarray, axis: np.ndarray) -> float:
    """Length of the points' projection on ``axis``, metres."""
    proj = np.asarray(points) @ (axis / np.linalg.norm(axis))
    return float(proj.max() - proj.min())


def _surface_points(mesh, n: int, seed: int) -> np.ndarray:
    """(n + V, 3) points: ``n`` area-uniform surface samples plus the mesh vertices."""
    import trimesh

    samples, _ = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return np.concatenate([samples, mesh.vertices])
