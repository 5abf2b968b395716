"""Joint fitting with a unified dual-quaternion motion model and soft depth blending (DreamArt §3.3).

For each part and its clip (frame 0 at rest, same camera as the photo):

1. Observe: the object's silhouette in every frame (difference from the plain background
   colour) and its colours. A clip in which the part's pixels hardly change is ``fixed``.
2. Model: a screw motion about the line (unit axis ``u``, pivot ``p``) written as a unit dual
   quaternion ``q_t = q_r + eps q_d``; revolute joints rotate by ``m_t`` radians about the line,
   prismatic joints translate by ``m_t`` metres along ``u``. Magnitudes are monotone from rest:
   ``m_0 = 0``, ``m_t = unit * cumsum(softplus(delta))``.
3. Render: the base (static, exact, rendered once) and the moved part (soft rasteriser, per
   frame) are separate layers composited by soft depth blending (see ``soft_render``). Surfaces
   take frame 0's colours where frame 0 saw them (the part's through the *rest* position of each
   surface point); unseen surfaces get a shaded albedo (the base's estimated from what the motion
   reveals, the part's learned). The part is drawn by the soft torch rasteriser, or on a CUDA
   GPU by nvdiffrast (``renderer``; see ``cuda_render``), into the same kind of layer.
4. Initialise (ATOP-style): discrete candidates from the part's bounding box (axes = its 3
   principal directions x both signs; revolute lines through the centre, face centres and edge
   midlines; a thin panel only swings about an edge), each scored at low resolution with the
   best monotone magnitude path over a grid, the best re-scored finer. Candidates whose motion
   would drive the part through the base are passed over.
5. Refine: at coarse resolution the magnitudes (and albedo) of the best candidates per type;
   choose the type (prismatic, having no pivot, wins unless revolute's loss is lower by a
   margin); then Adam on (u, p, delta, albedo) at full resolution, with a prior keeping the
   axis near its box axis (a single view hardly sees motion along the viewing ray).
6. Limits: observed range of the fitted magnitudes, extended in the opening direction by the
   free range swept until the part would enter the base.
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
from stages._shared.contact import clear_range
from stages._shared.io import read_mesh, read_rgb, write_json
from stages.joint_fit import tracks

log = logging.getLogger(__name__)

JOINT_TYPES = ("revolute", "prismatic")
#: Per joint type fit entries kept in fit.json.
FIT_KEYS = ("axis", "origin", "magnitudes", "loss", "coarse_loss", "curve", "refined_losses", "albedo")


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["dual_quaternion"] = "dual_quaternion"
    renderer: Literal["auto", "torch", "nvdiffrast"] = Field(
        "auto",
        description="differentiable renderer: 'torch' (soft rasteriser, CPU), 'nvdiffrast' (CUDA only; pip install "
        "'image-to-urdf[cuda]'), 'auto' = nvdiffrast where torch sees CUDA and nvdiffrast imports, else torch",
    )
    fit_size: int = Field(256, ge=32, description="long side of the images for the final refinement, pixels")
    coarse_size: int = Field(
        128, ge=16, description="long side of the images for the coarse refinement, pixels"
    )
    search_size: int = Field(
        48, ge=16, description="long side of the images for the first scoring of all candidates, pixels"
    )
    rescore_size: int = Field(
        96, ge=16, description="long side of the images for re-scoring the best candidates, pixels"
    )
    texture_size: int = Field(
        512, ge=32, description="long side of frame 0 when used as the colour source, pixels"
    )
    search_frames: int = Field(
        6, ge=2, description="frames of the clip used to score candidates (evenly spread)"
    )
    search_steps: int = Field(10, ge=3, description="magnitudes per frame tried in the first scoring")
    rescore_keep: int = Field(12, ge=1, description="best candidates of the first scoring that are re-scored")
    rescore_steps: int = Field(19, ge=3, description="magnitudes per frame tried when re-scoring")
    keep_revolute: int = Field(2, ge=1, description="best revolute candidates refined at coarse_size")
    keep_prismatic: int = Field(1, ge=1, description="best prismatic candidates refined at coarse_size")
    coarse_frames: int = Field(
        8, ge=1, description="frames of the clip (evenly spread) in the coarse refinement's loss"
    )
    coarse_iters: int = Field(
        20, ge=0, description="Adam iterations at coarse_size (magnitudes and albedo; the line stays put)"
    )
    fine_iters: int = Field(
        15, ge=0, description="Adam iterations at fit_size for the chosen joint type, all frames"
    )
    lr_axis: float = Field(0.01, gt=0, description="Adam step of the raw axis vector (~radians per step)")
    lr_pivot: float = Field(
        0.004, gt=0, description="Adam step of the pivot, fraction of the object's diagonal"
    )
    lr_magnitude: float = Field(0.05, gt=0, description="Adam step of the raw magnitude increments")
    lr_albedo: float = Field(0.05, gt=0, description="Adam step of the unseen-surface albedos (logits)")
    axis_prior: float = Field(
        1.0,
        ge=0,
        description="weight of 1 - cos^2 between the axis and its candidate's box axis (box-like parts move along "
        "their box axes)",
    )
    sigma_px: float = Field(0.6, gt=0, description="edge softness of the soft rasteriser (torch renderer), pixels")
    tau_layer: float = Field(
        0.003, gt=0, description="depth softness within a layer (torch renderer), fraction of the object's diagonal"
    )
    tau_blend: float = Field(
        0.01, gt=0, description="depth softness between base and part, fraction of the object's diagonal"
    )
    silhouette_weight: float = Field(1.0, ge=0, description="weight of the silhouette L1 loss")
    colour_weight: float = Field(1.0, ge=0, description="weight of the colour loss")
    luminance_weight: float = Field(
        0.25, ge=0, description="weight of brightness relative to chromaticity in the colour loss"
    )
    unseen_weight: float = Field(
        0.3, ge=0, le=1, description="colour-loss weight of surfaces frame 0 did not see (their colour is guessed)"
    )
    charbonnier_eps: float = Field(0.01, gt=0, description="Charbonnier epsilon, colour units in [0, 1]")
    background_threshold: float = Field(
        0.08, gt=0, lt=1, description="colour distance from the background that counts as object, [0, 1]"
    )
    plain_background: float = Field(
        0.9, gt=0, le=1, description="share of frame 0's border near its median colour for a plain background"
    )
    change_threshold: float = Field(
        0.1, gt=0, lt=1, description="colour change of a pixel that counts as motion, [0, 1]"
    )
    min_motion: float = Field(
        0.05, ge=0, description="changed pixels / part's pixels at rest below which the part is fixed"
    )
    revolute_margin: float = Field(
        0.1, ge=0, description="revolute is chosen only if its loss is this fraction below prismatic's"
    )
    min_explained: float = Field(
        0.2, ge=0, le=1, description="when neither joint type explains this share of the clip's change (loss "
        "relative to no motion), the clip cannot tell the type and part_masks' proposal decides",
    )
    track_verdict: bool = Field(
        True,
        description="a user's clip: point tracks of what moves decide the joint type where they tell (a slide "
        "moves its points along one direction, a turn about one line); the rendered fit then keeps that type",
    )
    render_overrules_tracks: float = Field(
        0.5,
        ge=0,
        description="the rendered fit keeps its type against the tracks' verdict when the verdict's loss exceeds "
        "the other type's by this share of the larger (the whole part's appearance clearly says otherwise)",
    )
    track_snap_deg: float = Field(
        15.0, ge=0, description="the tracks' axis is snapped to the part box's nearest axis within this angle"
    )
    revolute_cap: float = Field(math.pi, gt=0, description="largest revolute range considered, radians")
    prismatic_cap: float = Field(
        1.0, gt=0, description="largest prismatic range, fraction of the part's depth along the axis"
    )
    collision_points: int = Field(
        400, ge=10, description="probe points sampled on the part for collision sweeps"
    )
    max_penetration_m: float = Field(
        0.0005, gt=0, description="deepest part/base interpenetration allowed within the limits, metres "
        "(half of validation's tolerance, so sampling differences do not flip the verdict)",
    )
    collision_tolerance: float = Field(
        0.005, ge=0, description="penetration ignored by the sweep, fraction of the object's diagonal"
    )
    seen_tolerance: float = Field(
        0.005, gt=0, description="depth slack for a surface point to count as seen in frame 0, fraction of diagonal"
    )
    pivot_reach: float = Field(
        0.03, ge=0, description="how far a hinge may move to let the seen motion clear the base, fraction of the diagonal"
    )
    max_render_faces: int = Field(
        300, ge=4, description="parts with more faces are drawn as their convex hull"
    )
    seed: int = Field(0, description="seed for surface sampling")
    threads: int = Field(
        1, ge=1, description="torch CPU threads while fitting (1 is fastest on a shared machine)"
    )

    @property
    def requires_cuda(self) -> bool:
        """True for ``renderer="nvdiffrast"``: the stage then runs only where CUDA is (flows/devices.py)."""
        return self.renderer == "nvdiffrast"


def run(cfg: Config, recon, amodal, video, out_dir: Path, masks=None):
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
    masks : PartMasksResult, optional
      Part k's proposed joint type decides where its clip cannot (see ``min_explained``).

    Returns
    -------
    JointFitResult
    """
    import torch

    from stages.joint_fit import JointFitResult, cuda_render

    # 1. check inputs
    renderer = cuda_render.choose_renderer(cfg.renderer)  # before any work: nvdiffrast may be missing
    log.info("joint_fit: renderer %s (setting %r)", renderer, cfg.renderer)
    if len(video.clips) != len(amodal.part_meshes):
        raise ValueError(
            f"`video` has {len(video.clips)} clip(s) but `amodal` has {len(amodal.part_meshes)} part mesh(es); "
            "clip k must belong to part k: run articulation_video on the same amodal result"
        )
    camera = recon.camera
    base = read_mesh(amodal.base_mesh)
    parts = [read_mesh(p) for p in amodal.part_meshes]
    diag = float(np.linalg.norm(np.ptp(np.concatenate([base.vertices] + [p.vertices for p in parts]), axis=0)))
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:  # 2. fit each part to its clip
        proposed = [p.joint_type for p in masks.parts] if masks is not None else [None] * len(parts)
        estimates, reports = _fit_all(cfg, camera, base, parts, video, diag, proposed)
    finally:
        torch.set_num_threads(threads)

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


