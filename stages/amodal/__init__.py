"""Stage 5, amodal: complete each part into a watertight solid and carve its cavity in the base."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stages.amodal import solid
from stages.part_masks import PartMasksResult
from stages.reconstruct import ReconstructResult
from stages.segment3d import Segment3DResult


@dataclass(frozen=True)
class AmodalResult:
    """base_mesh : watertight GLB of the base with the cavities its parts move in.
    part_meshes : one watertight GLB per part (order of ``PartMasksResult.parts``), at rest.
    All in the base frame, metres. base_image / part_images : amodal RGB renders in the input view.
    """

    base_mesh: Path
    part_meshes: tuple[Path, ...]
    base_image: Path
    part_images: tuple[Path, ...]


Config = solid.Config
BACKENDS = {"solid": solid.run}


def run(
    cfg: Config, recon: ReconstructResult, masks: PartMasksResult, seg: Segment3DResult, out_dir: Path
) -> AmodalResult:
    return BACKENDS[cfg.backend](cfg, recon, masks, seg, Path(out_dir))
