"""Reconstruct backend "cuboid": fit a camera and an upright box to the mask, then carve it.

Box-like articulated objects (cabinets, drawer units, microwaves, ovens, safes, boxes) stand on
the ground and are photographed by a level camera (roll 0). So the scene, up to scale, is eight
numbers: the box's depth and width relative to its height, the camera's heading and tilt (for a
centred box: its azimuth and elevation seen from the box centre), its field of view, its distance
(through the box's apparent size) and where the box centre falls in the image. They are found by
maximising the overlap of the box's projected outline with the foreground mask (coarse grid, then
Nelder-Mead), plus terms for what the outline cannot tell:

- vanishing directions: the photo's straight line segments (LSD) mostly run along the box's
  three edge directions, so they should point at the three vanishing points the hypothesis
  predicts. This is what fixes the field of view (and hence the distance): the outline of an
  object with feet, handles and inset doors is matched about as well by a wrong focal length.
  The camera's rotation is parametrised by its heading and tilt (not by the box's position in
  the image), so this term depends on three of the eight numbers only.
- inner edges: the edges between the box's visible faces (front/side, front/top, side/top)
  should lie on image edges. The outline alone leaves the sign of the azimuth and the split
  between depth and width nearly free when a side face is seen almost edge-on.
- weak priors on the field of view, the elevation and the depth/width ratio, which only decide
  when the photo does not (a front view from near the top's height shows no depth at all).

The front (+x) is the side face turned most towards the camera (|azimuth| <= 45 deg). The box
is then carved from this one view (voxels projecting outside the mask are dropped); when
carving removes almost nothing the exact box is kept, with clean planar faces.

An open laptop is no box: its outline is an L seen in perspective, and a box fitted to it is
mostly air (or, seen from above, a flat plate whose top is the screen). Where the best box
covers the outline poorly, an open clamshell is fitted as well: a base slab and a lid hinged
along the base's back top edge, leaning back to the box's top back edge (two more numbers: the
base's thickness and the hinge's offset from the back), its lid's side edges a fourth
vanishing direction, with weak priors that the lid is as long as the base is deep and opens
85-160 deg. It replaces the box where its outline overlaps the mask clearly better; the mesh
is then the two slabs, apart, and the lid goes on as a hinged panel (a movable part, whole).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stages._shared.camera import Camera
from stages._shared.io import read_mask, read_rgb, write_json, write_mesh
from stages._shared.raster import rasterize

if TYPE_CHECKING:
    from stages.foreground import ForegroundResult
    from stages.reconstruct import ReconstructResult

log = logging.getLogger(__name__)

#: Box corners in units of (depth, width, height): x in {-1/2, 1/2}, y in {-1/2, 1/2}, z in {0, 1}.
_CORNERS = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (0.0, 1.0)])
#: The six box faces as corner indices in order around the face, and each face's outward normal.
_FACES = np.array(
    [[4, 6, 7, 5], [0, 1, 3, 2], [2, 3, 7, 6], [0, 4, 5, 1], [1, 5, 7, 3], [0, 2, 6, 4]]
)  # +x, -x, +y, -y, +z, -z
_NORMALS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64)
#: The 12 box edges (corner index pairs) and the two faces (indices into _FACES) each borders.
_EDGES = np.array([[4, 6], [6, 7], [7, 5], [5, 4], [0, 1], [1, 3], [3, 2], [2, 0], [2, 6], [3, 7], [1, 5], [0, 4]])
_EDGE_FACES = np.array([[0, 5], [0, 2], [0, 4], [0, 3], [1, 3], [1, 4], [1, 2], [1, 5], [2, 5], [2, 4], [3, 4], [3, 5]])
#: Where along an edge its image support is sampled (edge ends avoided: corners are ambiguous).
_EDGE_SAMPLES = np.linspace(0.1, 0.9, 17)
#: Coarse hypotheses whose cost is within this of the best one's are refined at full detail.
_CANDIDATE_MARGIN = 0.03
#: Fewest mask pixels (at ``fit_side`` resolution) a box is fitted to.
_MIN_FIT_PIXELS = 64
#: Objective value for a parameter set that puts the camera inside or behind the box.
_INVALID = 10.0
#: Subpixel bits for cv2 polygon filling.
_SHIFT = 4
#: Silhouettes are filled on a canvas of about this many pixels a side, then area-averaged to the fit size.
_CANVAS_SIDE = 512
#: A clamshell lid's thickness as a fraction of its base's (a laptop's screen is about half as
#: thick as its keyboard half; the photo hardly shows it).
_LID_THICKNESS = 0.5
#: Clearance between a clamshell's lid and its base at the hinge, box heights.
_LID_GAP = 0.01
#: (depth, width) in heights of open clamshells the search starts from, besides the box's own.
_CLAMSHELL_PROPORTIONS = ((1.0, 1.2), (1.3, 1.5), (1.6, 1.8))
#: Opening angles of a clamshell's lid (from closed) considered, rad: upright to lying back.
_LID_ANGLE_RANGE = (np.radians(85.0), np.radians(160.0))
#: Spread of log(lid length / base depth) of a clamshell around 0 (a weak prior, like the others).
_LID_LENGTH_SPREAD = 0.1
#: Range of a clamshell's base thickness (box heights) and largest hinge offset (fraction of depth) searched.
_BASE_RANGE = (0.02, 0.4)
_HINGE_MAX = 0.6


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["cuboid"] = "cuboid"
    fov_deg_range: tuple[float, float] = Field(
        (15.0, 75.0), description="range of the camera's vertical field of view searched, degrees"
    )
    elevation_deg_range: tuple[float, float] = Field(
        (-10.0, 60.0), description="range of the camera's elevation seen from the box centre, degrees"
    )
    azimuth_deg_max: float = Field(
        55.0, gt=0, lt=90, description="largest |azimuth| of the camera from the box's front normal searched, degrees"
    )
    fit_side: int = Field(128, ge=32, description="longer side of the mask the coarse search runs on, pixels")
    refine_side: int = Field(384, ge=32, description="longer side of the mask the final refinement runs on, pixels")
    missed_weight: float = Field(
        2.0, gt=0, description="cost of a mask pixel outside the box relative to a box pixel outside the mask"
    )
    edge_weight: float = Field(
        0.025, ge=0, description="weight of the inner-edge image support term against 1 - silhouette overlap"
    )
    fov_prior_deg: tuple[float, float] = Field(
        (40.0, 10.0), description="mean and spread of the field of view expected in product photos, degrees"
    )
    elevation_prior_deg: tuple[float, float] = Field(
        (20.0, 12.0), description="mean and spread of the camera elevation expected in product photos, degrees"
    )
    depth_width_prior: float = Field(
        0.7, gt=0, description="spread of log(depth / width) around 0 expected when the photo cannot tell, unitless"
    )
    line_weight: float = Field(
        0.3, ge=0, description="weight of the vanishing-direction term (image line segments vs the box's three "
        "edge directions) against 1 - silhouette overlap",
    )
    line_min_length: float = Field(
        0.05, gt=0, description="shortest line segment used, as a fraction of the mask's longer bbox side"
    )
    line_tolerance_deg: float = Field(
        2.0, gt=0, description="angle between a segment and its nearest vanishing direction at which it "
        "costs half as much as clutter (the robust loss's scale), degrees",
    )
    prior_weight: float = Field(
        0.005, ge=0, description="cost of a one-spread deviation from the priors, in units of silhouette overlap"
    )
    clamshell_min_gain: float = Field(
        0.03, gt=0, le=1, description="silhouette overlap an open clamshell (a base slab and a lid hinged at its "
        "back, like an open laptop) must gain over the box to replace it; 1 never tries it",
    )
    n_refine: int = Field(8, ge=1, description="number of best grid starts refined by Nelder-Mead on the coarse mask")
    n_candidates: int = Field(3, ge=1, description="most distinct coarse hypotheses refined at refine_side")
    max_evals: int = Field(700, ge=50, description="objective evaluations per Nelder-Mead refinement")
    carve_voxels: int = Field(64, ge=8, description="voxels along the box's longest side when carving")
    carve_tolerance: float = Field(
        0.01, ge=0, description="mask dilation before carving, as a fraction of the image's longer side"
    )
    carve_min_removed: float = Field(
        0.05, ge=0, lt=1, description="carved volume fraction below which the exact box is kept"
    )


@dataclass(frozen=True)
class _Fit:
    """A box-and-camera hypothesis in the unit-height box frame (box height 1)."""

    depth: float  # box extent along x (front normal), in box heights
    width: float  # box extent along y, in box heights
    heading: float  # rad, about +z from +x: the camera looks along -(cos heading, sin heading) horizontally
    tilt: float  # rad, of the optical axis below the horizontal
    fov: float  # rad, vertical field of view
    u0: float  # image x of the box centre, pixels
    v0: float  # image y of the box centre, pixels
    size: float  # projected half-diagonal of the box, pixels (sets the distance)
    base: float = 1.0  # clamshell: the base slab's thickness, box heights (1: a plain box)
    hinge: float = 0.0  # clamshell: the hinge's distance from the box's back, fraction of its depth

    @property
    def clamshell(self) -> bool:
        return self.base < 1.0


def run(cfg: Config, fg: ForegroundResult, max_dim: float, out_dir: Path) -> ReconstructResult:
    """Fit a camera and a box to the foreground, carve it and scale it to ``max_dim``.

    Parameters
    ----------
    cfg : Config
    fg : ForegroundResult
      The working image and its mask; the returned camera is for this image's pixel grid.
    max_dim : float
      The object's largest dimension, metres.
    out_dir : Path
      Receives ``mesh.glb`` (watertight, base frame), ``camera.json`` and ``fit.json``.
    """
    from stages._shared.kinematics import part_box
    from stages.reconstruct import HingedPanel, ReconstructResult

    # 1. Inputs at working resolution.
    mask = read_mask(fg.mask)
    image = read_rgb(fg.image)
    if mask.shape != image.shape[:2] or mask.shape != (fg.height, fg.width):
        raise ValueError(
            f"{fg.mask}: mask {mask.shape} and image {image.shape[:2]} must both be ({fg.height}, {fg.width}); "
            "re-run the foreground stage"
        )
    height, width = mask.shape
    min_pixels = _MIN_FIT_PIXELS * (max(height, width) / cfg.fit_side) ** 2
    if mask.sum() < min_pixels:
        raise ValueError(
            f"{fg.mask}: the object covers {int(mask.sum())} pixels, fewer than the {int(np.ceil(min_pixels))} "
            "a box can be fitted to; use a photo in which the object fills more of the frame"
        )

    # 2. Fit box and camera; the front is the side face turned most towards the camera.
    fit, score, clamshell_gain = _fit_box(cfg, mask, image)

    # 3. Camera and shape in the unit-height frame at working resolution; carve a box.
    T_unit, f = _pose(fit, width, height)
    azimuth, elevation = _view_angles(T_unit)
    camera_unit = _make_camera(T_unit, f, width, height)
    extents_unit = np.array([fit.depth, fit.width, 1.0])
    if fit.clamshell:
        mesh, removed = _clamshell_mesh(fit), 0.0
    else:
        mesh, removed = _carve(cfg, camera_unit, mask, extents_unit)

    # 4. Base frame: origin at the bottom centre of the bbox, largest extent = max_dim.
    lo, hi = mesh.bounds
    shift = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])
    scale = max_dim / float((hi - lo).max())
    mesh.apply_translation(shift)
    mesh.apply_scale(scale)
    T = T_unit.copy()
    T[:3, 3] = (T[:3, 3] + shift) * scale
    camera = _make_camera(T, f, width, height)
    if not mesh.is_watertight:
        raise RuntimeError(f"reconstruct: carved mesh for {fg.mask} is not watertight; report this photo as a bug")
    panels = ()
    if fit.clamshell:
        corners, hinge, _, angle = _clamshell_lid(fit)
        panels = (
            HingedPanel(
                box=part_box((corners + shift) * scale),
                origin=(hinge + shift) * scale,
                axis=np.array([0.0, -1.0, 0.0]),
                angle=angle,
            ),
        )

    # 5. Silhouette agreement at working resolution; write outputs.
    rendered = rasterize(camera, mesh.vertices, mesh.faces).mask
    iou = float((rendered & mask).sum() / max((rendered | mask).sum(), 1))
    extents = tuple(float(e) for e in mesh.extents)
    out_dir = Path(out_dir)
    mesh_path = write_mesh(out_dir / "mesh.glb", mesh)
    camera_path = write_json(out_dir / "camera.json", camera.to_dict())
    write_json(
        out_dir / "fit.json",
        {
            "azimuth_deg": float(np.degrees(azimuth)),
            "elevation_deg": float(np.degrees(elevation)),
            "fov_deg": float(np.degrees(fit.fov)),
            "box_extents_m": (extents_unit * scale).tolist(),
            "fit_objective": score,
            "carved_fraction": removed,
            "carved": removed >= cfg.carve_min_removed,
            "silhouette_iou": iou,
            "scale_m_per_unit": scale,
            "shape": "clamshell" if fit.clamshell else "box",
            "clamshell_gain": clamshell_gain,
            "clamshell": None if not fit.clamshell else {
                "base_thickness_m": fit.base * scale,
                "hinge_offset_m": fit.hinge * fit.depth * scale,
                "lid_angle_deg": float(np.degrees(panels[0].angle)),
            },
        },
    )
    log.info(
        "reconstruct: azimuth %.1f deg, elevation %.1f deg, fov %.1f deg, extents %.3f x %.3f x %.3f m, "
        "%s, silhouette IoU %.3f",
        np.degrees(azimuth), np.degrees(elevation), np.degrees(fit.fov), *extents,
        f"open clamshell (lid at {np.degrees(panels[0].angle):.0f} deg)" if panels else f"carved {100 * removed:.1f}%",
        iou,
    )  # fmt: skip
    return ReconstructResult(
        mesh=mesh_path,
        camera=camera,
        camera_json=camera_path,
        extents_m=extents,
        silhouette_iou=iou,
        panels=panels,
    )


# ----------------------------------------------------------------------------------------------
# Camera geometry


def _pose(fit: _Fit, width: float, height: float) -> tuple[np.ndarray, float]:
    """``T_base_camera`` (4, 4) and focal length (pixels) of a hypothesis, for a width x height image.

    The camera is level (its x axis horizontal) and turned by ``heading`` and ``tilt``; the box
    centre (0, 0, 1/2) lies on the ray through (u0, v0), at the distance at which the box's
    half-diagonal spans ``size``. ``u0``, ``v0`` and ``size`` are in pixels of this image size.
    The rotation depends on the angles alone, so the vanishing points (and the line term) do not
    move when the box is moved or resized in the image.
    """
    f = 0.5 * height / np.tan(0.5 * fit.fov)
    radius = 0.5 * np.sqrt(fit.depth**2 + fit.width**2 + 1.0)
    distance = f * radius / fit.size
    ch, sh, ct, st = np.cos(fit.heading), np.sin(fit.heading), np.cos(fit.tilt), np.sin(fit.tilt)
    z = np.array([-ct * ch, -ct * sh, -st])  # optical axis, base frame
    x = np.array([-sh, ch, 0.0])
    R = np.stack([x, np.cross(z, x), z], axis=1)
    r = np.array([(fit.u0 - width / 2) / f, (fit.v0 - height / 2) / f, 1.0])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.array([0.0, 0.0, 0.5]) - distance * R @ (r / np.linalg.norm(r))
    return T, float(f)


def _view_angles(T_base_camera: np.ndarray) -> tuple[float, float]:
    """Azimuth (about +z from +x) and elevation (rad) of the camera centre seen from the box centre."""
    v = T_base_camera[:3, 3] - np.array([0.0, 0.0, 0.5])
    return float(np.arctan2(v[1], v[0])), float(np.arctan2(v[2], np.hypot(v[0], v[1])))


def _make_camera(T_base_camera: np.ndarray, f: float, width: int, height: int) -> Camera:
    """A square-pixel camera with its principal point at the image centre."""
    intrinsics = {"width": width, "height": height, "fx": f, "fy": f, "cx": width / 2.0, "cy": height / 2.0}
    return Camera.from_dict({**intrinsics, "T_base_camera": T_base_camera})


def _shape_corners(fit: _Fit) -> np.ndarray:
    """(8 k, 3) float corners of the hypothesis' solids, unit-height box frame: the box's 8, or
    a clamshell's base slab and lid slab, 8 each (each group of 8 is a convex solid)."""
    if not fit.clamshell:
        return _CORNERS * np.array([fit.depth, fit.width, 1.0])
    base_depth = fit.depth * (1.0 - fit.hinge)
    base = _CORNERS * np.array([base_depth, fit.width, fit.base]) + np.array([(fit.depth - base_depth) / 2, 0.0, 0.0])
    return np.vstack([base, _clamshell_lid(fit)[0]])


