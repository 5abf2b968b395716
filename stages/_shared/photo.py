"""Reading user photos: validation, EXIF orientation and conversion to 8-bit RGB (+ alpha).

A photo comes from outside the pipeline, so every way it can be unusable (missing, not an image,
cut short, absurdly large, empty) is reported as one :class:`PhotoError` whose message names the
file, the problem and the fix, before any output is written.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

#: Largest photo accepted, in pixels (after decoding); larger files are refused as possible
#: decompression bombs. 64 MP is above any phone or DSLR product photo.
MAX_PIXELS = 64_000_000

#: PIL modes holding one 16-bit channel; their full range 0..65535 maps to 0..255.
_MODES_16BIT = ("I;16", "I;16L", "I;16B", "I;16N")
#: PIL modes that carry an alpha channel (premultiplied ones are un-premultiplied by PIL).
_MODES_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")
#: PIL modes converted by PIL itself to 8-bit RGB.
_MODES_RGB = ("RGB", "L", "1", "P", "CMYK", "YCbCr", "RGBX")


class PhotoError(ValueError):
    """A photo cannot be used; the message names the file, the problem and the fix."""


def check_photo(path: Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Validate a photo fully (complete decode) without keeping its pixels.

    Parameters
    ----------
    path : Path
      The photo file.
    max_pixels : int
      Largest accepted width * height.

    Returns
    -------
    width, height : int
      Size in pixels after EXIF orientation, i.e. the grid that pixel prompts refer to.

    Raises
    ------
    PhotoError
      Missing file, not an image, truncated, too large, empty, of an unsupported pixel mode, or
      blank (a single flat colour, so there is no object to find).
    """
    with _open_decoded(Path(path), int(max_pixels)) as im:
        _check_mode(Path(path), im.mode)
        lo, hi = zip(*(band if isinstance(band, tuple) else (band, band) for band in _extrema(im)))
        if max(h - l for l, h in zip(lo, hi)) <= BLANK_RANGE * (255 if max(hi) <= 255 else max(hi)):
            raise PhotoError(
                f"{path}: the image is blank (one flat colour), there is no object in it; "
                "give a photo of the object"
            )
        return im.size


#: A photo whose pixel values span at most this fraction of the full range in every channel is blank.
BLANK_RANGE = 2 / 255


def _extrema(im) -> list:
    """Per-band (min, max) of a decoded image (palette images by colour, not by index)."""
    extrema = (im.convert("RGBA") if im.mode in ("P", "PA") else im).getextrema()
    return list(extrema) if isinstance(extrema[0], tuple) else [extrema]


def load_photo(path: Path, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a photo as 8-bit RGB, EXIF orientation applied.

    Grayscale, bilevel, palette, CMYK and YCbCr photos are converted to RGB; 16-bit and 32-bit
    integer grayscale are scaled to 8 bits (16-bit: 0..65535 -> 0..255; wider ranges: min..max ->
    0..255), never clipped; float grayscale in [0, 1] is scaled by 255. Arguments and errors are
    those of :func:`check_photo`.

    Returns
    -------
    rgb : (H, W, 3) uint8
      The photo in RGB.
    alpha : (H, W) uint8 or None
      The photo's alpha channel (255 = opaque) when the file has one, else None.
    """
    path = Path(path)
    with _open_decoded(path, int(max_pixels)) as im:
        _check_mode(path, im.mode)
        if im.mode in _MODES_ALPHA or (im.mode == "P" and "transparency" in im.info):
            rgba = np.asarray(im.convert("RGBA"))
            return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
        if im.mode in _MODES_RGB:
            return np.asarray(im.convert("RGB")), None
        gray = _gray_to_uint8(path, np.asarray(im), im.mode)
        return np.repeat(gray[..., None], 3, axis=2), None


@contextlib.contextmanager
def _open_decoded(path: Path, max_pixels: int) -> Iterator:
    """Open ``path``, refuse oversize images, decode fully, apply EXIF orientation; yield the PIL image."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not path.exists():
        raise PhotoError(f"{path}: photo not found; check the path")
    if not path.is_file():
        raise PhotoError(f"{path}: is not a file; give the path of an image file")
    if path.stat().st_size == 0:
        raise PhotoError(f"{path}: file is empty (0 bytes); give a PNG or JPEG photo")
    limit = f"{max_pixels / 1e6:.0f} MP"
    try:
        with warnings.catch_warnings():
            # PIL only warns between its own limit and twice that: make it an error too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(f"{path}: image is larger than {limit} ({exc}); downscale it below {limit}") from None
    except UnidentifiedImageError:
        raise PhotoError(
            f"{path}: not an image file PIL can read (or its header is corrupt); give a PNG or JPEG photo"
        ) from None
    except OSError as exc:
        raise PhotoError(f"{path}: cannot be read ({exc}); check the file's permissions") from None
    with im:
        width, height = im.size
        if width <= 0 or height <= 0:
            raise PhotoError(f"{path}: image has zero size ({width}x{height}); give a non-empty photo")
        if width * height > max_pixels:
            raise PhotoError(
                f"{path}: image is {width}x{height} = {width * height / 1e6:.1f} MP, above the {limit} "
                f"limit (possible decompression bomb); downscale it below {limit}"
            )
        try:
            im.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # OSError "image file is truncated"; SyntaxError/ValueError for corrupt chunks.
            raise PhotoError(
                f"{path}: image data is truncated or corrupt ({exc}); re-export or re-download the photo"
            ) from None
        with ImageOps.exif_transpose(im) as oriented:
            yield oriented


def _check_mode(path: Path, mode: str) -> None:
    if mode in _MODES_ALPHA or mode in _MODES_RGB or mode in _MODES_16BIT or mode in ("I", "F"):
        return
    raise PhotoError(
        f"{path}: unsupported pixel mode {mode!r}; convert the photo to 8-bit RGB (PNG or JPEG)"
    )


def _gray_to_uint8(path: Path, values: np.ndarray, mode: str) -> np.ndarray:
    """(H, W) uint8 from a 16-bit, 32-bit integer or float grayscale array (see :func:`load_photo`)."""
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise PhotoError(f"{path}: {mode!r} image holds NaN or infinite values; export it as 8-bit RGB")
    lo, hi = float(values.min()), float(values.max())
    if mode in _MODES_16BIT or (mode == "I" and lo >= 0 and hi <= 65535):
        scaled = values / 257.0
    elif mode == "F" and lo >= 0 and hi <= 1:
        scaled = values * 255.0
    else:  # a wider or signed range: stretch what is there
        scaled = (values - lo) * (255.0 / max(hi - lo, 1e-12))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