def _fit_all(cfg: Config, camera: Camera, base, parts, video, diag: float, proposed: list):
    """Fit each part to its clip; returns the estimates and the fit.json report per part."""
    from stages.joint_fit import JointEstimate

    estimates, reports = [], []
    for k, (clip, part, proposed_type) in enumerate(zip(video.clips, parts, proposed)):  # one fit per part
        static = kinematics.static_scene(base, parts, k)
        frames = [read_rgb(f) for f in clip.frames]
        for path, f in zip(clip.frames, frames):
            if f.shape[:2] != (camera.height, camera.width):
                raise ValueError(
                    f"clip frame {path} is {f.shape[1]}x{f.shape[0]}, the camera {camera.width}x{camera.height}; "
                    "clips must be at the photo's size (articulation_video resizes them)"
                )
        if len(frames) < 2:
            raise ValueError(
                f"clip of part {clip.part!r} has {len(frames)} frame(s); a clip needs rest + >= 1 moved frame"
            )
        started = time.perf_counter()
        fit = fit_joint(cfg, camera, static, part, frames, diag, proposed_type, user_clip=clip.source == "motion")
        fit["seconds"] = time.perf_counter() - started
        fit["part"] = clip.part
        fit["source"] = clip.source
        if not fit["plain_background"]:
            _warn_background(clip)
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
    return estimates, reports


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
    """Everything the loss needs at one resolution (float32 tensors; pixels flattened, HW = H * W).

    The base layer is static, so the loss of the base-only composite is computed once per pixel;
    a render then only changes the loss at the pixels the part touches.
    """

    view: object  # soft_render.View of the cropped image
    base: object  # soft_render.Layer, alpha/depth (HW,), rgb (HW, 4): colour + share seen in frame 0
    obs_alpha: object  # (T, HW) observed silhouette coverage
    obs_rgb: object  # (T, HW, 3) observed colours
    base_loss: object  # (T, HW) per-pixel loss of the base-only composite
    base_loss_sum: object  # (T,)
    background: object  # (4,) background colour and "seen" = 1
    weights: tuple[float, float]  # silhouette, colour
    sigma: float


@dataclass
class _Part:
    """The moving part's mesh and its colour source (frame 0 at texture resolution)."""

    vertices: object  # (V, 3) rest positions
    faces: object  # (F, 3) int64
    corners: object  # (F, 3, 3) rest positions of each face's vertices
    normals: object  # (F, 3) face normals at rest
    texture: object  # (3, Ht, Wt) frame 0
    rest_depth: object  # (Ht, Wt) depth of the visible surface at rest (base + part)
    texture_view: object  # soft_render.View at texture resolution
    forward: object  # (3,) camera viewing direction, base frame
    seen_tol: float
    neighbours: object  # (F, 3) face across each edge, or None when the mesh is not closed
    glctx: object  # nvdiffrast RasterizeCudaContext (CUDA renderer), None for the soft torch rasteriser