def _clamshell_lid(fit: _Fit) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A clamshell's lid, unit-height box frame: its (8, 3) corners, the hinge point (3,) (the
    lid's inner face meets the base's back top edge there, ``_LID_GAP`` above it), and the
    lid's opening angle from closed (rad; pi/2 upright, more leaning back).

    The lid is a slab ``_LID_THICKNESS`` times the base's thickness thick, hinged along its
    inner face's lower edge, whose outer top edge is the box's top back edge.
    """
    t = _LID_THICKNESS * fit.base
    hinge = np.array([fit.depth * (fit.hinge - 0.5), 0.0, fit.base + _LID_GAP])
    dx, dz = -fit.depth / 2 - hinge[0], 1.0 - hinge[2]
    length = np.sqrt(max(dx * dx + dz * dz - t * t, 1e-6))
    angle = float(np.arctan2(dz, dx) - np.arctan2(t, length))
    along = np.array([np.cos(angle), 0.0, np.sin(angle)])  # hinge -> top, in the inner face
    outward = np.array([-np.sin(angle), 0.0, np.cos(angle)])  # inner face -> outer face
    a, y, c = (_CORNERS * np.array([1.0, fit.width, 1.0]) + np.array([0.5, 0.0, 0.0])).T  # a, c in {0, 1}
    corners = hinge + (a * length)[:, None] * along + (c * t)[:, None] * outward + y[:, None] * np.array([0.0, 1.0, 0.0])
    return corners, hinge, along, angle


def _project_corners(fit: _Fit, width: float, height: float) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(8 k, 2) float pixel positions of the shape's corners (see :func:`_shape_corners`),
    ``T_base_camera`` (4, 4) and the focal length (pixels); None if a corner is behind the camera."""
    T, f = _pose(fit, width, height)
    corners = _shape_corners(fit)
    pc = (corners - T[:3, 3]) @ T[:3, :3]  # base -> camera frame
    if pc[:, 2].min() <= 1e-3:
        return None
    uv = f * pc[:, :2] / pc[:, 2:3] + np.array([width / 2, height / 2])
    return uv, T, f


