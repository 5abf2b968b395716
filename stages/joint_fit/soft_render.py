"""A small differentiable renderer for joint fitting (pure torch, vectorised, CPU).

Soft rasterisation of triangle meshes (after SoftRas): every (frame, face, pixel) fragment near a
projected triangle gets a soft coverage ``sigmoid(d / sigma)`` from the pixel centre's signed
distance ``d`` to the triangle's silhouette edges (pixels, positive inside), a perspective-correct
depth and barycentric coordinates. For a closed mesh, faces turned away are culled and edges
shared by two drawn faces cut hard, so only the silhouette is soft and the surface has no seams.
Fragments are enumerated row by row from the triangles' edge lines (integer work, no gradient);
everything computed from the vertex positions is differentiable.

A *layer* is one mesh rendered alone: per pixel a soft silhouette ``alpha = 1 - prod(1 - c)``, a
soft-min depth and a colour, both weighted by ``c * exp(-z / tau)`` over the pixel's fragments.
The base and the moving part are rendered as separate layers and composited by **soft depth
blending** (DreamArt): per pixel a softmax over ``-depth / tau`` weighted by each layer's
coverage decides their mix, and their union coverage lays it over the background.

Only the part moves, so its layer is kept *sparse*: values at the pixels its fragments touch.
Everywhere else the composite is the static base layer, whose loss is computed once; the work
per iteration therefore scales with the part's fragments, not with the image.

Conventions: cameras are OpenCV pinholes (pixel centres at integer + 0.5); dense images are
``(B, H, W)`` / ``(B, H, W, 3)`` float tensors in [0, 1] (batch = frames); sparse values are
indexed by the flat pixel ``b * H * W + y * W + x``; depths in metres.
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
#: Added to an inner edge's distance so that only silhouette edges make coverage soft, pixels.
HARD_EDGE = 1e4


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
    """One mesh rendered alone: alpha, depth (...) and rgb (..., C) (not premultiplied; colour,
    optionally followed by extra channels blended alike), dense images or values at a list of
    pixels."""

    alpha: Tensor
    depth: Tensor
    rgb: Tensor


def rasterize(
    view: View,
    vertices: Tensor,
    faces: Tensor,
    sigma: float,
    margin: float | None = None,
    neighbours: Tensor | None = None,
) -> Fragments:
    """Soft-rasterise a batch of posed copies of one mesh.

    Parameters
    ----------
    view : View
      The camera.
    vertices : (B, V, 3) float
      Vertex positions per frame, base frame, metres (differentiable).
    faces : (F, 3) int64
      Triangles, shared by all frames.
    sigma : float
      Edge softness, pixels; coverage is 0.5 on the edge, 0.95 at ``3 sigma`` inside.
    margin : float, optional
      How far outside a triangle fragments are kept, pixels (default ``4 sigma``).
    neighbours : (F, 3) int64, optional
      For a closed mesh with outward (counter-clockwise) winding: the face across each edge,
      edge ``i`` being the one opposite vertex ``i`` (see :func:`edge_neighbours`). Faces turned
      away from the camera are then dropped (a back face of a closed mesh is always hidden), and
      an edge whose neighbour is drawn too is an inner edge: it cuts hard (each pixel centre
      belongs to the faces on its side), so adjacent faces tile the surface without a
      half-covered seam and only silhouette edges are soft.
    """
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"`vertices` must be (B, V, 3), got {tuple(vertices.shape)}")
    margin = 4.0 * sigma if margin is None else margin
    B, F, W, H = vertices.shape[0], faces.shape[0], view.width, view.height
    uv, z = view.project(vertices)  # (B, V, 2), (B, V)
    tri = uv[:, faces]  # (B, V, 2) -> (B, F, 3, 2)
    tri_z = z[:, faces]  # (B, F, 3)

    # 1. which faces are drawn, and which of their edges are inner edges (no gradient)
    with torch.no_grad():
        area = _cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])  # (B, F) twice the signed area
        drawn = (tri_z > 0).all(dim=2) & (area.abs() > MIN_AREA_PX2)
        inner = torch.zeros(B, F, 3, dtype=torch.bool)
        if neighbours is not None:
            pc = vertices.detach() @ view.R.T + view.t  # (B, V, 3) camera frame
            v0, v1, v2 = pc[:, faces[:, 0]], pc[:, faces[:, 1]], pc[:, faces[:, 2]]
            drawn &= (torch.linalg.cross(v1 - v0, v2 - v0) * v0).sum(-1) < 0  # normal towards the camera
            inner = drawn[:, neighbours.clamp(min=0)] & (neighbours >= 0)  # (B, F, 3): the face across is drawn
        hard = inner.to(tri.dtype) * HARD_EDGE  # lifts inner edges out of the soft-distance minimum

    # 2. per face: the three edge lines e_i(p) = A x + B y + C (positive inside, edge i opposite
    #    vertex i), their inverse lengths, the lift of inner edges and the vertices' 1/z, packed
    #    as (B * F, 3, 6) so that each fragment needs one gather; the soft signed distance to the
    #    face is the minimum over its silhouette edges of e_i * inv_len_i
    nxt, prv = tri.roll(-1, dims=2), tri.roll(-2, dims=2)  # vertex i+1 and i+2 of each corner i
    d = prv - nxt  # (B, F, 3, 2) edge opposite vertex i, from vertex i+1 to i+2
    orient = torch.where(area >= 0, 1.0, -1.0).to(tri.dtype)[..., None]  # (B, F, 1)
    A, Bc = -d[..., 1] * orient, d[..., 0] * orient
    C = (d[..., 1] * nxt[..., 0] - d[..., 0] * nxt[..., 1]) * orient
    inv_len = 1.0 / d.norm(dim=-1).clamp(min=1e-9)
    K = torch.stack([A, Bc, C, inv_len, hard, 1.0 / tri_z], dim=-1).reshape(B * F, 3, 6)

    # 3. enumerate fragments row by row: on each pixel row of a drawn face, the pixel centres
    #    within `margin` of its silhouette edges and inside its inner edges form one span, found
    #    from the three edge lines
    #    (integer and no-gradient work; no pixel outside the grown face is visited)
    with torch.no_grad():
        k = K.detach()
        y_lo = torch.floor(tri[..., 1].amin(dim=2) - 0.5 - margin).long().clamp(min=0).reshape(-1)  # (B * F,)
        y_hi = torch.ceil(tri[..., 1].amax(dim=2) - 0.5 + margin).long().clamp(max=H - 1).reshape(-1)
        rows = ((y_hi - y_lo + 1).clamp(min=0) * drawn.reshape(-1)).long()
        face_of_row = torch.repeat_interleave(torch.arange(B * F), rows)  # (r,)
        y = y_lo[face_of_row] + torch.arange(face_of_row.numel()) - (torch.cumsum(rows, 0) - rows)[face_of_row]
        kr = k[face_of_row]  # (r, 3, 6)
        # edge i as a function of x on this row: s_i(x) = a_i x + b_i with s_i = dist_i + slack_i,
        # the slack being `margin` beyond silhouette edges and none at inner edges, whose far
        # side the neighbouring face covers (a centre on the edge goes to both faces)
        slack = (margin * ~inner).to(tri.dtype).reshape(B * F, 3)[face_of_row]  # (r, 3)
        a = kr[..., 0] * kr[..., 3]
        b = (kr[..., 1] * (y[:, None] + 0.5) + kr[..., 2]) * kr[..., 3] + slack
        b = b + torch.where(inner.reshape(B * F, 3)[face_of_row], 1e-6, 0.0)  # keep centres on the edge
        flat = a.abs() < 1e-12
        root = -b / torch.where(flat, torch.ones_like(a), a)  # s_i(root) = 0
        big = torch.full_like(root, float(W) + 1.0)
        x_lo = torch.where(a > 0, root, torch.where(flat & (b < 0), big, -big)).amax(dim=1)  # s_i > 0 for x > x_lo
        x_hi = torch.where(a < 0, root, torch.where(flat & (b < 0), -big, big)).amin(dim=1)
        # clip to the face's box grown by `margin`: outside an acute corner the edge lines alone
        # would let the span run far along the corner's bisector
        box_lo = (tri[..., 0].amin(dim=2) - margin).reshape(-1)[face_of_row]
        box_hi = (tri[..., 0].amax(dim=2) + margin).reshape(-1)[face_of_row]
        first = torch.ceil(torch.maximum(x_lo, box_lo) - 0.5).long().clamp(min=0)  # centres inside (x_lo, x_hi)
        last = torch.floor(torch.minimum(x_hi, box_hi) - 0.5).long().clamp(max=W - 1)
        span = (last - first + 1).clamp(min=0)
        row = torch.repeat_interleave(torch.arange(span.numel()), span)  # (n,) fragment -> row
        px = first[row] + torch.arange(row.numel()) - (torch.cumsum(span, 0) - span)[row]
        py = y[row]
        owner = face_of_row[row]

    # 4. coverage from the signed distance, perspective-correct depth and barycentrics
    Kn = K[owner]  # (n, 3, 6)
    dist, edges = _edge_terms(Kn, px, py)
    w = edges.clamp(min=0.0)  # barycentrics clamped into the face
    w = w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)
    inv_z = w * Kn[..., 5]  # (n, 3)
    inv_depth = inv_z.sum(dim=1)
    return Fragments(
        batch=owner // F,
        face=owner % F,
        pixel=py * W + px,
        coverage=torch.sigmoid(dist / sigma),
        depth=1.0 / inv_depth,
        bary=inv_z / inv_depth[:, None],
    )


def _edge_terms(K: Tensor, px: Tensor, py: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel centres ``(px + 0.5, py + 0.5)`` (n,) against packed faces ``K`` (n, 3, 6).

    Returns the signed distance to the face's silhouette edges (n,) (pixels, positive inside;
    outside, the distance to the nearest such edge line; ``HARD_EDGE`` for a face without one)
    and the edge functions (n, 3) (positive inside, proportional to the barycentrics).
    """
    x = (px.to(K.dtype) + 0.5)[:, None]
    y = (py.to(K.dtype) + 0.5)[:, None]
    edges = K[..., 0] * x + K[..., 1] * y + K[..., 2]
    return (edges * K[..., 3] + K[..., 4]).amin(dim=1), edges