def _warn_background(clip) -> None:
    """Silhouettes need a plain background: say so of what the user gave (their clip, or the photo)."""
    if clip.source == "motion":
        log.warning(
            "joint_fit %s: the clip's first frame has no plain background around the object, so silhouettes "
            "are not observed and the joint is fitted on colours only (film the part in front of a plain "
            "backdrop for a better fit)", clip.part,
        )
    else:
        log.warning(
            "joint_fit %s: the photo has no plain background around the object, so the clip generated from it "
            "shows no silhouettes and the joint is fitted on colours only (a photo on a plain backdrop, or "
            "--motion with a clip of the part moving, fits better)", clip.part,
        )


def fit_joint(
    cfg: Config,
    camera: Camera,
    base,
    part,
    frames: list[np.ndarray],
    diag: float,
    proposed_type: str | None = None,
    user_clip: bool = False,
) -> dict:
    """Fit the joint of ``part`` to ``frames``; returns the report dict with an ``estimate`` entry.

    ``base`` is everything that stays put in the clip (the base and the other parts at rest).
    ``proposed_type`` (the photo's guess, e.g. a door is revolute) decides the type when neither
    type explains ``min_explained`` of the clip (a part mesh that does not match the clip's part).
    With ``user_clip`` (a clip the user filmed, not one rendered from a hypothesis) and
    ``track_verdict``, the clip's point tracks (:mod:`stages.joint_fit.tracks`) decide the type
    wherever they tell, over both, and their line (:func:`_track_candidate`) is that type's fit,
    unless the rendered fit prefers the other type by ``render_overrules_tracks``.

    The ``estimate`` entry holds the :class:`~stages.joint_fit.JointEstimate` fields except
    ``part``; the rest of the report (candidates, loss curves, settings) goes to fit.json.
    """
    import torch

    from stages.joint_fit import cuda_render

    clock = _Clock()
    box = kinematics.part_box(part.vertices)
    tex_cam = camera.scaled(min(1.0, cfg.texture_size / max(camera.width, camera.height)))
    frames_tex = [_resize(f, tex_cam) for f in frames]

    # 1. observe: background, silhouettes, motion
    background, plain = _background(frames_tex[0], cfg.background_threshold, cfg.plain_background)
    rest = _rest_render(tex_cam, base, part)
    motion = _motion(frames_tex, rest["part_area"], cfg.change_threshold)
    report = {
        "background_rgb": (background * 255).round().tolist(),
        "plain_background": bool(plain),
        "motion": motion,
        "part_box": {"centre": box.centre, "axes": box.axes, "extents": box.extents},
    }
    candidates = _candidates(box, cfg)
    seen = None
    if user_clip and cfg.track_verdict:  # the clip's own evidence, before any render
        lines = [(c["joint_type"], c["axis"], c["origin"]) for c in candidates]
        seen = report["tracks"] = tracks.motion_from_tracks(frames_tex, tex_cam, rest["raster"].depth, lines)
        log.info(
            "joint_fit: point tracks of the clip: %d moving of %d, verdict %s (residual ratio %s, turn %s deg)",
            seen["moving"], seen["points"], seen["verdict"], seen.get("residual_ratio"), seen.get("turn_deg"),
        )  # fmt: skip
    verdict = seen["verdict"] if seen else None
    if motion["score"] < cfg.min_motion and verdict is None:
        report["estimate"] = _fixed_estimate(box, len(frames), motion["score"], cfg.min_motion)
        return report

    sil_w = cfg.silhouette_weight if plain else 0.0
    weights = (sil_w, cfg.colour_weight)
    renderer = report["renderer"] = cuda_render.choose_renderer(cfg.renderer)
    glctx = cuda_render.context() if renderer == "nvdiffrast" else None
    model = _part_model(cfg, part, frames_tex[0], rest, tex_cam, diag, glctx)
    roi = _region(frames_tex, rest, background, cfg, plain)
    albedo0 = _unseen_albedo(frames_tex, background, cfg)
    report["region"] = roi
    report["unseen_albedo"] = albedo0.tolist()
    silhouettes = [_silhouette(f, background, cfg.background_threshold) for f in frames]
    scenes = {
        name: _scene(
            cfg, camera.scaled(min(1.0, size / max(camera.width, camera.height))), base, part, frames, silhouettes,
            background, roi, albedo0, weights,
        )  # fmt: skip
        for name, size in (
            ("search", cfg.search_size),
            ("rescore", cfg.rescore_size),
            ("coarse", cfg.coarse_size),
            ("fine", cfg.fit_size),
        )
    }
    albedo0 = torch.as_tensor(albedo0, dtype=torch.float32)
    report["timings_s"] = timings = {"setup": clock.lap()}
    T = len(frames)

    # 2. score the discrete candidates (ATOP-style) with a per-frame magnitude grid
    sub = np.unique(np.linspace(1, T - 1, min(cfg.search_frames, T - 1)).round().astype(int))
    track_line = _track_candidate(cfg, seen, box, part) if verdict is not None else None
    for c in candidates:  # up to 60 candidates, coarse grid, small images
        c.update(_score_candidate(cfg, scenes["search"], model, c, sub, albedo0, diag, cfg.search_steps))
        c["albedo_logit"] = torch.logit(albedo0).numpy()
    # the best and their siblings, then further down the ranking until half of the re-scored
    # can make their motion without entering the base: finer grid, larger images
    probes = kinematics.probe_points(part, cfg.collision_points, cfg.collision_tolerance * diag, cfg.seed)
    ranking = sorted(candidates, key=lambda c: c["score"])
    rescored = _with_siblings(ranking[: cfg.rescore_keep], candidates, box)
    need = cfg.rescore_keep // 2 - len(_plausible(base, probes, rescored, len(rescored), fill=False))
    if need > 0:
        rest = [c for c in ranking if not any(c is d for d in rescored)]
        rescored += _plausible(base, probes, rest, need, fill=False)
    for c in rescored:
        c["first_score"] = c["score"]
        c.update(_score_candidate(cfg, scenes["rescore"], model, c, sub, albedo0, diag, cfg.rescore_steps))
    candidates.sort(key=lambda c: (c.get("first_score") is None, c["score"]))  # re-scored first
    timings["search"] = clock.lap()

    # 3. refine the best candidates of each type at coarse resolution on a subset of frames
    coarse_sub = np.unique(np.linspace(1, T - 1, min(cfg.coarse_frames, T - 1)).round().astype(int))
    fits = {}
    for jt in JOINT_TYPES:
        keep = cfg.keep_revolute if jt == "revolute" else cfg.keep_prismatic
        ranked = _plausible(base, probes, [c for c in candidates if c["joint_type"] == jt], keep)  # in rank order
        refined = [
            _refine(cfg, scenes["coarse"], model, c, sub, coarse_sub, diag, cfg.coarse_iters, move_line=False)
            for c in ranked
        ]
        fits[jt] = min(refined, key=lambda r: r["loss"])
        fits[jt]["refined_losses"] = [r["loss"] for r in refined]
        timings[f"coarse_{jt}"] = clock.lap()
    if track_line is not None:  # the line the tracks saw, refined as the others
        track_line.update(_score_candidate(cfg, scenes["rescore"], model, track_line, sub, albedo0, diag, cfg.rescore_steps))
        track_line["albedo_logit"] = torch.logit(albedo0).numpy()
        track_fit = _refine(cfg, scenes["coarse"], model, track_line, sub, coarse_sub, diag, cfg.coarse_iters, move_line=False)
    static_loss = _static_loss(cfg, scenes["coarse"], model, coarse_sub, diag, albedo0)

    # 4. choose the type (the pivot-free prismatic model unless revolute is clearly better; the
    #    photo's proposal when the clip explains neither), then refine it at full resolution
    losses = {jt: fits[jt]["loss"] for jt in JOINT_TYPES}
    best_explained = max(1.0 - v / max(static_loss, 1e-12) for v in losses.values())
    overruled = False
    if verdict is not None:  # the render overrules the tracks only where it clearly prefers the other type
        other = "prismatic" if verdict == "revolute" else "revolute"
        margin = (losses[verdict] - losses[other]) / max(losses[verdict], losses[other], 1e-12)
        report["tracks_render_margin"] = float(margin)
        overruled = margin >= cfg.render_overrules_tracks
    if verdict is not None and not overruled:
        chosen, report["type_from"] = verdict, "tracks"
        fits[verdict] = {**track_fit, "refined_losses": fits[verdict]["refined_losses"] + [track_fit["loss"]]}
        losses[verdict] = track_fit["loss"]
    elif proposed_type in JOINT_TYPES and best_explained < cfg.min_explained:
        chosen, report["type_from"] = proposed_type, "proposal"
        log.warning(
            "joint_fit: the clip explains at most %.0f %% of its change with either joint type (the part mesh "
            "may not match the moving part); the proposed %s type is kept",
            100 * best_explained, proposed_type,
        )  # fmt: skip
    else:
        chosen = "revolute" if losses["revolute"] < (1.0 - cfg.revolute_margin) * losses["prismatic"] else "prismatic"
        report["type_from"] = "clip"
    other = "prismatic" if chosen == "revolute" else "revolute"
    fit = _refine(cfg, scenes["fine"], model, fits[chosen], sub, np.arange(1, T), diag, cfg.fine_iters)
    fit["curve"] = fits[chosen]["curve"] + fit["curve"]
    fits[chosen] = {**fit, "refined_losses": fits[chosen]["refined_losses"], "coarse_loss": losses[chosen]}
    timings["fine"] = clock.lap()
    report["candidates"] = [
        {k: c.get(k) for k in ("joint_type", "axis", "origin", "first_score", "score", "grid_magnitudes", "free")}
        for c in candidates
    ]
    report["fits"] = {
        jt: {k: fits[jt].get(k) for k in FIT_KEYS} for jt in JOINT_TYPES
    }
    report["static_loss"] = static_loss

    # 5. a hinge must let the part make the motion it was seen making: when the fitted line
    #    drives the part into the base, move it to the nearest line (a few mm off) that does not
    axis = np.asarray(fit["axis"], dtype=np.float64)
    origin = _origin_on_axis(chosen, axis, np.asarray(fit["origin"]), box.centre)
    mags = np.asarray(fit["magnitudes"])
    if chosen == "revolute":  # probes as deep as the limits below tolerate
        tight = kinematics.probe_points(part, cfg.collision_points, cfg.max_penetration_m, cfg.seed)
        origin, report["pivot_shift_m"] = _clear_pivot(base, tight, axis, origin, float(mags.max()), cfg.pivot_reach * diag)

    # 6. limits: observed range, free range swept against the base
    cap = cfg.revolute_cap if chosen == "revolute" else cfg.prismatic_cap * _extent_along(part.vertices, axis)
    free_hi = clear_range(base, part, chosen, axis, origin, cap, cfg.max_penetration_m, seed=cfg.seed)
    free_lo = 0.0  # the closing direction is not extended: at rest a part sits against its stop
    obs_lo, obs_hi = float(mags.min()), float(mags.max())
    if obs_hi > free_hi + 1e-6:
        log.warning(
            "joint_fit: the clip opens the part to %.3f but the fitted part enters the base beyond %.3f; "
            "the upper limit stops there",
            obs_hi,
            free_hi,
        )
    timings["limits"] = clock.lap()
    explained = float(np.clip(1.0 - losses[chosen] / max(static_loss, 1e-12), 0.0, 1.0))
    separation = float(np.clip((losses[other] - losses[chosen]) / max(losses[other], 1e-12) / 0.5, 0.0, 1.0))
    report["estimate"] = {
        "joint_type": chosen,
        "axis_base": tuple(float(v) for v in axis),
        "origin_base": tuple(float(v) for v in origin),
        "lower": min(obs_lo, free_lo),
        "upper": free_hi,
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


class _Clock:
    """Seconds between successive ``lap`` calls."""

    def __init__(self):
        self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        return round(seconds, 3)


def _track_candidate(cfg: Config, seen: dict, box, part) -> dict:
    """The tracks' line as a candidate: their axis (snapped to the part box's nearest axis within
    ``track_snap_deg``: box-like parts move along their box axes) through their pivot."""
    axis = np.asarray(seen["axis_base"], dtype=np.float64)
    cos = np.abs(np.asarray(box.axes) @ axis)
    i = int(np.argmax(cos))
    if np.degrees(np.arccos(min(1.0, cos[i]))) <= cfg.track_snap_deg:
        axis = np.sign(np.dot(box.axes[i], axis)) * np.asarray(box.axes[i], dtype=np.float64)
    if seen["verdict"] == "revolute":
        origin = np.asarray(seen["origin_base"], dtype=np.float64)
        scale = cfg.revolute_cap
    else:
        origin = np.asarray(box.centre, dtype=np.float64).copy()
        scale = cfg.prismatic_cap * max(_extent_along(part.vertices, axis), 0.5 * box.diagonal)
    return {"joint_type": seen["verdict"], "axis": axis, "origin": origin, "scale": scale, "prior_axis": axis}


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
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image, (camera.width, camera.height), interpolation=interpolation)


