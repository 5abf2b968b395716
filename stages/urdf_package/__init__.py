"""Stage 9, urdf_package: assemble links, joints, collisions and inertials into a URDF package."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stages.foreground import ForegroundResult
from stages.joint_fit import JointFitResult
from stages.part_masks import PartMasksResult
from stages.reconstruct import ReconstructResult
from stages.texture import TextureResult
from stages.urdf_package import template


@dataclass(frozen=True)
class UrdfPackageResult:
    """package_dir : ``<name>/`` holding ``<name>.urdf``, ``meshes/visual``, ``meshes/collision``,
    ``masks/`` and ``package.json`` (DESIGN.md layout)."""

    name: str
    package_dir: Path
    urdf: Path
    package_json: Path


Config = template.Config
BACKENDS = {"template": template.run}


def run(
    cfg: Config,
    name: str,
    photo: Path,
    fg: ForegroundResult,
    recon: ReconstructResult,
    masks: PartMasksResult,
    joints: JointFitResult,
    texture: TextureResult,
    scale_m: float,
    out_dir: Path,
) -> UrdfPackageResult:
    return BACKENDS[cfg.backend](cfg, name, Path(photo), fg, recon, masks, joints, texture, scale_m, Path(out_dir))
