"""Seeded photo conditions of the third-party set: camera, framing, light, background, shadow, JPEG.

A condition (``draw_condition``) fixes everything about one photo of an object except the object:
azimuth (0-45 deg either side of the front), elevation (5-40 deg), 35 mm-equivalent focal length
(30-70 mm), framing (loose: the object fills 55-85 % of the frame; tight: 100-115 %, a crop that
cuts its edges), one of ``LIGHTING``, one of ``BACKGROUNDS`` (plain white, a grey studio sweep, a
cluttered indoor-like backdrop of random rectangles on a wall/floor gradient), an optional soft
contact shadow on the floor, and a JPEG quality (the photo is written as PNG after a JPEG round
trip, so the case layout is unchanged). Condition ``k`` of an object cycles the background,
lighting and framing so that any three conditions of an object differ in all three.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass

import numpy as np

#: Light set-ups: name -> (ambient, ((direction towards the light, OpenCV camera frame), intensity), ...).
LIGHTING = {
    "studio": (0.40, (((-0.35, -0.85, -0.55), 0.55), ((0.8, -0.15, -0.6), 0.25))),
    "side_window": (0.30, (((-0.9, -0.3, -0.3), 0.80),)),
    "overhead_warm": (0.50, (((0.1, -1.0, -0.15), 0.40), ((0.3, -0.6, -0.75), 0.15))),
}
BACKGROUNDS = ("white", "studio_sweep", "cluttered")
#: Colour tint per light set-up (multiplies the rendered object's RGB).
TINT = {"studio": (1.0, 1.0, 1.0), "side_window": (0.96, 0.99, 1.05), "overhead_warm": (1.06, 1.0, 0.9)}
AZIMUTH_DEG, ELEVATION_DEG, FOCAL_MM = (0.0, 45.0), (5.0, 40.0), (30.0, 70.0)
FILL_LOOSE, FILL_TIGHT = (0.55, 0.85), (1.0, 1.15)
JPEG_QUALITY = (55, 95)
#: Side of a square 35 mm-equivalent sensor with the full frame's diagonal (43.27 mm / sqrt 2), mm.
SQUARE_SENSOR_MM = 30.6


@dataclass(frozen=True)
class Condition:
    """One photo condition (angles in degrees, focal length in 35 mm-equivalent mm)."""

    index: int
    seed: int
    azimuth_deg: float
    elevation_deg: float
    focal_mm: float
    fill: float
    framing: str
    lighting: str
    background: str
    shadow: bool
    jpeg_quality: int

    @property
    def fov_y(self) -> float:
        """Vertical field of view of a square image, rad."""
        return 2.0 * float(np.arctan(SQUARE_SENSOR_MM / (2.0 * self.focal_mm)))

    def to_dict(self) -> dict:
        return asdict(self)


def draw_condition(object_name: str, index: int, attempt: int = 0) -> Condition:
    """Condition ``index`` of ``object_name`` (deterministic); ``attempt`` redraws the camera only."""
    seed = zlib.crc32(f"{object_name}/{index}".encode())
    shift = zlib.crc32(object_name.encode())  # per object, so its conditions cycle the light set-ups
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(b"conditions")]))
    cam = np.random.default_rng(np.random.SeedSequence([seed, attempt, zlib.crc32(b"camera")]))
    tight = index % 3 == 2
    return Condition(
        index=index,
        seed=seed,
        azimuth_deg=float(cam.uniform(*AZIMUTH_DEG) * cam.choice([-1.0, 1.0])),
        elevation_deg=float(cam.uniform(*ELEVATION_DEG)),
        focal_mm=float(cam.uniform(*FOCAL_MM)),
        fill=float(cam.uniform(*(FILL_TIGHT if tight else FILL_LOOSE))),
        framing="tight" if tight else "loose",
        lighting=list(LIGHTING)[(index + shift) % len(LIGHTING)],
        background=BACKGROUNDS[index % len(BACKGROUNDS)],
        shadow=bool(rng.random() < 0.5) and index % 3 != 0,
        jpeg_quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)),
    )


def background_image(kind: str, height: int, width: int, seed: int) -> np.ndarray:
    """(H, W, 3) uint8 backdrop: ``"white"``, ``"studio_sweep"`` or ``"cluttered"`` (seeded)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(b"background")]))
    y = (np.arange(height, dtype=np.float64)[:, None] + 0.5) / height  # 0 top .. 1 bottom
    x = (np.arange(width, dtype=np.float64)[None, :] + 0.5) / width
    if kind == "white":
        return np.full((height, width, 3), 255, dtype=np.uint8)
    if kind == "studio_sweep":
        grey = rng.uniform(150, 215)
        curve = 0.55 + 0.08 * np.cos(2 * np.pi * (x - 0.5))  # the sweep's bend, brighter at the centre
        level = grey + 40 * (1 - y) - 35 * np.clip((y - curve) * 4, 0, 1) - 25 * (x - 0.5) ** 2
        return np.repeat(np.clip(level, 0, 255)[..., None], 3, axis=2).astype(np.uint8)
    if kind == "cluttered":
        wall, floor = rng.uniform(90, 220, 3), rng.uniform(60, 170, 3)
        horizon = rng.uniform(0.55, 0.8)
        img = np.where((y < horizon)[..., None], wall * (0.85 + 0.15 * y[..., None]), floor * (1.1 - 0.3 * y[..., None]))
        img = np.broadcast_to(img, (height, width, 3)).copy()
        n = int(rng.integers(12, 25))
        boxes = rng.uniform(0, 1, (n, 4))
        colours = rng.uniform(20, 240, (n, 3))
        x0, x1 = np.minimum(boxes[:, 0], boxes[:, 1]), np.maximum(boxes[:, 0], boxes[:, 1])
        y0, y1 = np.minimum(boxes[:, 2], boxes[:, 3]) * horizon, np.maximum(boxes[:, 2], boxes[:, 3]) * horizon * 1.1
        inside = (x >= x0[:, None, None]) & (x < x1[:, None, None]) & (y >= y0[:, None, None]) & (y < y1[:, None, None])
        top = np.where(inside.any(axis=0), n - 1 - np.argmax(inside[::-1], axis=0), -1)  # last drawn wins
        img = np.where((top >= 0)[..., None], colours[np.maximum(top, 0)], img)
        from scipy.ndimage import gaussian_filter

        img = gaussian_filter(img, sigma=(1.5, 1.5, 0))  # out of focus
        img += rng.normal(0, 3, img.shape)
        return np.clip(img, 0, 255).astype(np.uint8)
    raise ValueError(f"`kind` must be one of {BACKGROUNDS}, got {kind!r}")