def edge_neighbours(faces: np.ndarray) -> np.ndarray:
    """(F, 3) int64: the face sharing each face's edge opposite vertex i, -1 on an open edge.

    Parameters
    ----------
    faces : (F, 3) int
      Triangles of a mesh; an edge shared by more than two faces keeps one of them.
    """
    faces = np.asarray(faces, dtype=np.int64)
    F = len(faces)
    # edge i of face f joins vertices (i + 1) % 3 and (i + 2) % 3
    a = faces[:, [1, 2, 0]].reshape(-1)
    b = faces[:, [2, 0, 1]].reshape(-1)
    key = np.minimum(a, b) * (faces.max() + 1) + np.maximum(a, b)  # (3F,) undirected edge id
    order = np.argsort(key, kind="stable")
    ks = key[order]
    out = np.full(3 * F, -1, dtype=np.int64)
    pair = np.flatnonzero(ks[1:] == ks[:-1])  # consecutive equal keys: the two faces of an edge
    first, second = order[pair], order[pair + 1]
    out[first], out[second] = second // 3, first // 3
    return out.reshape(F, 3)


def composite_layer(frags: Fragments, colours: Tensor, height: int, width: int, tau: float) -> tuple[Tensor, Layer]:
    """Aggregate fragments into a sparse layer: values at the pixels the fragments touch.

    Parameters
    ----------
    frags : Fragments
    colours : (n, C) float
      Colour of each fragment, [0, 1] (plus any extra channels to blend alike).
    height, width : int
      Image size.
    tau : float
      Depth softness, metres: a fragment ``tau`` behind another weighs ``1/e`` as much.

    Returns
    -------
    index : (m,) int64
      Flat pixel ``b * H * W + y * W + x`` of each touched pixel, sorted.
    layer : Layer
      alpha, depth (m,) and rgb (m, C) at those pixels.
    """
    flat = frags.batch * (height * width) + frags.pixel  # (n,) flat pixel of each fragment
    index, inv = torch.unique(flat, return_inverse=True)  # (m,), (n,) fragment -> touched pixel
    m = index.numel()
    # alpha = 1 - prod(1 - c) = 1 - exp(sum log(1 - c))
    log_free = torch.zeros(m, dtype=colours.dtype).index_add(0, inv, torch.log1p(-frags.coverage.clamp(max=1 - 1e-6)))
    # soft-min depth: weights c * exp(-z / tau), stabilised by the per-pixel max of the log-weight
    logit = torch.log(frags.coverage) - frags.depth / tau
    with torch.no_grad():
        top = torch.full((m,), -torch.inf, dtype=logit.dtype).scatter_reduce(0, inv, logit, "amax")
    e = torch.exp(logit - top[inv])  # (n,) in (0, 1], at least one 1 per pixel
    den = torch.zeros(m, dtype=e.dtype).index_add(0, inv, e)
    values = torch.cat([frags.depth[:, None], colours], 1)  # (n, 1 + C)
    num = torch.zeros(m, values.shape[1], dtype=e.dtype).index_add(0, inv, e[:, None] * values)
    return index, Layer(alpha=1.0 - torch.exp(log_free), depth=num[:, 0] / den, rgb=num[:, 1:] / den[:, None])


def blend(base: Layer, part: Layer, background: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """Soft depth blending of the base and the part layers over the background.

    Per pixel the two layers mix by ``softmax(log(alpha_i) - depth_i / tau)`` (the nearer covered
    surface wins, smoothly within ``tau`` metres) and the mix covers the background by the union
    coverage ``1 - (1 - alpha_base)(1 - alpha_part)``.

    Parameters
    ----------
    base, part : Layer
      Values at the same pixels: any matching (or broadcasting) shapes, dense or sparse.
    background : (C,) float
      Background colour, [0, 1] (and extra channels).
    tau : float
      Depth softness between the layers, metres.

    Returns
    -------
    alpha : (...) float
      Soft silhouette of the whole object.
    rgb : (..., C) float
      Composite colour (and extra channels).
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
    """z of the 2D cross product over the last axis: (..., 2), (..., 2) -> (...)."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