def _background(frame: np.ndarray, threshold: float, plain_share: float) -> tuple[np.ndarray, bool]:
    """Median colour of the frame's border, [0, 1], and whether the border is plain (at least
    ``plain_share`` of it within ``threshold`` of that colour)."""
    border = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]]).astype(np.float64) / 255.0
    colour = np.median(border, axis=0)
    near = np.abs(border - colour).max(axis=1) < threshold
    return colour, bool(near.mean() >= plain_share)


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


def _part_model(cfg: Config, part, frame0: np.ndarray, rest: dict, tex_cam: Camera, diag: float, glctx=None) -> _Part:
    """The part as the renderer draws it, with frame 0 (at ``tex_cam``) as colour source; ``glctx``
    is an nvdiffrast context for the CUDA renderer, None for the soft torch rasteriser.

    A part with more than ``max_render_faces`` faces is drawn as its convex hull: handles and
    knobs cost thousands of sub-pixel faces and barely change the silhouette, and colours still
    come from the photo through each hull point's rest position.
    """
    import torch

    from stages.joint_fit.soft_render import View, edge_neighbours

    f32 = lambda x: torch.as_tensor(np.array(x), dtype=torch.float32)  # noqa: E731
    depth = np.where(rest["raster"].mask, rest["raster"].depth, np.inf)
    drawn = part
    if len(part.faces) > cfg.max_render_faces:
        drawn = part.convex_hull
        log.info("joint_fit: drawing the part's convex hull (%d faces) for its %d", len(drawn.faces), len(part.faces))
    closed = bool(drawn.is_watertight and drawn.is_winding_consistent and drawn.volume > 0)
    if not closed:
        log.info("joint_fit: part mesh is not closed with outward winding; rendering its back faces too")
    return _Part(
        vertices=f32(drawn.vertices),
        faces=torch.as_tensor(np.asarray(drawn.faces), dtype=torch.int64),
        corners=f32(drawn.vertices[drawn.faces]),
        normals=f32(drawn.face_normals),
        texture=f32(frame0 / 255.0).permute(2, 0, 1).contiguous(),  # (H, W, 3) -> (3, H, W)
        rest_depth=f32(depth),
        texture_view=View.from_camera(tex_cam),
        forward=f32(tex_cam.pose[:3, 2]),
        seen_tol=cfg.seen_tolerance * diag,
        neighbours=torch.as_tensor(edge_neighbours(drawn.faces)) if closed else None,
        glctx=glctx,
    )


