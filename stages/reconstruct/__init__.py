"""Stage 2, reconstruct: a watertight mesh of the object and the camera that saw it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stages._shared.camera import Camera
from stages.foreground import ForegroundResult
from stages.reconstruct import cuboid


@dataclass(frozen=True)
class ReconstructResult:
    """mesh : watertight GLB in the base frame (metres; z-up, origin at the bottom centre,
    +x to the front). camera : the estimated input camera, also written to ``camera_json``.
    extents_m : bounding-box size along base x, y, z. silhouette_iou : IoU between the mesh's
    projection and the foreground mask.
    """

    mesh: Path
    camera: Camera
    camera_json: Path
    extents_m: tuple[float, float, float]
    silhouette_iou: float


Config = cuboid.Config
BACKENDS = {"cuboid": cuboid.run}


def run(cfg: Config, fg: ForegroundResult, max_dim: float, out_dir: Path) -> ReconstructResult:
    """``max_dim`` is the object's largest dimension in metres; it fixes the scale."""
    if not max_dim > 0:
        raise ValueError(f"`max_dim` must be a positive length in metres, got {max_dim}")
    return BACKENDS[cfg.backend](cfg, fg, float(max_dim), Path(out_dir))
