"""Stage 2, reconstruct: a watertight mesh of the object and the camera that saw it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages._shared.camera import Camera
from stages._shared.kinematics import Box
from stages.foreground import ForegroundResult
from stages.reconstruct import cuboid


@dataclass(frozen=True)
class HingedPanel:
    """A panel reconstructed apart from the body, turned about a hinge: an open laptop's screen.

    box : the panel's solid (base frame, metres). origin : (3,) float, a point on the hinge line,
    base frame, metres. axis : (3,) float unit hinge direction; a positive rotation about it
    (right-hand rule) opens the panel further. angle : its opening from closed (lying on the
    body), radians.
    """

    box: Box
    origin: np.ndarray
    axis: np.ndarray
    angle: float


@dataclass(frozen=True)
class ReconstructResult:
    """mesh : watertight GLB in the base frame (metres; z-up, origin at the bottom centre,
    +x to the front). camera : the estimated input camera, also written to ``camera_json``.
    extents_m : bounding-box size along base x, y, z. silhouette_iou : IoU between the mesh's
    projection and the foreground mask. panels : hinged panels that are solids of their own in
    ``mesh`` (an open clamshell's lid), each a movable part.
    """

    mesh: Path
    camera: Camera
    camera_json: Path
    extents_m: tuple[float, float, float]
    silhouette_iou: float
    panels: tuple[HingedPanel, ...] = ()


def panel_pixels(recon: ReconstructResult, mesh=None) -> list[np.ndarray]:
    """Per hinged panel of ``recon``, the (H, W) bool pixels of its camera's image where that
    panel is the nearest surface of the reconstructed mesh (``mesh``, read when not given)."""
    from stages._shared.io import read_mesh
    from stages._shared.raster import rasterize

    if not recon.panels:
        return []
    mesh = read_mesh(recon.mesh) if mesh is None else mesh
    raster = rasterize(recon.camera, mesh.vertices, mesh.faces)
    fid = np.where(raster.mask, raster.face_id, 0)
    centres = mesh.triangles_center
    return [raster.mask & panel.box.contains(centres, 1e-4)[fid] for panel in recon.panels]


def body_bounds(recon: ReconstructResult, mesh) -> np.ndarray:
    """(2, 3) float bounds of ``mesh`` (the reconstruction's) without its hinged panels: the
    body's box, whose faces carry the other parts; base frame, metres."""
    vertices = np.asarray(mesh.vertices)
    body = np.ones(len(vertices), bool)
    for panel in recon.panels:
        body &= ~panel.box.contains(vertices, 1e-4)
    return np.stack([vertices[body].min(axis=0), vertices[body].max(axis=0)])


Config = cuboid.Config
BACKENDS = {"cuboid": cuboid.run}


def run(cfg: Config, fg: ForegroundResult, max_dim: float, out_dir: Path) -> ReconstructResult:
    """``max_dim`` is the object's largest dimension in metres; it fixes the scale."""
    if not max_dim > 0:
        raise ValueError(f"`max_dim` must be a positive length in metres, got {max_dim}")
    return BACKENDS[cfg.backend](cfg, fg, float(max_dim), Path(out_dir))