def _region(frames: list[np.ndarray], rest: dict, background: np.ndarray, cfg: Config, plain: bool) -> list[float]:
    """Image region the fit looks at: the object at rest, every changed pixel and (with a plain
    background) every frame's silhouette, grown by ``REGION_MARGIN``; fractions (x0, y0, x1, y1).

    Outside it the clip shows background that no hypothesis about the part changes.
    """
    f0 = frames[0].astype(np.int16)
    seen = rest["raster"].mask.copy()
    for f in frames[1:]:
        seen |= np.abs(f.astype(np.int16) - f0).max(axis=2) > cfg.change_threshold * 255
        if plain:
            seen |= _silhouette(f, background, cfg.background_threshold) > 0
    H, W = seen.shape
    ys, xs = np.nonzero(seen)
    if len(xs) == 0:
        raise ValueError(
            "the object does not project into the clip's frames and no pixel changes; check that "
            "`recon.camera` is the camera of the photo the clip was filmed or rendered with"
        )
    box = np.array([xs.min() / W, ys.min() / H, (xs.max() + 1) / W, (ys.max() + 1) / H])
    return (np.clip(box + np.array([-1, -1, 1, 1]) * REGION_MARGIN, 0.0, 1.0)).tolist()


#: Margin added around the fitted image region, fraction of the image size.
REGION_MARGIN = 0.04


def _crop(camera: Camera, region) -> tuple[Camera, tuple[int, int, int, int]]:
    """The camera seeing only ``region`` (fractions x0, y0, x1, y1) of its image, and its pixel box."""
    x0, x1 = int(np.floor(region[0] * camera.width)), int(np.ceil(region[2] * camera.width))
    y0, y1 = int(np.floor(region[1] * camera.height)), int(np.ceil(region[3] * camera.height))
    cropped = Camera(
        width=x1 - x0, height=y1 - y0, fx=camera.fx, fy=camera.fy, cx=camera.cx - x0, cy=camera.cy - y0,
        T_base_camera=camera.T_base_camera,
    )  # fmt: skip
    return cropped, (x0, y0, x1, y1)


def _scene(
    cfg: Config, full: Camera, base, part, frames, silhouettes, background, region, base_albedo, weights
) -> _Scene:
    """Observations and the static base layer at one resolution, cropped to ``region``.

    ``frames`` and ``silhouettes`` ((H, W) float32 each) are at the photo's size. Base surfaces
    frame 0 saw take its colours; the others ``base_albedo`` (3,) shaded.
    """
    import torch

    from stages._shared.raster import rasterize
    from stages.joint_fit.soft_render import Layer, View, blend, static_layer

    cam, (x0, y0, x1, y1) = _crop(full, region)
    obs = np.stack([_resize(f, full)[y0:y1, x0:x1] for f in frames]).astype(np.float32) / 255.0
    sil = np.stack([_resize(m, full)[y0:y1, x0:x1] for m in silhouettes])  # area-averaged: soft edges
    V = np.concatenate([base.vertices, part.vertices])
    F = np.concatenate([base.faces, part.faces + len(base.vertices)])
    forward = cam.pose[:3, 2]
    s = 2  # supersampling of the static layer
    frame0 = _resize(frames[0], full.scaled(s))[s * y0 : s * y1, s * x0 : s * x1].astype(np.float64) / 255.0

    def channels(r, sub_cam):
        # seen at rest: the base face is the visible surface of base + part at this sub-pixel
        both = rasterize(sub_cam, V, F)
        seen = ((both.face_id == r.face_id) & r.mask)[..., None]
        shade = _shade(base.face_normals[np.where(r.mask, r.face_id, 0)], forward)[..., None]
        rgb = np.where(seen, frame0[: sub_cam.height, : sub_cam.width], shade * np.asarray(base_albedo))
        return np.concatenate([rgb, seen], axis=2)  # colour + "seen in frame 0" channel

    alpha, depth, rgb = static_layer(cam, base.vertices, base.faces, channels, supersample=s)
    T, HW = len(frames), cam.width * cam.height
    base_layer = Layer(alpha=alpha.reshape(HW), depth=depth.reshape(HW), rgb=rgb.reshape(HW, 4))
    bg = torch.as_tensor(np.r_[background, 1.0], dtype=torch.float32)  # the background is known too
    obs_alpha = torch.as_tensor(sil, dtype=torch.float32).reshape(T, HW)
    obs_rgb = torch.as_tensor(obs).reshape(T, HW, 3)
    a0, rgb0 = blend(base_layer, Layer(torch.zeros(HW), torch.zeros(HW), torch.zeros(HW, 4)), bg, 1.0)
    base_loss = _pixel_loss(cfg, weights, a0[None], rgb0[None], obs_alpha, obs_rgb)  # (T, HW)
    return _Scene(
        view=View.from_camera(cam),
        base=base_layer,
        obs_alpha=obs_alpha,
        obs_rgb=obs_rgb,
        base_loss=base_loss,
        base_loss_sum=base_loss.sum(dim=1),
        background=bg,
        weights=tuple(weights),
        sigma=cfg.sigma_px,
    )