def floor_shadow(camera, points: np.ndarray, height: int, width: int, light_deg: float = 25.0) -> np.ndarray:
    """(H, W) float in [0, 1]: a soft contact shadow of ``points`` on the floor (base z = 0).

    The object's points (base frame, metres) are cast onto the floor along a light from
    ``light_deg`` off vertical, behind-left of the camera, splatted into the image and blurred.
    """
    from scipy.ndimage import gaussian_filter

    points = np.asarray(points, dtype=np.float64)
    cam_x = camera.pose[:3, 0]
    d = np.array([cam_x[0], cam_x[1], 0.0])
    d = d / max(np.linalg.norm(d), 1e-9) * np.tan(np.deg2rad(light_deg))
    cast = points[:, :2] + points[:, 2:3] * d[:2]  # along -(light) onto z = 0
    floor = np.column_stack([cast, np.zeros(len(cast))])
    uv, z = camera.project(floor)
    ok = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
    img = np.zeros((height, width))
    np.add.at(img, (uv[ok, 1].astype(int), uv[ok, 0].astype(int)), 1.0)
    img = gaussian_filter((img > 0).astype(np.float64), sigma=max(height, width) / 512 * 3)
    img = gaussian_filter(np.clip(img * 4, 0, 1), sigma=max(height, width) / 512 * 8)
    return np.clip(img / max(img.max(), 1e-9), 0, 1)


def finish_photo(rgb: np.ndarray, mask: np.ndarray, cond: Condition, backdrop: np.ndarray,
                 shadow: np.ndarray | None = None) -> np.ndarray:
    """The photo under ``cond``: the render (on white) tinted, composited over the backdrop
    (darkened by ``shadow``) with a soft edge, then round-tripped through JPEG.

    rgb : (H, W, 3) uint8 render. mask : (H, W) bool foreground. Returns (H, W, 3) uint8.
    """
    import io

    import PIL.Image
    from scipy.ndimage import gaussian_filter

    alpha = gaussian_filter(mask.astype(np.float64), 0.6)[..., None]
    alpha = np.where(mask[..., None], np.maximum(alpha, 0.5), alpha)
    back = backdrop.astype(np.float64)
    if shadow is not None:
        back = back * (1.0 - 0.45 * shadow[..., None])
    obj = rgb.astype(np.float64) * np.asarray(TINT[cond.lighting])
    out = np.clip(alpha * obj + (1 - alpha) * back, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    PIL.Image.fromarray(out).save(buf, format="JPEG", quality=int(cond.jpeg_quality))
    return np.asarray(PIL.Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
