"""Stage 3, part_masks: 2D masks of the movable parts in the input photo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stages.foreground import ForegroundResult
from stages.part_masks import seams
from stages.reconstruct import ReconstructResult

JointType = Literal["revolute", "prismatic"]
HingeSide = Literal["left", "right", "top", "bottom"]


@dataclass(frozen=True)
class PartMask:
    """One movable part as seen in the photo.

    name : link name, ``[A-Za-z0-9_]`` (e.g. ``door_0``, ``drawer_1``). mask : (H, W) PNG on
    the working image's grid (``ForegroundResult.image``, the reconstructed camera's grid).
    joint_type / hinge_side : the proposed articulation; hinge_side is the panel edge (as seen
    in the photo) the hinge sits on, None for prismatic parts. click : the (x, y) input-photo
    pixel prompt that selected the part, None when found automatically.
    confidence : in [0, 1].
    """

    name: str
    mask: Path
    joint_type: JointType
    hinge_side: HingeSide | None
    click: tuple[int, int] | None
    confidence: float


@dataclass(frozen=True)
class PartMasksResult:
    parts: tuple[PartMask, ...]


Config = seams.Config
BACKENDS = {"seams": seams.run}


def run(
    cfg: Config,
    fg: ForegroundResult,
    recon: ReconstructResult,
    clicks: tuple[tuple[int, int], ...],
    out_dir: Path,
) -> PartMasksResult:
    """With ``clicks`` (input-photo pixels), one part per click, in click order; without, parts
    found automatically."""
    width, height = round(fg.width / fg.scale), round(fg.height / fg.scale)  # the input photo's size
    for x, y in clicks:
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(
                f"click ({x}, {y}) is outside the {width}x{height} photo; "
                "give --click X,Y in pixels with 0 <= X < width and 0 <= Y < height"
            )
    return BACKENDS[cfg.backend](cfg, fg, recon, tuple(clicks), Path(out_dir))