def _unseen_albedo(frames: list[np.ndarray], background: np.ndarray, cfg: Config) -> np.ndarray:
    """(3,) initial albedo of surfaces frame 0 did not see, [0, 1].

    What the motion reveals (the cavity behind a door, a drawer's sides, a door's inner face) is
    what changed between frame 0 and the last frame and is not background: its median colour,
    divided by the mean headlight shading.
    """
    last, first = frames[-1], frames[0]
    changed = np.abs(last.astype(np.int16) - first.astype(np.int16)).max(axis=2) > cfg.change_threshold * 255
    changed &= _silhouette(last, background, cfg.background_threshold) > 0
    if not changed.any():
        return np.full(3, 0.5)
    return np.clip(np.median(last[changed], axis=0) / 255.0 / MEAN_SHADE, 0.02, 0.98)


#: Mean of the headlight shading ``0.55 + 0.45 |cos|`` over a hemisphere of normals.
MEAN_SHADE = 0.775


def _shade(normals, forward):
    """Headlight shading of unseen surfaces: 0.55 + 0.45 |n . forward| (numpy or torch)."""
    dot = (normals * forward).sum(-1)
    return 0.55 + 0.45 * abs(dot)


def _render(cfg: Config, scene: _Scene, model: _Part, joint_type: str, axis, pivot, mags, albedo, diag: float):
    """The composite where the part, moved by ``mags`` (B,), touches the image.

    Returns the touched flat pixels ``b * HW + p`` (m,), and there the composite's soft
    silhouette (m,) and colour (m, 4: RGB and the share of it frame 0 saw); everywhere else
    the composite is the base alone.
    ``albedo`` (3,) colours the part's surfaces frame 0 did not see. The part layer comes from
    the soft torch rasteriser, or from nvdiffrast (``cuda_render``) when ``model.glctx`` is set;
    both are blended with the base alike.
    """
    import torch

    from stages.joint_fit import cuda_render
    from stages.joint_fit.soft_render import Layer, blend, composite_layer, rasterize, sample_image

    zero = torch.zeros_like(mags)
    angle, disp = (mags, zero) if joint_type == "revolute" else (zero, mags)
    q_r, q_d = dq_screw(axis, pivot, angle, disp)  # (B, 4) each
    q = (q_r[:, None], q_d[:, None])  # (B, 4) -> (B, 1, 4): broadcast over vertices
    verts = dq_transform(q, model.vertices[None])  # (B, V, 3)
    if model.glctx is None:
        frags = rasterize(scene.view, verts, model.faces, scene.sigma, neighbours=model.neighbours)
    else:  # point-sampled by nvdiffrast; the silhouette is made soft by its antialiasing below
        frags, raster = cuda_render.rasterize(model.glctx, scene.view, verts, model.faces)

    # colour: rest position of each fragment, projected into frame 0 where frame 0 saw it
    rest = (frags.bary[..., None] * model.corners[frags.face]).sum(dim=1)  # (n, 3, 1) * (n, 3, 3) -> (n, 3)
    uv0, z0 = model.texture_view.project(rest)
    with torch.no_grad():
        H0, W0 = model.rest_depth.shape
        ix = uv0[:, 0].floor().long().clamp(0, W0 - 1)
        iy = uv0[:, 1].floor().long().clamp(0, H0 - 1)
        seen = (z0 <= model.rest_depth[iy, ix] + model.seen_tol)[:, None]
    normals = q_rotate(q_r[:, None], model.normals[None])  # (B, F, 3) face normals per frame
    shade = _shade(normals, model.forward)[frags.batch, frags.face][:, None]
    colours = torch.cat([torch.where(seen, sample_image(model.texture, uv0), shade * albedo), seen.float()], 1)
    if model.glctx is None:
        index, part_layer = composite_layer(frags, colours, scene.view.height, scene.view.width, cfg.tau_layer * diag)
    else:
        index, part_layer = cuda_render.antialiased_layer(raster, frags, colours)
    pix = index % scene.base.alpha.numel()
    base_layer = Layer(scene.base.alpha[pix], scene.base.depth[pix], scene.base.rgb[pix])
    alpha, rgb = blend(base_layer, part_layer, scene.background, cfg.tau_blend * diag)
    return index, alpha, rgb


def _pixel_loss(cfg: Config, weights, alpha, rgb, obs_alpha, obs_rgb):
    """Per-pixel loss (any shapes): silhouette L1 + Charbonnier of the chromaticity and, weighted
    by ``luminance_weight``, of the brightness; ``rgb`` (..., 4) carries the share of the pixel's
    colour that frame 0 saw, and the rest weighs ``unseen_weight``.

    Chromaticity ``rgb / (r + g + b + CHROMA_EPS)`` hardly changes when a turning panel catches
    more or less light, while frame-0 colours stay as they were at rest: splitting the colour
    keeps shading changes from pulling the pose. Surfaces frame 0 did not see have a guessed
    colour; down-weighting them keeps that guess from pulling the pose (e.g. towards hiding them).
    """
    import torch

    colour, known = rgb[..., :3], rgb[..., 3]
    s = colour.sum(dim=-1, keepdim=True) + CHROMA_EPS
    s_obs = obs_rgb.sum(dim=-1, keepdim=True) + CHROMA_EPS
    eps = cfg.charbonnier_eps

    def rho(x):
        return torch.sqrt(x * x + eps * eps) - eps

    chroma = rho(colour / s - obs_rgb / s_obs).sum(dim=-1)
    brightness = rho((s - s_obs)[..., 0] / 3.0)
    trust = cfg.unseen_weight + (1.0 - cfg.unseen_weight) * known
    return weights[0] * (alpha - obs_alpha).abs() + weights[1] * trust * (chroma + cfg.luminance_weight * brightness)


#: Added to r + g + b before dividing, so that near-black pixels have a damped chromaticity.
CHROMA_EPS = 0.15


