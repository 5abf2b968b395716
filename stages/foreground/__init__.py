"""Stage 1, foreground: cut the object out of the product photo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stages.foreground import u2netp


@dataclass(frozen=True)
class ForegroundResult:
    """The photo normalised to 8-bit RGB and the object's mask.

    image : RGB PNG of the input photo (EXIF rotation applied), the pixel grid every later
      stage refers to. mask : the object's (H, W) mask PNG. rgba : the cut-out.
    bbox : (x0, y0, x1, y1) pixel bounds of the mask, x1/y1 exclusive.
    scale : working-image pixels per input-photo pixel (1.0 when the photo was not downscaled);
      a point (x, y) in the input photo is (x * scale, y * scale) in ``image``.
    """

    image: Path
    mask: Path
    rgba: Path
    width: int
    height: int
    bbox: tuple[int, int, int, int]
    mask_fraction: float
    scale: float = 1.0


Config = u2netp.Config
BACKENDS = {"u2netp": u2netp.run}


def run(cfg: Config, photo: Path, out_dir: Path) -> ForegroundResult:
    return BACKENDS[cfg.backend](cfg, Path(photo), Path(out_dir))
