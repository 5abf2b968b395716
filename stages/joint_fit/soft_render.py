"""A small differentiable renderer for joint fitting (pure torch, vectorised, CPU).

Soft rasterisation of triangle meshes (after SoftRas): every (frame, face, pixel) fragment near a
projected triangle gets a soft coverage ``sigmoid(d / sigma)`` from the pixel centre's signed
distance ``d`` to the triangle (pixels, positive inside), a perspective-correct depth and
barycentric coordinates. Fragments are enumerated from the triangles' pixel bounding boxes
(integer work, no gradient); everything computed from the vertex positions is differentiable.

A *layer* is one mesh rendered alone: per pixel a soft silhouette ``alpha = 1 - prod(1 - c)``, a
soft-min depth and a colour, both weighted by ``c * exp(-z / tau)`` over the pixel's fragments.
The base and the moving part are rendered as separate layers and composited by **soft depth
blending** (DreamArt): per pixel a softmax over ``-depth / tau`` weighted by each layer's
coverage decides their mix, and their union coverage lays it over the background.

Conventions: cameras are OpenCV pinholes (pixel centres at integer + 0.5); images are
``(B, H, W)`` / ``(B, H, W, 3)`` float tensors in [0, 1] (batch = frames); depths in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from stages._shared.camera import Camera

#: Depth given to pixels a layer does not cover, metres (only ever multiplied by zero weight).
FAR_M = 1e3
#: Smallest triangle area (pixels^2) treated as a triangle; slivers below get no coverage.
MIN_AREA_PX2 = 1e-8


@dataclass(frozen=True)
class View:
    """A camera as torch tensors: ``R``, ``t`` map base points into the camera frame."""

    R: Tensor  # (3, 3)
    t: Tensor  # (3,)
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_camera(cls, camera: Camera, dtype: torch.dtype = torch.float32) -> "View":
        T = camera.T_camera_base
        return cls(
            R=torch.as_tensor(T[:3, :3], dtype=dtype),
            t=torch.as_tensor(T[:3, 3], dtype=dtype),
            fx=camera.fx,
            fy=camera.fy,
            cx=camera.cx,
            cy=camera.cy,
            width=camera.width,
            height=camera.height,
        )

    def project(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """Base-frame points ``(..., 3)`` -> pixel coordinates ``(..., 2)`` and depth ``(...)``."""
        pc = points @ self.R.T + self.t
        z = pc[..., 2]
        uv = torch.stack([self.fx * pc[..., 0] / z + self.cx, self.fy * pc[..., 1] / z + self.cy], dim=-1)
        return uv, z


@dataclass(frozen=True)
class Fragments:
    """Soft fragments of a batch of meshes; ``n`` fragments, each one (frame, face, pixel).

    batch, face, pixel : (n,) int64 -- frame index, face index, ``y * W + x``.
    coverage : (n,) float -- ``sigmoid(d / sigma)`` in (0, 1).
    depth : (n,) float -- perspective-correct camera depth at the pixel centre, metres.
    bary : (n, 3) float -- perspective-correct barycentric coordinates (clamped into the face).
    """

    batch: Tensor
    face: Tensor
    pixel: Tensor
    coverage: Tensor
    depth: Tensor
    bary: Tensor


@dataclass(frozen=True)
class Layer:
    """One mesh rendered alone. alpha, depth : (B, H, W); rgb : (B, H, W, 3) (not premultiplied)."""

    alpha: Tensor
    depth: Tensor
    rgb: Tensor


def rasterize(view: View, vertices: Tensor, faces: Tensor, sigma: float, margin: float | None = None) -> Fragments:
    """Soft-rasterise a batch of posed copies of one mesh.

    Parameters
    ----------
    view : View
      The camera.
    vertices : (B, V, 3) float
      Vertex positions per frame, base frame, metres (differentiable).
    faces : (F, 3) int64
      Triangles, shared by all frames; either winding.
    sigma : float
      Edge softness, pixels; coverage is 0.5 on the edge, 0.95 at ``3 sigma`` inside.
    margin : float, optional
      How far outside a triangle fragments are kept, pixels (default ``4 sigma``).
    """
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"`vertices` must be (B, V, 3), got {tuple(vertices.shape)}")
    margin = 4.0 * sigma if margin is None else margin
    B, F, W, H = vertices.shape[0], faces.shape[0], view.width, view.height
    uv, z = view.project(vertices)  # (B, V, 2), (B, V)
    tri = uv[:, faces]  # (B, V, 2) -> (B, F, 3, 2)
    tri_z = z[:, faces]  # (B, F, 3)

    # 1. enumerate fragments from each triangle's pixel box grown by `margin` (integer work)
    with torch.no_grad():
        lo = torch.floor(tri.amin(dim=2) - 0.5 - margin).long().clamp(min=0)  # (B, F, 2) first pixel
        hi = torch.ceil(tri.amax(dim=2) - 0.5 + margin).long()
        hi = torch.minimum(hi, torch.tensor([W - 1, H - 1]))
        size = (hi - lo + 1).clamp(min=0)
        size = torch.where((tri_z > 0).all(dim=2, keepdim=True), size, torch.zeros_like(size))
        counts = (size[..., 0] * size[..., 1]).reshape(-1)  # (B * F,)
        owner = torch.repeat_interleave(torch.arange(B * F), counts)  # (n,) flat (frame, face)
        start = torch.cumsum(counts, 0) - counts
        local = torch.arange(owner.numel()) - start[owner]
        sx = size.reshape(-1, 2)[owner, 0]
        px = lo.reshape(-1, 2)[owner, 0] + local % sx
        py = lo.reshape(-1, 2)[owner, 1] + local // sx
    b, f = owner // F, owner % F

    # 2. signed distance of the pixel centre to the triangle and 2D barycentrics (differentiable)
    t = tri.reshape(B * F, 3, 2)[owner]  # (n, 3, 2)
    p = torch.stack([px, py], dim=1).to(t.dtype) + 0.5  # (n, 2) pixel centres
    a, bb, c = t[:, 0], t[:, 1], t[:, 2]
    area = _cross(bb - a, c - a)  # (n,) twice the signed area
    orient = torch.where(area >= 0, 1.0, -1.0).to(t.dtype)
    e0 = _cross(c - bb, p - bb) * orient  # opposite vertex a
    e1 = _cross(a - c, p - c) * orient  # opposite vertex b
    e2 = _cross(bb - a, p - a) * orient  # opposite vertex c
    lengths = torch.stack([(c - bb).norm(dim=1), (a - c).norm(dim=1), (bb - a).norm(dim=1)], dim=1).clamp(min=1e-9)
    dist = (torch.stack([e0, e1, e2], dim=1) / lengths).amin(dim=1)  # (n,) px, positive inside
    valid = area.abs() > MIN_AREA_PX2
    coverage = torch.sigmoid(dist / sigma) * valid

    # 3. perspective-correct depth and barycentrics, clamped into the triangle
    w = torch.stack([e0, e1, e2], dim=1).clamp(min=0.0)  # (n, 3)
    w = w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)
    inv_z = w / tri_z.reshape(B * F, 3)[owner]  # (n, 3)
    inv_depth = inv_z.sum(dim=1)
    depth = 1.0 / inv_depth
    bary = inv_z / inv_depth[:, None]
    keep = coverage > 1e-4
    return Fragments(
        batch=b[keep], face=f[keep], pixel=(py * W + px)[keep], coverage=coverage[keep], depth=depth[keep], bary=bary[keep]
    )


def composite_layer(frags: Fragments, colours: Tensor, batch: int, height: int, width: int, tau: float) -> Layer:
    """Aggregate fragments into a layer.

    Parameters
    ----------
    frags : Fragments
    colours : (n, 3) float
      Colour of each fragment, [0, 1].
    batch, height, width : int
      Output size.
    tau : float
      Depth softness, metres: a fragment ``tau`` behind another weighs ``1/e`` as much.
    """
    n_pix = batch * height * width
    idx = frags.batch * (height * width) + frags.pixel  # (n,) flat pixel index
    # alpha = 1 - prod(1 - c) = 1 - exp(sum log(1 - c))
    log_free = torch.zeros(n_pix, dtype=colours.dtype).index_add(0, idx, torch.log1p(-frags.coverage.clamp(max=1 - 1e-6)))
    alpha = 1.0 - torch.exp(log_free)
    # soft-min depth: weights c * exp(-z / tau), stabilised by the per-pixel max of the log-weight
    logit = torch.log(frags.coverage) - frags.depth / tau
    with torch.no_grad():
        top = torch.full((n_pix,), -torch.inf, dtype=logit.dtype).scatter_reduce(0, idx, logit, "amax")
    e = torch.exp(logit - top[idx])  # (n,) in (0, 1]
    den = torch.zeros(n_pix, dtype=e.dtype).index_add(0, idx, e)
    num = torch.zeros(n_pix, 4, dtype=e.dtype).index_add(0, idx, e[:, None] * torch.cat([frags.depth[:, None], colours], 1))
    covered = den > 0
    safe = torch.where(covered, den, torch.ones_like(den))
    depth = torch.where(covered, num[:, 0] / safe, torch.full_like(den, FAR_M))
    rgb = num[:, 1:] / safe[:, None]
    return Layer(
        alpha=alpha.reshape(batch, height, width),
        depth=depth.reshape(batch, height, width),
        rgb=rgb.reshape(batch, height, width, 3),
    )


def blend(base: Layer, part: Layer, background: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """Soft depth blending of the base and the part layers over the background.

    Per pixel the two layers mix by ``softmax(log(alpha_i) - depth_i / tau)`` (the nearer covered
    surface wins, smoothly within ``tau`` metres) and the mix covers the background by the union
    coverage ``1 - (1 - alpha_base)(1 - alpha_part)``.

    Parameters
    ----------
    base, part : Layer
      Same (B, H, W); a static base may have batch 1 (broadcast).
    background : (3,) float
      Background colour, [0, 1].
    tau : float
      Depth softness between the layers, metres.

    Returns
    -------
    alpha : (B, H, W) float
      Soft silhouette of the whole object.
    rgb : (B, H, W, 3) float
      Composite image.
    """
    with torch.no_grad():
        z0 = torch.minimum(base.depth, part.depth)
    wb = base.alpha * torch.exp(-(base.depth - z0) / tau)
    wp = part.alpha * torch.exp(-(part.depth - z0) / tau)
    den = (wb + wp).clamp(min=1e-12)
    mix = (wb[..., None] * base.rgb + wp[..., None] * part.rgb) / den[..., None]
    alpha = 1.0 - (1.0 - base.alpha) * (1.0 - part.alpha)
    rgb = alpha[..., None] * mix + (1.0 - alpha[..., None]) * background
    return alpha, rgb


def sample_image(image: Tensor, uv: Tensor) -> Tensor:
    """Bilinear colours of ``image`` (3, H, W) at pixel coordinates ``uv`` (n, 2) -> (n, 3).

    Differentiable with respect to ``uv``; coordinates outside the image take the border colour.
    """
    H, W = image.shape[1:]
    grid = torch.stack([uv[:, 0] / W * 2 - 1, uv[:, 1] / H * 2 - 1], dim=1)  # align_corners=False
    out = torch.nn.functional.grid_sample(
        image[None], grid[None, None], mode="bilinear", padding_mode="border", align_corners=False
    )  # (1, 3, 1, n)
    return out[0, :, 0].T


def static_layer(camera: Camera, vertices: np.ndarray, faces: np.ndarray, channels, supersample: int = 2):
    """Exact render of a static mesh, anti-aliased by supersampling (numpy, no gradient).

    Parameters
    ----------
    camera : Camera
      Output camera (its width and height are the output size).
    vertices : (V, 3) float
      Base frame, metres. faces : (F, 3) int.
    channels : callable
      ``channels(raster, camera) -> (h, w, C)`` float values per sub-pixel of the supersampled
      ``raster`` seen by ``camera`` (e.g. colours and shading), read only where covered.
    supersample : int
      Sub-pixels per pixel along each side.

    Returns
    -------
    alpha : (H, W) float tensor
      Covered fraction of each pixel.
    depth : (H, W) float tensor
      Mean depth of the covered sub-pixels, metres (``FAR_M`` where uncovered).
    values : (H, W, C) float tensor
      ``channels`` averaged over the covered sub-pixels (0 where uncovered).
    """
    from stages._shared.raster import rasterize as hard_rasterize

    s = int(supersample)
    fine = camera.scaled(s)
    H, W = camera.height, camera.width
    if (fine.width, fine.height) != (W * s, H * s):
        raise ValueError(f"supersample {s} of a {W}x{H} camera gives {fine.width}x{fine.height}")
    r = hard_rasterize(fine, vertices, faces)
    cov = r.mask.astype(np.float64)
    values = np.where(r.mask[..., None], np.asarray(channels(r, fine), dtype=np.float64), 0.0)
    depth = np.where(r.mask, r.depth, 0.0)

    def pool(x):  # (sH, sW, ...) -> (H, W, ...): sum over each pixel's sub-pixels
        return x.reshape(H, s, W, s, *x.shape[2:]).sum(axis=(1, 3))

    n = pool(cov)
    safe = np.maximum(n, 1.0)
    as_t = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    return as_t(n / s**2), as_t(np.where(n > 0, pool(depth) / safe, FAR_M)), as_t(pool(values) / safe[..., None])


def _cross(a: Tensor, b: Tensor) -> Tensor:
    """z of the 2D cross product, row-wise: (n, 2), (n, 2) -> (n,)."""
    return a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
