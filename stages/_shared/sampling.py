"""Sampling images at sub-pixel positions (numpy, any number of points)."""

from __future__ import annotations

import numpy as np


def sample_bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup of an image at pixel coordinates, border pixels repeated.

    Unlike ``cv2.remap``, whose maps are limited to 32767 rows, any number of points works.

    Parameters
    ----------
    image : (H, W) or (H, W, C) numeric
      The image.
    uv : (n, 2) float
      Pixel coordinates (x right, y down) in the :class:`~stages._shared.camera.Camera`
      convention: pixel centres at integer + 0.5, as ``Camera.project`` returns them.

    Returns
    -------
    (n,) or (n, C) float64
      Interpolated values, in the image's units.
    """
    image = np.asarray(image)
    uv = np.asarray(uv, dtype=np.float64)
    if image.ndim not in (2, 3):
        raise ValueError(f"`image` must be (H, W) or (H, W, C), got {image.shape}")
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ValueError(f"`uv` must be (n, 2) pixel coordinates, got {uv.shape}")
    H, W = image.shape[:2]
    x = np.clip(uv[:, 0] - 0.5, 0.0, W - 1.0)  # pixel-index units: centres at integers
    y = np.clip(uv[:, 1] - 0.5, 0.0, H - 1.0)
    x0 = np.clip(np.floor(x).astype(np.int64), 0, max(W - 2, 0))
    y0 = np.clip(np.floor(y).astype(np.int64), 0, max(H - 2, 0))
    x1, y1 = np.minimum(x0 + 1, W - 1), np.minimum(y0 + 1, H - 1)
    fx, fy = x - x0, y - y0
    if image.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    img = image.astype(np.float64)
    top = img[y0, x0] * (1.0 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1.0 - fx) + img[y1, x1] * fx
    return top * (1.0 - fy) + bottom * fy
