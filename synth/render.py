"""Deterministic product-photo rendering of synth objects (numpy, CPU).

Flat-shaded Lambertian surfaces lit by an ambient term and two soft directional lights fixed in
the camera frame (so every view is lit like a studio photo), anti-aliased by supersampling and
area downsampling. Masks and depth come from the same supersampled raster by a majority rule, so
``mask == isfinite(depth)`` holds exactly and every part mask lies inside the foreground mask.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from stages._shared.camera import Camera, orbit_camera
from stages._shared.raster import rasterize
from synth.objects import SynthObject

#: Ambient light term (fraction of albedo lit everywhere).
AMBIENT = 0.40
#: Directional lights: (direction towards the light in the OpenCV camera frame, intensity).
#: A key light above-left of the camera and a weaker fill from the right.
LIGHTS_CAMERA = (((-0.35, -0.85, -0.55), 0.55), ((0.8, -0.15, -0.6), 0.25))
#: Ranges of the product camera: azimuth and elevation (degrees), vertical field of view
#: (degrees) and the fraction of the frame the object's larger projected side fills.
AZIMUTH_DEG = (-45.0, 45.0)
ELEVATION_DEG = (8.0, 30.0)
FOV_Y_DEG = (30.0, 50.0)
FILL = (0.6, 0.75)


@dataclass(frozen=True, eq=False)
class RenderedView:
    """A rendered photo and its exact annotations.

    Attributes
    ----------
    rgb : (H, W, 3) uint8
      The photo.
    mask : (H, W) bool
      Foreground: pixels whose majority of subsamples hit the object.
    part_masks : dict of str to (H, W) bool
      Visible pixels of each movable part (by part name); disjoint and inside ``mask``.
    depth : (H, W) float
      Camera-frame z of the visible surface, metres (mean over the pixel's winning subsamples);
      ``inf`` where ``mask`` is False.
    """

    rgb: np.ndarray
    mask: np.ndarray
    part_masks: dict[str, np.ndarray]
    depth: np.ndarray


def render_view(
    obj: SynthObject,
    camera: Camera,
    joint_values: dict[str, float] | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
    supersample: int = 2,
) -> RenderedView:
    """Render ``obj`` seen by ``camera`` with its parts at ``joint_values``.

    Parameters
    ----------
    obj : SynthObject
      The object; meshes are in the base frame.
    camera : Camera
      Camera posed in the base frame; the output has its width and height.
    joint_values : dict of str to float, optional
      Joint value (rad or m) per part name; unnamed parts stay at rest.
    background : (3,) int
      RGB of pixels the object does not cover.
    supersample : int
      Subsamples per pixel side (``supersample**2`` per pixel) for anti-aliasing.
    """
    background = np.asarray(background)
    if background.shape != (3,) or background.min() < 0 or background.max() > 255:
        raise ValueError(f"`background` must be 3 ints in [0, 255], got {background.tolist()}")
    if int(supersample) != supersample or supersample < 1:
        raise ValueError(f"`supersample` must be an int >= 1, got {supersample!r}")
    s = int(supersample)
    H, W = camera.height, camera.width

    # 1. Scene: base then parts, with a link index and a colour per face.
    meshes = obj.posed(joint_values)
    n_faces = np.array([len(m.faces) for m in meshes])
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    vertices = np.concatenate([m.vertices for m in meshes])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets)])
    link = np.repeat(np.arange(len(meshes)), n_faces)  # 0 = base, k = parts[k - 1]
    albedo = np.concatenate([m.visual.face_colors[:, :3] for m in meshes]).astype(np.float64) / 255.0

    # 2. Flat Lambertian shading, normals turned towards the camera.
    tri = vertices[faces]  # (F, 3, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-20)
    facing = np.einsum("fk,fk->f", normals, camera.position - tri.mean(axis=1))
    normals *= np.where(facing < 0, -1.0, 1.0)[:, None]
    R = camera.pose[:3, :3]
    light = np.full(len(faces), AMBIENT)
    for direction, intensity in LIGHTS_CAMERA:
        d = R @ (np.asarray(direction) / np.linalg.norm(direction))  # camera -> base frame
        light += intensity * np.clip(normals @ d, 0.0, None)
    face_rgb = np.clip(albedo * light[:, None], 0.0, 1.0)

    # 3. Supersampled raster, then area downsampling.
    raster = rasterize(camera.scaled(s) if s > 1 else camera, vertices, faces)
    hit = raster.face_id >= 0
    fid = np.where(hit, raster.face_id, 0)
    sub_rgb = np.where(hit[..., None], face_rgb[fid], background / 255.0)  # (H*s, W*s, 3)
    rgb = sub_rgb.reshape(H, s, W, s, 3).mean(axis=(1, 3))
    rgb = np.round(rgb * 255.0).astype(np.uint8)

    # 4. Masks and depth by majority over each pixel's subsamples (ties: lower link index wins).
    n_links = len(meshes)
    labels = np.where(hit, link[fid], n_links)  # n_links = background
    labels = labels.reshape(H, s, W, s).transpose(0, 2, 1, 3).reshape(H, W, s * s)
    depth_sub = raster.depth.reshape(H, s, W, s).transpose(0, 2, 1, 3).reshape(H, W, s * s)
    counts = (labels[..., None] == np.arange(n_links + 1)).sum(axis=2)  # (H, W, n_links + 1)
    winner = counts.argmax(axis=2)
    mask = winner != n_links
    chosen = labels == winner[..., None]
    depth_sum = np.where(chosen & mask[..., None], depth_sub, 0.0).sum(axis=2)
    depth = np.full((H, W), np.inf)
    depth[mask] = depth_sum[mask] / chosen.sum(axis=2)[mask]
    part_masks = {p.name: winner == k + 1 for k, p in enumerate(obj.parts)}
    return RenderedView(rgb=rgb, mask=mask, part_masks=part_masks, depth=depth)


def product_camera(obj: SynthObject, seed: int, width: int = 512, height: int = 512) -> Camera:
    """A seeded 3/4 or front product-photo camera looking at ``obj`` at rest.

    Azimuth is drawn from ``AZIMUTH_DEG`` (0 = straight at the front, +x), elevation from
    ``ELEVATION_DEG``, vertical field of view from ``FOV_Y_DEG``; the distance makes the object's
    larger projected side fill a fraction drawn from ``FILL`` of the frame, and the object is
    centred in the image.
    """
    if int(seed) != seed or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(b"product_camera")]))
    azimuth = np.deg2rad(rng.uniform(*AZIMUTH_DEG))
    elevation = np.deg2rad(rng.uniform(*ELEVATION_DEG))
    fov_y = np.deg2rad(rng.uniform(*FOV_Y_DEG))
    fill = rng.uniform(*FILL)

    points = np.concatenate([m.vertices for m in [obj.base] + [p.mesh for p in obj.parts]])
    bounds = obj.bounds
    target = bounds.mean(axis=0)
    diag = float(np.linalg.norm(bounds[1] - bounds[0]))
    camera = None
    for _ in range(3):  # alternate: distance for the fill, then re-centre the projection
        distance = _distance_for_fill(points, target, azimuth, elevation, fov_y, width, height, fill, diag)
        camera = orbit_camera(target, distance, azimuth, elevation, fov_y, width, height)
        uv, _ = camera.project(points)
        off = (uv.min(axis=0) + uv.max(axis=0)) / 2 - np.array([camera.cx, camera.cy])
        R = camera.pose[:3, :3]
        target = target + (R[:, 0] * off[0] / camera.fx + R[:, 1] * off[1] / camera.fy) * distance
    return orbit_camera(target, distance, azimuth, elevation, fov_y, width, height)


def _distance_for_fill(points, target, azimuth, elevation, fov_y, width, height, fill, diag) -> float:
    """Bisection on the camera distance so that the projected extent fills ``fill`` of the frame."""
    lo, hi = 0.6 * diag, 60.0 * diag
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        cam = orbit_camera(target, mid, azimuth, elevation, fov_y, width, height)
        uv, z = cam.project(points)
        span = max(np.ptp(uv[:, 0]) / width, np.ptp(uv[:, 1]) / height) if np.all(z > 0) else np.inf
        lo, hi = (mid, hi) if span > fill else (lo, mid)
    return hi


def render_clip(
    obj: SynthObject,
    camera: Camera,
    part_name: str,
    n_frames: int = 16,
    background: tuple[int, int, int] = (255, 255, 255),
    supersample: int = 2,
) -> list[RenderedView]:
    """Frames of ``part_name`` moving from rest (0) to its opening limit, other parts at rest.

    The opening limit is the joint limit of larger magnitude (for a laptop lid photographed open,
    the direction that closes it). Joint values are evenly spaced, first frame at rest.
    """
    if int(n_frames) != n_frames or n_frames < 2:
        raise ValueError(f"`n_frames` must be an int >= 2, got {n_frames!r}")
    part = obj.part(part_name)
    values = np.linspace(0.0, part.opening_limit, int(n_frames))
    return [render_view(obj, camera, {part_name: float(v)}, background, supersample) for v in values]


def click_point(mask: np.ndarray) -> tuple[int, int]:
    """A pixel well inside ``mask``, near its centroid: the prompt a user would click.

    Among pixels whose distance to the mask boundary is at least half the largest such distance,
    the one closest to the mask's centroid.

    Parameters
    ----------
    mask : (H, W) bool
      A part's visible pixels.

    Returns
    -------
    x, y : int
      Column and row of the chosen pixel.
    """
    from scipy.ndimage import distance_transform_edt

    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != bool:
        raise ValueError(f"`mask` must be (H, W) bool, got {mask.shape} {mask.dtype}")
    if not mask.any():
        raise ValueError("`mask` is empty: the part is not visible in this view; pick another camera")
    inner = distance_transform_edt(mask)
    ys, xs = np.nonzero(inner >= 0.5 * inner.max())
    my, mx = np.nonzero(mask)
    k = np.argmin((xs - mx.mean()) ** 2 + (ys - my.mean()) ** 2)
    return int(xs[k]), int(ys[k])
