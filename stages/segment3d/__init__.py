"""Stage 4, segment3d: label mesh faces as base or movable part, guided by the 2D masks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stages.part_masks import PartMasksResult
from stages.reconstruct import ReconstructResult
from stages.segment3d import mask_kmeans


@dataclass(frozen=True)
class Segment3DResult:
    """mesh : the (possibly refined) mesh whose faces are labelled, GLB, base frame.
    labels : (F,) int32 NPY, 0 for the base and k + 1 for part k of ``PartMasksResult.parts``.
    part_meshes : the faces of each part, one GLB per part, same order. base_mesh : the rest.
    """

    mesh: Path
    labels: Path
    base_mesh: Path
    part_meshes: tuple[Path, ...]
    part_face_counts: tuple[int, ...]


Config = mask_kmeans.Config
BACKENDS = {"mask_kmeans": mask_kmeans.run}


def run(cfg: Config, recon: ReconstructResult, masks: PartMasksResult, out_dir: Path) -> Segment3DResult:
    return BACKENDS[cfg.backend](cfg, recon, masks, Path(out_dir))
