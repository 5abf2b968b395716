"""Stage 3, part_masks: 2D masks of the movable parts in the input photo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from stages._shared.io import read_mask
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
#: Farthest a click may land off the object, fraction of the photo's longer side.
CLICK_REACH = seams.CLICK_REACH


def check_clicks_on_object(mask: np.ndarray, scale: float, clicks) -> None:
    """Raise ValueError for a click farther than ``CLICK_REACH`` off the object.

    mask : (H, W) bool
      The object's foreground on the working image's grid (``ForegroundResult.mask``).
    scale : float
      Working-image pixels per input-photo pixel (``ForegroundResult.scale``).
    clicks : sequence of (x, y) int
      Input-photo pixels.
    """
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    off = ndimage.distance_transform_edt(~mask)  # working-image pixels to the nearest object pixel
    reach = CLICK_REACH * max(mask.shape)
    for x, y in clicks:
        c = min(int((x + 0.5) * scale), mask.shape[1] - 1)
        r = min(int((y + 0.5) * scale), mask.shape[0] - 1)
        if off[r, c] > reach:
            raise ValueError(
                f"click ({x}, {y}) is on the background, {off[r, c] / scale:.0f} px from the object; "
                "click on the movable part itself (input-photo pixels)"
            )


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
    if clicks:
        check_clicks_on_object(read_mask(fg.mask), fg.scale, clicks)
    return BACKENDS[cfg.backend](cfg, fg, recon, tuple(clicks), Path(out_dir))
