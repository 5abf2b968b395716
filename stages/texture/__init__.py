"""Stage 8, texture: UV atlas per link, colours projected from the photo, unseen texels filled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stages.amodal import AmodalResult
from stages.foreground import ForegroundResult
from stages.reconstruct import ReconstructResult
from stages.texture import projection


@dataclass(frozen=True)
class TexturedMesh:
    """A link's visual mesh: OBJ with its MTL and PNG texture, base frame at rest, metres.
    seen_fraction : share of texels coloured directly from the photo (the rest was filled)."""

    link: str
    obj: Path
    mtl: Path
    png: Path
    seen_fraction: float


@dataclass(frozen=True)
class TextureResult:
    base: TexturedMesh
    parts: tuple[TexturedMesh, ...]


Config = projection.Config
BACKENDS = {"projection": projection.run}


def run(
    cfg: Config,
    fg: ForegroundResult,
    recon: ReconstructResult,
    part_names: tuple[str, ...],
    amodal: AmodalResult,
    out_dir: Path,
) -> TextureResult:
    """``part_names[k]`` names the link of ``amodal.part_meshes[k]``."""
    return BACKENDS[cfg.backend](cfg, fg, recon, tuple(part_names), amodal, Path(out_dir))
