"""Reading a user's motion clip: a video file or a folder of frames, same camera as the photo.

A clip shows one part moving from rest (frame 0) to open. Frames come back as 8-bit RGB at the
input photo's size, so pixel coordinates in a frame and in the photo refer to the same rays.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from stages._shared.photo import PhotoError, load_photo

log = logging.getLogger(__name__)

#: File suffixes read as frames in a folder clip (other files, e.g. ``.txt``, are ignored).
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Relative difference in aspect ratio (width / height) above which a resized frame is reported.
ASPECT_TOLERANCE = 0.01


def read_clip(path: Path, size: tuple[int, int]) -> tuple[list[np.ndarray], list[str]]:
    """Read a motion clip as RGB frames of the photo's size.

    Parameters
    ----------
    path : Path
      A video file (anything imageio/ffmpeg decodes: MP4, MOV, AVI, WebM, animated GIF) or a
      folder of image files, ordered by natural sort of their names (``f2`` before ``f10``).
    size : (2,) int
      ``(width, height)`` of the input photo; frames of another size are resized to it.

    Returns
    -------
    frames : list of (H, W, 3) uint8
      RGB frames, frame 0 at rest. Transparent pixels are composited over white.
    skipped : list of str
      Names of the folder's image files that could not be decoded (each logged as a warning).

    Raises
    ------
    ValueError
      ``path`` does not exist, the video cannot be decoded, or no frame could be read.
    """
    path = Path(path)
    width, height = int(size[0]), int(size[1])
    if width <= 0 or height <= 0:
        raise ValueError(f"`size` must be a positive (width, height) in pixels, got {size}")
    if not path.exists():
        raise ValueError(f"motion clip {path} does not exist; give a video file or a folder of frames")
    if path.is_dir():
        frames, skipped = _read_folder(path)
    else:
        frames, skipped = _read_video(path), []
    if not frames:
        raise ValueError(
            f"motion clip {path} holds no readable frame ({len(skipped)} unreadable: {skipped[:5]}); "
            f"give a video file or a folder of {'/'.join(FRAME_SUFFIXES)} images"
        )
    for w, h in sorted({f.shape[1::-1] for f in frames}):
        if abs((w / h) / (width / height) - 1.0) > ASPECT_TOLERANCE:
            log.warning(
                "motion clip %s: frames of %dx%d have another aspect ratio than the %dx%d photo; stretching "
                "them, which is right only if the clip was filmed with the photo's camera and then resized",
                path, w, h, width, height,
            )
    return [_fit_size(f, width, height) for f in frames], skipped


def _read_folder(folder: Path) -> tuple[list[np.ndarray], list[str]]:
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES),
        key=lambda p: _natural_key(p.name),
    )
    frames, skipped = [], []
    for file in files:  # one decode per frame file
        try:
            rgb, alpha = load_photo(file)
        except PhotoError as exc:
            log.warning("motion clip %s: skipping frame %s: %s", folder, file.name, exc)
            skipped.append(file.name)
            continue
        frames.append(_over_white(rgb, alpha))
    return frames, skipped


def _read_video(file: Path) -> list[np.ndarray]:
    import imageio.v3 as iio

    try:
        decoded = [np.asarray(f) for f in iio.imiter(file)]
    except (OSError, RuntimeError, ValueError, IndexError) as exc:
        raise ValueError(
            f"motion clip {file} cannot be decoded as a video ({type(exc).__name__}: {exc}); give a video "
            "ffmpeg can read (e.g. H.264 MP4) or a folder of PNG/JPEG frames"
        ) from None
    frames = []
    for f in decoded:
        if f.ndim == 2:  # grayscale video: (H, W) -> (H, W, 3)
            f = np.repeat(f[..., None], 3, axis=2)
        if f.dtype != np.uint8:
            raise ValueError(f"motion clip {file}: frames are {f.dtype}, expected 8-bit; re-encode the video")
        alpha = f[..., 3] if f.shape[2] == 4 else None
        frames.append(_over_white(f[..., :3], alpha))
    return frames


def _over_white(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """(H, W, 3) uint8: ``rgb`` composited over a white background by ``alpha`` (255 = opaque)."""
    if alpha is None:
        return np.ascontiguousarray(rgb)
    a = alpha.astype(np.float32)[..., None] / 255.0
    out = rgb.astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _fit_size(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8: ``frame`` resized (area average when shrinking)."""
    h, w = frame.shape[:2]
    if (w, h) == (width, height):
        return frame
    import cv2

    shrink = w > width or h > height
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _natural_key(name: str) -> list:
    """Sort key splitting digit runs into integers: ``frame_2`` < ``frame_10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]