def _frame_losses(cfg: Config, scene: _Scene, index, alpha, rgb, frame_idx):
    """(B,) mean loss over each rendered image; render b is compared with clip frame ``frame_idx[b]``.

    The base-only loss of every pixel is known, so only the touched pixels are recomputed.
    """
    import torch

    HW = scene.base.alpha.numel()
    b, pix = index // HW, index % HW
    t = frame_idx[b]
    new = _pixel_loss(cfg, scene.weights, alpha, rgb, scene.obs_alpha[t, pix], scene.obs_rgb[t, pix])
    delta = torch.zeros(len(frame_idx), dtype=new.dtype).index_add(0, b, new - scene.base_loss[t, pix])
    return (scene.base_loss_sum[frame_idx] + delta) / HW


def _candidates(box, cfg: Config) -> list[dict]:
    """Discrete joint hypotheses from the part's box (ATOP): up to 54 revolute lines, 6 slides.

    Revolute: for each box axis and sign, the lines parallel to it through the centre, the 4
    centres of the faces along it and its 4 edges (a 3 x 3 grid across the box). A panel (its
    thinnest extent under ``PANEL_RATIO`` of the next) keeps only the lines along its long
    sides' edges (at its front, middle or back): a door, lid or flap swings about an edge, not
    about its middle or in its own plane. Prismatic: each box axis and sign. ``scale`` is the
    magnitude range scored: ``revolute_cap`` radians, or the part's depth along the slide (at
    least half its diagonal) in metres.
    """
    order = np.argsort(box.extents)
    thin = int(order[0]) if box.extents[order[0]] < PANEL_RATIO * box.extents[order[1]] else None
    out = []
    for i in range(3):
        j, k = [a for a in range(3) if a != i]
        for sign in (1.0, -1.0):
            axis = sign * box.axes[i]
            for a in (-1, 0, 1):
                for b in (-1, 0, 1):
                    if thin is not None and (i == thin or (a if k == thin else b) == 0):
                        continue  # a panel's middle line, or a spin in its own plane
                    origin = box.centre + 0.5 * (a * box.extents[j] * box.axes[j] + b * box.extents[k] * box.axes[k])
                    out.append({"joint_type": "revolute", "axis": axis, "origin": origin, "scale": cfg.revolute_cap})
                    out[-1]["prior_axis"] = axis
            reach = cfg.prismatic_cap * max(float(box.extents[i]), 0.5 * box.diagonal)
            out.append({"joint_type": "prismatic", "axis": axis, "origin": box.centre.copy(), "scale": reach})
            out[-1]["prior_axis"] = axis
    return out


#: A part whose thinnest extent is below this share of the next is a panel (door, lid, flap).
PANEL_RATIO = 0.3


def _with_siblings(best: list[dict], candidates: list[dict], box) -> list[dict]:
    """``best`` plus every candidate whose line lies within the part's thinnest extent of one of
    them (same type and axis): across a thin panel, the lines at its front, middle and back
    look alike in small images but differ in whether the panel can swing clear of the body."""
    near = box.extents.min() * 1.01
    out = list(best)
    for c in candidates:  # one distance test per candidate
        if any(c is b for b in out):
            continue
        for b in best:
            if c["joint_type"] == b["joint_type"] and np.allclose(c["axis"], b["axis"]):
                d = np.asarray(c["origin"]) - np.asarray(b["origin"])
                if np.linalg.norm(d - (d @ b["axis"]) * np.asarray(b["axis"])) <= near:
                    out.append(c)
                    break
    return out


def _score_candidate(cfg: Config, scene: _Scene, model: _Part, c: dict, sub, albedo, diag: float, steps: int) -> dict:
    """Loss of a candidate with the best magnitude per frame from a grid over ``[0, scale]``."""
    import torch

    grid = np.linspace(0.0, c["scale"], steps)
    G = len(grid)
    mags = torch.as_tensor(np.tile(grid, len(sub)), dtype=torch.float32)  # (S * G,)
    frame_idx = torch.as_tensor(np.repeat(sub, G))
    axis = torch.as_tensor(c["axis"], dtype=torch.float32)
    pivot = torch.as_tensor(c["origin"], dtype=torch.float32)
    with torch.no_grad():
        index, alpha, rgb = _render(cfg, scene, model, c["joint_type"], axis, pivot, mags, albedo, diag)
        losses = _frame_losses(cfg, scene, index, alpha, rgb, frame_idx).reshape(len(sub), G).numpy()
    path, total = _monotone_path(losses)
    return {"score": total / len(sub), "grid_magnitudes": grid[path].tolist()}


def _monotone_path(costs: np.ndarray) -> tuple[np.ndarray, float]:
    """Cheapest non-decreasing choice of one column per row (dynamic programming).

    Parameters
    ----------
    costs : (S, G) float
      Cost of grid magnitude g at scored frame s (frames in clip order).

    Returns
    -------
    path : (S,) int
      Column per row, non-decreasing (a part opens monotonically from rest).
    total : float
      Sum of the chosen costs.
    """
    S, G = costs.shape
    acc = np.empty_like(costs)
    arg = np.empty((S, G), dtype=np.int64)  # best predecessor column (<= g) of each cell
    acc[0] = costs[0]
    for s in range(1, S):  # one vectorised step per frame
        best_prev = np.minimum.accumulate(acc[s - 1])
        arg[s] = _argmin_prefix(acc[s - 1])
        acc[s] = costs[s] + best_prev
    path = np.empty(S, dtype=np.int64)
    path[-1] = int(np.argmin(acc[-1]))
    for s in range(S - 1, 0, -1):
        path[s - 1] = arg[s, path[s]]
    return path, float(acc[-1].min())


def _argmin_prefix(values: np.ndarray) -> np.ndarray:
    """(G,) int: for each g, the index of the minimum of ``values[: g + 1]`` (first on ties)."""
    running = np.minimum.accumulate(values)
    is_new = np.r_[True, values[1:] < running[:-1]]  # strict new minimum at g
    return np.maximum.accumulate(np.where(is_new, np.arange(len(values)), 0))


def _plausible(base, probes: np.ndarray, ranked: list[dict], keep: int, fill: bool = True) -> list[dict]:
    """The first ``keep`` candidates of ``ranked`` whose part can make its observed motion
    without entering the base (checked in rank order; each checked candidate gets ``free``).

    A candidate whose best grid magnitudes would drive the part through the base explains the
    pictures with an impossible motion (e.g. a door spun in its own plane through the frame).
    If fewer than ``keep`` are plausible and ``fill`` is set, the best-scored implausible ones
    fill up the list.
    """
    out = []
    for c in ranked:  # stops as soon as `keep` plausible candidates are found
        reach = float(max(c["grid_magnitudes"]))
        free = kinematics.free_range(base, probes, c["joint_type"], c["axis"], c["origin"], reach, steps=8, refine=0)
        c["free"] = free
        if free >= PLAUSIBLE_REACH * reach:
            out.append(c)
        if len(out) == keep:
            return out
    if not fill:
        return out
    implausible = [c for c in ranked if not any(c is d for d in out)]
    return out + implausible[: keep - len(out)]