def _vanishing_points(
    T_base_camera: np.ndarray, f: float, width: float, height: float, directions: np.ndarray = np.eye(3)
) -> np.ndarray:
    """(k, 3) float homogeneous image points (rows) where the base-frame ``directions`` (k, 3)
    (default: the base x, y and z axes) vanish, for a camera with focal length ``f`` and its
    principal point at the image centre. A row's third entry is 0 when that direction is
    parallel to the image plane (vanishing at infinity)."""
    d = directions @ T_base_camera[:3, :3]  # rows: the directions in the camera frame
    return np.stack([f * d[:, 0] + width / 2 * d[:, 2], f * d[:, 1] + height / 2 * d[:, 2], d[:, 2]], axis=1)


def _visible_faces(fit: _Fit, eye: np.ndarray) -> np.ndarray:
    """Indices into ``_FACES`` of the faces of the shape's first solid (the box, or a clamshell's
    base slab) whose outer side faces the camera at ``eye``."""
    lo, hi = np.array([fit.depth * (fit.hinge - 0.5), -fit.width / 2, 0.0]), np.array([fit.depth / 2, fit.width / 2, fit.base])
    offsets = np.array([hi[0], -lo[0], hi[1], -lo[1], hi[2], -lo[2]])  # plane n.x = offset
    return np.flatnonzero(_NORMALS @ eye > offsets)


