"""Vectorised triangle rasterisation with a z-buffer (numpy, CPU).

Used wherever a stage needs to know which face covers which pixel: visibility for mask-guided
segmentation, projecting the photo onto a mesh, rendering frames and photos. Differentiable
rendering for joint fitting lives with the fitter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages._shared.camera import Camera

#: Upper bound on candidate (face, pixel) pairs processed at once; bounds peak memory (~15 MB).
#: Small chunks are also faster (2-4x at 1024x1024 here): their arrays stay in the CPU caches.
MAX_FRAGMENTS_PER_CHUNK = 250_000
#: Points closer than this to the camera plane (metres) are not rasterised.
NEAR_M = 1e-3


@dataclass(frozen=True)
class Raster:
    """Per-pixel visibility of a mesh.

    Attributes
    ----------
    face_id : (H, W) int64
      Index of the visible face, -1 where no face covers the pixel centre.
    depth : (H, W) float
      Camera-frame z of the visible surface, metres; ``inf`` on background.
    bary : (H, W, 3) float
      Perspective-correct barycentric coordinates of the pixel centre in the visible face.
    """

    face_id: np.ndarray
    depth: np.ndarray
    bary: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: pixels covered by the mesh."""
        return self.face_id >= 0


def rasterize(camera: Camera, vertices: np.ndarray, faces: np.ndarray) -> Raster:
    """Rasterise a triangle mesh seen by ``camera``.

    Parameters
    ----------
    camera : Camera
      The viewing camera; its pose places it in the same frame as ``vertices``.
    vertices : (V, 3) float
      Vertex positions in the base frame, metres.
    faces : (F, 3) int
      Triangle vertex indices; either winding is accepted (no back-face culling).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"`vertices` must be (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"`faces` must be (F, 3), got {faces.shape}")
    uv, z = camera.project(vertices)
    return _rasterize_pixels(uv[faces], z[faces], camera.width, camera.height)


def rasterize_uv(uv: np.ndarray, faces: np.ndarray, width: int, height: int) -> Raster:
    """Rasterise a mesh's texture atlas: which face covers each texel, and where in it.

    Parameters
    ----------
    uv : (V, 2) float
      Texture coordinates in [0, 1], OBJ convention (v = 0 at the image's bottom row).
    faces : (F, 3) int
      Triangle vertex indices into ``uv``.
    width, height : int
      Texture size in texels.

    Returns
    -------
    Raster
      ``face_id`` and ``bary`` per texel, row 0 being the top row of the texture image
      (v = 1); ``bary`` is linear (affine) in texture space. ``depth`` is 1.0 on covered
      texels and ``inf`` elsewhere.
    """
    uv = np.asarray(uv, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ValueError(f"`uv` must be (V, 2), got {uv.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"`faces` must be (F, 3), got {faces.shape}")
    texel = np.stack([uv[:, 0] * width, (1.0 - uv[:, 1]) * height], axis=1)  # (V, 2) texel coords
    return _rasterize_pixels(texel[faces], np.ones(faces.shape), int(width), int(height))


def _rasterize_pixels(tri_uv: np.ndarray, tri_z: np.ndarray, W: int, H: int) -> Raster:
    """Z-buffer rasterisation of triangles given in pixel coordinates.

    ``tri_uv`` is (F, 3, 2) float pixel coordinates of each corner (pixel centres at
    integer + 0.5), ``tri_z`` (F, 3) float camera depth of each corner, metres.
    """
    depth_buf = np.full(H * W, np.inf)
    face_buf = np.full(H * W, -1, dtype=np.int64)
    bary_buf = np.zeros((H * W, 3))
    if len(tri_uv) == 0:
        return Raster(face_buf.reshape(H, W), depth_buf.reshape(H, W), bary_buf.reshape(H, W, 3))

    keep = np.all(tri_z > NEAR_M, axis=1) & np.all(np.isfinite(tri_uv), axis=(1, 2))
    lo = np.floor(tri_uv.min(axis=1) - 0.5).astype(np.int64)  # (F, 2) first pixel index
    hi = np.ceil(tri_uv.max(axis=1) - 0.5).astype(np.int64)  # (F, 2) last pixel index
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [W - 1, H - 1])
    size = np.where(keep[:, None], hi - lo + 1, 0).clip(min=0)  # (F, 2) bbox width, height
    counts = size[:, 0] * size[:, 1]
    face_ids = np.flatnonzero(counts)

    # Chunk faces so that the number of candidate fragments stays bounded.
    cum = np.cumsum(counts[face_ids])
    chunk_of = cum // MAX_FRAGMENTS_PER_CHUNK
    for chunk in np.unique(chunk_of):
        fids = face_ids[chunk_of == chunk]
        _rasterize_chunk(fids, counts, lo, size, tri_uv, tri_z, W, depth_buf, face_buf, bary_buf)

    return Raster(face_buf.reshape(H, W), depth_buf.reshape(H, W), bary_buf.reshape(H, W, 3))


def _rasterize_chunk(fids, counts, lo, size, tri_uv, tri_z, W, depth_buf, face_buf, bary_buf):
    n = counts[fids]
    face = np.repeat(fids, n)  # (P,) face of each candidate fragment
    start = np.repeat(np.cumsum(n) - n, n)
    local = np.arange(len(face)) - start
    bw = size[face, 0]
    px = lo[face, 0] + local % bw
    py = lo[face, 1] + local // bw
    p = np.stack([px + 0.5, py + 0.5], axis=1)  # pixel centres

    a, b, c = tri_uv[face, 0], tri_uv[face, 1], tri_uv[face, 2]
    area = _edge(a, b, c)
    valid = np.abs(area) > 1e-12
    safe_area = np.where(valid, area, 1.0)
    w0 = _edge(b, c, p) / safe_area
    w1 = _edge(c, a, p) / safe_area
    w2 = 1.0 - w0 - w1
    eps = -1e-9
    inside = valid & (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
    if not inside.any():
        return
    face, px, py = face[inside], px[inside], py[inside]
    w = np.stack([w0[inside], w1[inside], w2[inside]], axis=1)
    inv_z = w / tri_z[face]  # perspective-correct interpolation of 1/z
    inv_depth = inv_z.sum(axis=1)
    depth = 1.0 / inv_depth
    bary = inv_z / inv_depth[:, None]

    pix = py * W + px
    order = np.lexsort((depth, pix))  # nearest fragment first within each pixel
    pix_sorted = pix[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = pix_sorted[1:] != pix_sorted[:-1]
    win = order[first]
    pix_w = pix[win]
    closer = depth[win] < depth_buf[pix_w]
    pix_w, win = pix_w[closer], win[closer]
    depth_buf[pix_w] = depth[win]
    face_buf[pix_w] = face[win]
    bary_buf[pix_w] = bary[win]


def _edge(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Twice the signed area of triangle (a, b, p), row-wise."""
    return (b[:, 0] - a[:, 0]) * (p[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (p[:, 0] - a[:, 0])


def nearer(a: Raster, b: Raster, b_face_offset: int) -> Raster:
    """Z-buffer two rasters of one camera: per pixel the nearer surface.

    Equals rasterising both meshes as one whose faces are ``a``'s then ``b``'s (``b``'s face ids
    shifted by ``b_face_offset``, the number of ``a``'s faces), so a static mesh rendered once
    can be combined with a moving one rendered per frame.
    """
    b_wins = b.depth < a.depth
    return Raster(
        np.where(b_wins, b.face_id + b_face_offset, a.face_id),
        np.where(b_wins, b.depth, a.depth),
        np.where(b_wins[..., None], b.bary, a.bary),
    )


def interpolate(raster: Raster, faces: np.ndarray, vertex_values: np.ndarray) -> np.ndarray:
    """Interpolate per-vertex values over the visible surface.

    ``vertex_values`` is (V, C); returns (H, W, C) with zeros on background.
    """
    faces = np.asarray(faces, dtype=np.int64)
    values = np.asarray(vertex_values, dtype=np.float64)
    fid = np.where(raster.mask, raster.face_id, 0)
    corner = values[faces[fid]]  # (H, W, 3, C)
    out = np.einsum("hwk,hwkc->hwc", raster.bary, corner)
    out[~raster.mask] = 0.0
    return out


def visible_faces(raster: Raster, n_faces: int) -> np.ndarray:
    """(F,) bool: faces that cover at least one pixel centre."""
    seen = np.zeros(n_faces, dtype=bool)
    seen[raster.face_id[raster.mask]] = True
    return seen