#: Share of a candidate's observed reach it must be able to move freely to count as plausible
#: (not all of it: a lid closing onto its base ends in contact, and grid magnitudes overshoot).
PLAUSIBLE_REACH = 0.75


def _refine(
    cfg: Config,
    scene: _Scene,
    model: _Part,
    c: dict,
    sub,
    frames,
    diag: float,
    iters: int,
    move_line: bool = True,
) -> dict:
    """Adam on axis, pivot, magnitude increments and albedos, starting from candidate ``c``.

    ``sub`` are the frames ``c``'s grid magnitudes belong to; ``frames`` the frames in the loss
    (the magnitudes of all frames are parameters either way). With ``move_line`` False the axis
    and pivot stay put and only magnitudes and albedos move.
    """
    import torch

    T = scene.obs_alpha.shape[0]
    jt, scale = c["joint_type"], float(c["scale"])
    unit = scale / max(T - 1, 1)  # an increment of softplus(0) ~ 0.69 units per frame spans ~0.7 scale
    if "magnitudes" in c:
        m0 = np.asarray(c["magnitudes"], dtype=np.float64)
    else:  # grid magnitudes of the scored frames, interpolated over the clip and made monotone
        m0 = np.maximum.accumulate(np.interp(np.arange(T), np.r_[0, sub], np.r_[0.0, c["grid_magnitudes"]]))
    inc = np.maximum(np.diff(m0) / unit, MIN_INCREMENT)
    axis_raw = torch.tensor(np.asarray(c["axis"]), dtype=torch.float32, requires_grad=True)
    pivot = torch.tensor(np.asarray(c["origin"]), dtype=torch.float32, requires_grad=True)
    delta = torch.tensor(inc + np.log(-np.expm1(-inc)), dtype=torch.float32, requires_grad=True)  # softplus^-1
    albedo_logit = torch.tensor(np.asarray(c["albedo_logit"]), dtype=torch.float32, requires_grad=True)
    groups = [{"params": [delta], "lr": cfg.lr_magnitude}, {"params": [albedo_logit], "lr": cfg.lr_albedo}]
    if move_line:
        groups.append({"params": [axis_raw], "lr": cfg.lr_axis})
    if move_line and jt == "revolute":
        groups.append({"params": [pivot], "lr": cfg.lr_pivot * diag})
    opt = torch.optim.Adam(groups)
    frame_idx = torch.as_tensor(np.asarray(frames))
    prior_axis = torch.as_tensor(np.asarray(c["prior_axis"]), dtype=torch.float32)

    def loss_fn():
        axis = axis_raw / axis_raw.norm()
        mags = torch.cat([delta.new_zeros(1), torch.cumsum(torch.nn.functional.softplus(delta), 0)]) * unit
        rendered = _render(cfg, scene, model, jt, axis, pivot, mags[frame_idx], torch.sigmoid(albedo_logit), diag)
        data = _frame_losses(cfg, scene, *rendered, frame_idx).mean()
        return data + cfg.axis_prior * (1.0 - (axis @ prior_axis) ** 2), axis, mags

    curve = []
    for _ in range(iters):
        opt.zero_grad()
        loss, _, _ = loss_fn()
        loss.backward()
        opt.step()
        with torch.no_grad():
            axis_raw /= axis_raw.norm()
        curve.append(float(loss.detach()))
    with torch.no_grad():
        loss, axis, mags = loss_fn()
    return {
        "joint_type": jt,
        "scale": scale,
        "unit": unit,
        "prior_axis": np.asarray(c["prior_axis"]).tolist(),
        "axis": axis.numpy().astype(np.float64).tolist(),
        "origin": pivot.detach().numpy().astype(np.float64).tolist(),
        "magnitudes": mags.numpy().astype(np.float64).tolist(),
        "albedo_logit": albedo_logit.detach().numpy().tolist(),
        "albedo": torch.sigmoid(albedo_logit).detach().numpy().tolist(),
        "loss": float(loss),
        "curve": curve,
    }


#: Smallest initial magnitude increment per frame, in units of ``scale / (T - 1)``: keeps the
#: softplus of a frame the grid put at rest out of its flat tail.
MIN_INCREMENT = 0.05


def _static_loss(cfg: Config, scene: _Scene, model: _Part, frames, diag: float, albedo) -> float:
    """Loss of the clip's ``frames`` explained by no motion at all (the part stays at rest)."""
    import torch

    with torch.no_grad():
        mags = torch.zeros(len(frames))
        axis, pivot = torch.tensor([1.0, 0.0, 0.0]), torch.zeros(3)  # any joint: every magnitude is 0
        rendered = _render(cfg, scene, model, "prismatic", axis, pivot, mags, albedo, diag)
        return float(_frame_losses(cfg, scene, *rendered, torch.as_tensor(np.asarray(frames))).mean())


def _clear_pivot(base, probes: np.ndarray, axis: np.ndarray, pivot: np.ndarray, reach: float, radius: float):
    """The pivot nearest ``pivot`` (within ``radius``, across the axis) about which the part
    turns through most of ``reach`` (``CLEAR_SHARE``) without entering the base, and how far it
    moved (metres).

    Pivots are tried on a grid in the plane across the axis, nearest first; the fitted pivot
    stays when it is clear already or when no pivot within ``radius`` is. (Not all of the reach:
    a lid that closes onto its base ends in contact.)
    """
    need = CLEAR_SHARE * reach
    if reach <= 0 or kinematics.free_range(base, probes, "revolute", axis, pivot, reach, steps=8, refine=0) >= need:
        return pivot, 0.0
    e1 = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    g = np.linspace(-radius, radius, PIVOT_GRID)
    offsets = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    offsets = offsets[np.argsort(np.linalg.norm(offsets, axis=1))]
    for a, b in offsets[np.linalg.norm(offsets, axis=1) <= radius]:  # nearest first, stop at the first clear
        moved = pivot + a * e1 + b * e2
        if kinematics.free_range(base, probes, "revolute", axis, moved, reach, steps=8, refine=0) >= need:
            return moved, float(np.hypot(a, b))
    log.info("joint_fit: no pivot within %.3f m lets the part turn %.2f rad clear of the base; keeping the fitted one", radius, reach)
    return pivot, 0.0


#: Pivots tried per side of the grid across the axis by ``_clear_pivot``.
PIVOT_GRID = 9
#: Share of the seen opening a hinge must let the part make clear of the base.
CLEAR_SHARE = 0.85


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