# ----------------------------------------------------------------------------------------------
# Fitting


class _Objective:
    """1 - silhouette overlap + ``edge_weight`` * (1 - image-edge support of the box's inner edges)
    + ``line_weight`` * (misfit of the image's line segments to the box's vanishing points)
    + ``prior_weight`` * (squared deviations of the field of view, the elevation and
    log(depth / width) from their priors, in spreads).

    Evaluated on copies of the mask and image downscaled to ``side`` pixels (longer side).
    """

    def __init__(
        self, cfg: Config, mask: np.ndarray, image: np.ndarray, lines: np.ndarray, side: int, edge_weight: float
    ):
        import cv2

        height, width = mask.shape
        self.s = min(1.0, side / max(height, width))
        self.w = max(8, int(round(width * self.s)))
        self.h = max(8, int(round(height * self.s)))
        self.mask = cv2.resize(mask.astype(np.float32), (self.w, self.h), interpolation=cv2.INTER_AREA)
        self.mask_sum = float(self.mask.sum())
        self.edge_weight = edge_weight
        self.missed_weight = cfg.missed_weight
        ys, xs = np.nonzero(self.mask > 0.5)
        lo, hi = np.array([xs.min(), ys.min()]), np.array([xs.max(), ys.max()]) + 1.0
        self.bbox_centre, self.bbox_size = (lo + hi) / 2, hi - lo
        self.supersample = max(1, int(round(_CANVAS_SIDE / max(self.w, self.h))))
        if edge_weight > 0:
            self.gx, self.gy, self.g_ref = _gradients(image, mask, (self.w, self.h))
        self.lo_fov, self.hi_fov = np.radians(cfg.fov_deg_range)
        self.lo_el, self.hi_el = np.radians(cfg.elevation_deg_range)
        self.az_max = np.radians(cfg.azimuth_deg_max)
        self.fov_mean, self.fov_sd = np.radians(cfg.fov_prior_deg)
        self.el_mean, self.el_sd = np.radians(cfg.elevation_prior_deg)
        self.ratio_sd = cfg.depth_width_prior
        self.prior_weight = cfg.prior_weight
        self.lines = lines * self.s
        self.line_weight = cfg.line_weight if len(lines) else 0.0
        self.line_tolerance = np.sin(np.radians(cfg.line_tolerance_deg))
        self.canvas = np.zeros((self.h * self.supersample, self.w * self.supersample), np.uint8)

    # Unbounded parameter vector <-> hypothesis (fit-image pixels).
    def decode(self, p: np.ndarray) -> _Fit:
        sig = 1.0 / (1.0 + np.exp(-np.clip(p[[3, 4]], -30, 30)))
        return _Fit(
            depth=float(np.exp(np.clip(p[0], -4, 4))),
            width=float(np.exp(np.clip(p[1], -4, 4))),
            heading=float(self.az_max * np.tanh(p[2])),
            tilt=float(self.lo_el + (self.hi_el - self.lo_el) * sig[0]),
            fov=float(self.lo_fov + (self.hi_fov - self.lo_fov) * sig[1]),
            u0=float(p[5]),
            v0=float(p[6]),
            size=float(np.exp(np.clip(p[7], -10, 10))),
            **({} if len(p) == 8 else {
                "base": float(_BASE_RANGE[0] + np.ptp(_BASE_RANGE) / (1.0 + np.exp(-np.clip(p[8], -30, 30)))),
                "hinge": float(_HINGE_MAX / (1.0 + np.exp(-np.clip(p[9], -30, 30)))),
            }),
        )

    def encode(self, fit: _Fit) -> np.ndarray:
        def logit(x):
            x = np.clip(x, 1e-6, 1 - 1e-6)
            return np.log(x / (1 - x))

        clamshell = [logit((fit.base - _BASE_RANGE[0]) / np.ptp(_BASE_RANGE)), logit(fit.hinge / _HINGE_MAX)]
        return np.array(
            [
                np.log(fit.depth),
                np.log(fit.width),
                np.arctanh(np.clip(fit.heading / self.az_max, -0.999, 0.999)),
                logit((fit.tilt - self.lo_el) / (self.hi_el - self.lo_el)),
                logit((fit.fov - self.lo_fov) / (self.hi_fov - self.lo_fov)),
                fit.u0,
                fit.v0,
                np.log(fit.size),
                *(clamshell if fit.clamshell else []),
            ]
        )

    def overlap(self, uv: np.ndarray) -> float:
        """Overlap of the union of the convex hulls of ``uv``'s groups of 8 (the corners of the
        shape's solids, fit pixels) with the mask, in [0, 1].

        A Tversky index: intersection / (intersection + w * missed + spurious), with
        w = ``cfg.missed_weight`` (w = 1: the IoU; w > 1 favours boxes that enclose the mask).
        The hull is filled at ``supersample`` times the resolution and area-averaged, which gives
        each pixel its covered fraction (cv2's anti-aliased fill dilates by ~0.7 px).
        """
        import cv2

        k = self.supersample
        # Our pixel centres sit at +0.5, cv2's at integers: shift by half a (supersampled) pixel.
        points = np.round((uv * k - 0.5) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 8, 2)
        self.canvas[:] = 0
        for solid in points:  # one box, or a clamshell's two slabs
            cv2.fillConvexPoly(self.canvas, cv2.convexHull(solid), 255, shift=_SHIFT)
        sil = cv2.resize(self.canvas, (self.w, self.h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        inter = float(np.minimum(sil, self.mask).sum())
        missed, spurious = self.mask_sum - inter, float(sil.sum()) - inter
        return inter / max(inter + self.missed_weight * missed + spurious, 1e-9)

    def edge_support(self, fit: _Fit, uv: np.ndarray, eye: np.ndarray) -> float:
        """Mean image-gradient strength across the box's inner edges, in [0, 1]."""
        from scipy.ndimage import map_coordinates

        edges = _inner_edges(fit, eye)
        if len(edges) == 0:
            return 0.0
        t = _EDGE_SAMPLES[:, None]
        a, b = uv[edges[:, 0]], uv[edges[:, 1]]  # (E, 2) edge end points
        pts = a[:, None, :] + (b - a)[:, None, :] * t  # (E, S, 2)
        normal = np.stack([a[:, 1] - b[:, 1], b[:, 0] - a[:, 0]], axis=1)
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
        coords = [pts[..., 1].ravel() - 0.5, pts[..., 0].ravel() - 0.5]  # (row, col) of pixel centres
        gx = map_coordinates(self.gx, coords, order=1, mode="nearest").reshape(pts.shape[:2])
        gy = map_coordinates(self.gy, coords, order=1, mode="nearest").reshape(pts.shape[:2])
        across = np.abs(gx * normal[:, 0:1] + gy * normal[:, 1:2])  # (E, S)
        return float(np.minimum(across / self.g_ref, 1.0).mean())

    def align(self, fit: _Fit) -> _Fit | None:
        """Move and scale a hypothesis (u0, v0, size) so its outline's bbox matches the mask's."""
        for _ in range(3):
            projected = _project_corners(fit, self.w, self.h)
            if projected is None:
                return None
            lo, hi = projected[0].min(axis=0), projected[0].max(axis=0)
            ratio = float(np.sqrt(np.prod(self.bbox_size) / max(np.prod(hi - lo), 1e-9)))
            shift = self.bbox_centre - (lo + hi) / 2
            fit = dataclasses.replace(fit, u0=fit.u0 + shift[0], v0=fit.v0 + shift[1], size=fit.size * ratio)
        return fit

    def fit_lines(self, fit: _Fit, max_evals: int) -> _Fit | None:
        """``fit`` with its field of view, heading and tilt fitted to the line segments alone
        (Nelder-Mead), then moved and scaled onto the mask's bbox; None if that fails."""
        from scipy.optimize import minimize

        p0 = self.encode(fit)
        angles = [2, 3, 4]  # heading, tilt, fov in the parameter vector

        def misfit(q: np.ndarray) -> float:
            p = p0.copy()
            p[angles] = q
            T, f = _pose(self.decode(p), self.w, self.h)
            return _line_misfit(self.lines, _vanishing_points(T, f, self.w, self.h), self.line_tolerance)

        res = minimize(misfit, p0[angles], method="Nelder-Mead", options={"maxfev": max_evals, "xatol": 1e-4, "fatol": 1e-7})
        p0[angles] = res.x
        return self.align(self.decode(p0))

    def minimize(self, p0: np.ndarray, max_evals: int) -> tuple[np.ndarray, float]:
        """Nelder-Mead from ``p0``, restarted once (a fresh simplex escapes a collapsed one)."""
        from scipy.optimize import minimize

        extent = float(self.bbox_size.max())
        steps = np.array([0.3, 0.3, 0.25, 0.4, 0.5, 0.03 * extent, 0.03 * extent, 0.1, 0.5, 0.5])[: len(p0)]
        for _ in range(2):
            res = minimize(
                self,
                p0,
                method="Nelder-Mead",
                options={
                    "initial_simplex": np.vstack([p0, p0 + np.diag(steps)]),
                    "maxfev": max_evals // 2,
                    "xatol": 1e-4,
                    "fatol": 1e-6,
                },
            )
            p0, steps = res.x, steps * 0.5
        return res.x, float(res.fun)

    def __call__(self, p: np.ndarray) -> float:
        fit = self.decode(p)
        projected = _project_corners(fit, self.w, self.h)
        if projected is None:
            return _INVALID
        uv, T, f = projected
        eye = T[:3, 3]
        if np.linalg.norm(eye - [0, 0, 0.5]) < 1.05 * 0.5 * np.sqrt(fit.depth**2 + fit.width**2 + 1):
            return _INVALID
        cost = 1.0 - self.overlap(uv) + self.prior_weight * (
            ((fit.fov - self.fov_mean) / self.fov_sd) ** 2
            + ((_view_angles(T)[1] - self.el_mean) / self.el_sd) ** 2
            + (np.log(fit.depth / fit.width) / self.ratio_sd) ** 2
        )
        directions = np.eye(3)  # of the shape's edges
        if fit.clamshell:  # a closed lid covers its base: about as long as the base is deep
            lid, _, along, angle = _clamshell_lid(fit)
            if not _LID_ANGLE_RANGE[0] <= angle <= _LID_ANGLE_RANGE[1]:
                return _INVALID
            ratio = np.linalg.norm(lid[4] - lid[0]) / (fit.depth * (1.0 - fit.hinge))
            cost += self.prior_weight * (np.log(ratio) / _LID_LENGTH_SPREAD) ** 2
            directions = np.vstack([directions, along])  # the lid's side edges lean back with it
        if self.edge_weight > 0:
            cost += self.edge_weight * (1.0 - self.edge_support(fit, uv, eye))
        if self.line_weight > 0:
            vps = _vanishing_points(T, f, self.w, self.h, directions)
            cost += self.line_weight * _line_misfit(self.lines, vps, self.line_tolerance)
        return cost


def _gradients(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float]:
    """Luminance gradients (gx, gy), (h, w) float, of the object's image downscaled to ``size`` = (w, h).

    The background is first replaced by the colour of the nearest object pixel, so the outline
    itself carries no gradient: only edges inside the object (between its faces) do. Also
    returns a reference strength (a high percentile of the gradient magnitude inside the mask),
    so that edge support is relative to the photo's own contrast.
    """
    import cv2
    from scipy.ndimage import distance_transform_edt

    _, (iy, ix) = distance_transform_edt(~mask, return_indices=True)
    filled = image[iy, ix]  # (H, W, 3): background takes the nearest object pixel's colour
    gray = cv2.resize(filled, size, interpolation=cv2.INTER_AREA).astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    gray = cv2.GaussianBlur(gray / 255.0, (0, 0), 0.8)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    small = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    magnitude = np.hypot(gx, gy)[small]
    g_ref = float(np.percentile(magnitude, 95)) if magnitude.size else 0.0
    return gx, gy, max(g_ref, 1e-3)


def _line_segments(image: np.ndarray, mask: np.ndarray, min_length: float) -> np.ndarray:
    """(N, 4) float line segments (x0, y0, x1, y1), pixels, found by LSD on the object.

    Segments shorter than ``min_length`` times the mask's longer bbox side are dropped (their
    direction is too uncertain), and so are those whose midpoint is off the (slightly dilated)
    mask. The outline is kept: against the background it shows the box's own edges.
    """
    import cv2

    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    found = cv2.createLineSegmentDetector().detect(gray)[0]
    if found is None:
        return np.zeros((0, 4))
    lines = found.reshape(-1, 4).astype(np.float64) + 0.5  # LSD puts pixel centres at integers
    ys, xs = np.nonzero(mask)
    extent = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
    near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    mid = np.clip(((lines[:, :2] + lines[:, 2:]) / 2).astype(np.int64), 0, [mask.shape[1] - 1, mask.shape[0] - 1])
    keep = (np.linalg.norm(lines[:, 2:] - lines[:, :2], axis=1) >= min_length * extent) & near[mid[:, 1], mid[:, 0]]
    return lines[keep]


def _line_misfit(lines: np.ndarray, vps: np.ndarray, tolerance: float) -> float:
    """How badly line segments point at their nearest vanishing point, in [0, 1].

    For each segment, the sine of the angle between it and the line from its midpoint to each
    of ``vps`` ((3, 3) homogeneous rows); the smallest, x, over ``tolerance`` (a sine), costs
    x^2 / (1 + x^2) (Geman-McClure); the result is the length-weighted mean. Segments along none
    of the directions (clutter) cost nearly 1 whatever the hypothesis, so they hardly pull it.
    """
    mid = (lines[:, :2] + lines[:, 2:]) / 2
    d = lines[:, 2:] - lines[:, :2]
    length = np.linalg.norm(d, axis=1)
    to_vp = vps[None, :, :2] - vps[None, :, 2:3] * mid[:, None, :]  # (N, 3, 2) direction midpoint -> VP
    sine = np.abs(d[:, None, 0] * to_vp[..., 1] - d[:, None, 1] * to_vp[..., 0]) / np.maximum(
        length[:, None] * np.linalg.norm(to_vp, axis=2), 1e-12
    )
    x2 = (sine.min(axis=1) / tolerance) ** 2
    misfit = x2 / (1.0 + x2)
    return float((length * misfit).sum() / length.sum())


def _inner_edges(fit: _Fit, eye: np.ndarray) -> np.ndarray:
    """(E, 2) corner indices of the edges of the shape's first solid (see :func:`_visible_faces`)
    shared by two visible faces (they lie inside the outline)."""
    visible = np.zeros(6, dtype=bool)
    visible[_visible_faces(fit, eye)] = True
    return _EDGES[visible[_EDGE_FACES[:, 0]] & visible[_EDGE_FACES[:, 1]]]


def _fit_box(cfg: Config, mask: np.ndarray, image: np.ndarray) -> tuple[_Fit, float, float]:
    """Best hypothesis (in working-image pixels), its objective value and the overlap a
    clamshell gained over the box (0 when not tried).

    1. A grid of angle and proportion guesses, each placed over the mask's bounding box, is
       scored by silhouette overlap (and priors) on a small copy of the mask; the best few are
       refined by Nelder-Mead.
    2. The distinct survivors are refined at ``cfg.refine_side`` with the inner-edge term added:
       there the thin side and top faces span enough pixels for their edges to decide between
       hypotheses the outline alone cannot tell apart.
    3. A clamshell (see :func:`_clamshell_lid`) is fitted in the best box and kept where its
       outline overlaps the mask by ``cfg.clamshell_min_gain`` more than the box's.
    """
    lines = _line_segments(image, mask, cfg.line_min_length)
    coarse = _Objective(cfg, mask, image, lines, cfg.fit_side, edge_weight=0.0)

    # 1. Coarse grid over the angles and the box proportions, each aligned to the mask's bbox.
    starts = []
    for az in np.radians([-40, -25, -10, 0, 10, 25, 40]):
        for el in np.radians([5, 20, 35, 50]):
            for depth, width in itertools.product([0.3, 0.6, 1.2, 2.4], repeat=2):
                guess = _Fit(depth, width, az, el, np.radians(40.0), coarse.bbox_centre[0], coarse.bbox_centre[1], 1.0)
                guess = coarse.align(guess)
                if guess is not None:
                    starts.append(coarse.encode(guess))
    scores = np.array([coarse(p) for p in starts])
    refined = [coarse.minimize(starts[i], cfg.max_evals) for i in np.argsort(scores)[: cfg.n_refine]]
    refined.sort(key=lambda r: r[1])

    # 2. Distinct, nearly as good hypotheses go to the fine stage; the best one there wins.
    candidates: list[_Fit] = []
    for p, value in refined:
        fit = _front_by_azimuth(coarse.decode(p), coarse.w, coarse.h)
        if value > refined[0][1] + _CANDIDATE_MARGIN or len(candidates) == cfg.n_candidates:
            break
        if all(not _same_hypothesis(fit, other) for other in candidates):
            candidates.append(fit)
    fine = _Objective(cfg, mask, image, lines, cfg.refine_side, edge_weight=cfg.edge_weight)
    starts = [_rescale(fit, fine.s / coarse.s) for fit in candidates]
    if fine.line_weight > 0:  # the same boxes seen by the camera the line segments alone point to
        starts += [fit for fit in (fine.fit_lines(start, cfg.max_evals) for start in starts) if fit is not None]
    best_p, best = None, np.inf
    for fit in starts:
        p, value = fine.minimize(fine.encode(fit), cfg.max_evals)
        if value < best:
            best_p, best = p, value
    box = _front_by_azimuth(fine.decode(best_p), fine.w, fine.h)

    # 3. An open clamshell (a laptop) replaces the box where it covers the outline clearly better.
    gain = 0.0
    box_overlap = fine.overlap(_project_corners(box, fine.w, fine.h)[0])
    if box_overlap < 1.0 - cfg.clamshell_min_gain:
        shell, value = _fit_clamshell(cfg, coarse, fine, box)
        gain = fine.overlap(_project_corners(shell, fine.w, fine.h)[0]) - box_overlap
        log.debug("reconstruct: box overlap %.3f, clamshell gains %.3f (base %.3f, hinge %.3f)", box_overlap, gain, shell.base, shell.hinge)
        if gain >= cfg.clamshell_min_gain:
            box, best = shell, value
    return _rescale(box, 1.0 / fine.s), best, gain


def _fit_clamshell(cfg: Config, coarse: _Objective, fine: _Objective, box: _Fit) -> tuple[_Fit, float]:
    """The best clamshell inside ``box``'s outline (``fine``'s pixels), refined together with the camera.

    A grid over the base's thickness, the hinge's offset, the proportions (the box's, or a few
    laptop-like ones) and the camera's heading (about the box's) and tilt (the box's, or a few
    fixed ones: a laptop's outline can fool the box fit, e.g. into a flat plate) is scored on the coarse mask; the best start of each tilt is refined
    there by Nelder-Mead over all ten numbers, and the best two of those again on the fine mask.
    """
    start = _rescale(box, coarse.s / fine.s)
    tilts = [start.tilt, *np.radians([5.0, 15.0, 25.0, 35.0])]
    refined = []
    for tilt in tilts:
        grid = [
            dataclasses.replace(start, depth=d, width=w, base=b, hinge=h, heading=start.heading + dh, tilt=tilt)
            for d, w in [(start.depth, start.width), *_CLAMSHELL_PROPORTIONS]
            for b in (0.04, 0.08, 0.15, 0.25)
            for h in (0.0, 0.15, 0.3, 0.45)
            for dh in np.radians([-10.0, 0.0, 10.0])
        ]
        grid = [coarse.encode(g) for g in (coarse.align(g) for g in grid) if g is not None]
        if grid:
            refined.append(coarse.minimize(min(grid, key=coarse), cfg.max_evals))
    refined.sort(key=lambda r: r[1])
    best = [fine.minimize(fine.encode(_rescale(coarse.decode(p), fine.s / coarse.s)), cfg.max_evals) for p, _ in refined[:2]]
    p, value = min(best, key=lambda r: r[1])
    return fine.decode(p), value


def _same_hypothesis(a: _Fit, b: _Fit) -> bool:
    """Whether two hypotheses (front faces chosen alike) are within a few degrees and percent."""
    return (
        abs(a.heading - b.heading) < np.radians(5.0)
        and abs(a.tilt - b.tilt) < np.radians(5.0)
        and abs(np.log(a.depth / b.depth)) < 0.15
        and abs(np.log(a.width / b.width)) < 0.15
    )


def _rescale(fit: _Fit, factor: float) -> _Fit:
    """The same hypothesis for an image resized by ``factor`` (pixel quantities scale)."""
    return dataclasses.replace(fit, u0=fit.u0 * factor, v0=fit.v0 * factor, size=fit.size * factor)


def _front_by_azimuth(fit: _Fit, image_width: float, image_height: float) -> _Fit:
    """Relabel the box so that +x is the vertical face turned most towards the camera (|azimuth| <= 45 deg).

    A box of depth d and width w seen from azimuth a is the same box, turned a quarter, of depth
    w and width d seen from a -/+ 90 deg. The front of an appliance or cabinet is the side a
    product photo faces most directly.
    """
    quarters = int(np.round(_view_angles(_pose(fit, image_width, image_height)[0])[0] / (np.pi / 2)))
    if quarters == 0:
        return fit
    depth, width = (fit.width, fit.depth) if quarters % 2 else (fit.depth, fit.width)
    return dataclasses.replace(fit, depth=depth, width=width, heading=fit.heading - quarters * np.pi / 2)


# ----------------------------------------------------------------------------------------------
# Carving


def _clamshell_mesh(fit: _Fit):
    """The clamshell's base slab and lid (two closed convex solids, apart by ``_LID_GAP``), unit frame."""
    import trimesh

    corners = _shape_corners(fit)
    return trimesh.util.concatenate([trimesh.convex.convex_hull(corners[:8]), trimesh.convex.convex_hull(corners[8:])])


def _carve(cfg: Config, camera: Camera, mask: np.ndarray, extents: np.ndarray):
    """Carve the box ``extents`` (base frame, origin at its bottom centre) by the mask.

    Returns the watertight mesh (the exact box when carving removes less than
    ``cfg.carve_min_removed`` of the volume) and the removed volume fraction.
    """
    import cv2
    import trimesh
    from skimage.measure import marching_cubes

    voxel = float(extents.max()) / cfg.carve_voxels
    counts = np.maximum(np.ceil(extents / voxel).astype(int), 2)
    voxel_sizes = extents / counts
    lo = np.array([-extents[0] / 2, -extents[1] / 2, 0.0])
    axes = [lo[k] + (np.arange(counts[k]) + 0.5) * voxel_sizes[k] for k in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)  # (X*Y*Z, 3)

    radius = int(np.ceil(cfg.carve_tolerance * max(mask.shape)))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        allowed = cv2.dilate(mask.astype(np.uint8), kernel) > 0
    else:
        allowed = mask
    uv, depth = camera.project(centres)
    px = np.floor(uv).astype(np.int64)
    inside = (depth > 0) & (px[:, 0] >= 0) & (px[:, 0] < mask.shape[1]) & (px[:, 1] >= 0) & (px[:, 1] < mask.shape[0])
    keep = np.zeros(len(centres), dtype=bool)
    keep[inside] = allowed[px[inside, 1], px[inside, 0]]
    removed = 1.0 - float(keep.mean())

    if removed < cfg.carve_min_removed:
        box = trimesh.creation.box(extents=extents)
        box.apply_translation([0.0, 0.0, extents[2] / 2])
        return box, removed

    occupancy = np.pad(keep.reshape(*counts).astype(np.float32), 1)
    verts, faces, _, _ = marching_cubes(occupancy, level=0.5, spacing=tuple(voxel_sizes))
    verts += lo - voxel_sizes * 0.5  # padded index 0 is half a voxel outside the box
    mesh = trimesh.Trimesh(verts, faces, process=True)
    parts = mesh.split(only_watertight=True)
    if len(parts) == 0:
        raise RuntimeError("reconstruct: carving left no closed surface; report this photo as a bug")
    mesh = max(parts, key=lambda m: m.volume) if len(parts) > 1 else parts[0]
    mesh.fix_normals()
    return mesh, removed
