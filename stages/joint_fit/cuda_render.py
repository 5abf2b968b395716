"""The CUDA path of the joint-fitting renderer: nvdiffrast behind ``soft_render``'s interface.

nvdiffrast point-samples: ``dr.rasterize`` gives per pixel ``(u, v, z/w, triangle_id + 1)`` for
the nearest triangle at the pixel centre, and ``dr.antialias`` afterwards blends each silhouette
edge's pixel pair by the edge's exact position, which is where the gradients of coverage with
respect to the vertices come from. Per frame the moving part is one layer: its covered pixels
become :class:`~stages.joint_fit.soft_render.Fragments` (coverage 1, interpolated depth and
barycentrics), the fitter colours them exactly as in the torch path, and the premultiplied image
(coverage, depth, colour) is antialiased. The pixels it touches form the same sparse
:class:`~stages.joint_fit.soft_render.Layer` that ``soft_render.composite_layer`` gives, which the
fitter composites with the static base layer by the same soft depth blending
(``soft_render.blend``) and scores with the same pixel loss.

Clip space, as nvdiffrast's documentation and sources (``rasterize.cpp``: ``xs = 2 / W``,
``xo = 1 / W - 1``) define it: it draws what has ``x/w, y/w, z/w`` in [-1, 1], keeps the
smallest ``z/w`` per pixel, does not cull back faces, and puts the centre of pixel column ``i``
at ``x/w = 2 (i + 0.5) / W - 1`` and of tensor row ``j`` at ``y/w = 2 (j + 0.5) / H - 1`` (rows
are stored bottom-up, OpenGL's order: row 0 lies at ``y/w = -1``). Our OpenCV pixel coordinates
(``u`` right, ``v`` down, pixel centres at integer + 0.5) therefore map by
``x/w = 2 u / W - 1`` and ``y/w = 2 v / H - 1`` with ``w`` the camera depth in metres. There is
no y flip: OpenCV's y-down image and OpenGL's bottom-up rows cancel, so tensor row ``j`` is image
row ``j`` (a mirror image of OpenGL's convention, which only reverses the screen winding of the
triangles, and nvdiffrast does not cull). Depth maps ``near -> -1`` and ``far -> +1``.

Interpolation is done here in torch (gather + barycentric weights), exactly what
``dr.interpolate`` computes (``u a0 + v a1 + (1 - u - v) a2``, zero off the mesh) and
differentiable in the same way through ``u, v``, so the code that turns a rasteriser output into
a layer is tested on a CPU. Not run on a GPU yet.
"""

from __future__ import annotations

import functools

import importlib
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from stages._shared.raster import NEAR_M
from stages.joint_fit.soft_render import Fragments, Layer, View

#: What the nvdiffrast renderer needs and how to get it, for error messages.
INSTALL_HINT = (
    "it needs an NVIDIA GPU, a CUDA build of torch==2.13.0 and nvdiffrast: pip install "
    "'image-to-urdf[cuda]' (diffrp-nvdiffrast, which compiles its CUDA plugin on first use, so the "
    "CUDA toolkit must be installed too)"
)


def unavailable_reason() -> str | None:
    """Why the nvdiffrast renderer cannot run in this process, or None when it can."""
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        return f"torch {torch.__version__} ({build}) sees no CUDA device"
    try:
        importlib.import_module("nvdiffrast.torch")
    except ImportError as exc:
        return f"nvdiffrast.torch cannot be imported ({exc})"
    return None


def choose_renderer(renderer: str) -> str:
    """The renderer joint_fit runs with for its ``renderer`` setting: ``"torch"`` or ``"nvdiffrast"``.

    ``"auto"`` is nvdiffrast where torch sees a CUDA device and ``nvdiffrast.torch`` imports,
    else the soft torch rasteriser. ``"nvdiffrast"`` where it cannot run raises ImportError
    naming what is missing and the fix.
    """
    if renderer not in ("auto", "torch", "nvdiffrast"):
        raise ValueError(f"`renderer` must be 'auto', 'torch' or 'nvdiffrast', got {renderer!r}")
    if renderer == "torch":
        return "torch"
    missing = unavailable_reason()
    if renderer == "auto":
        return "torch" if missing else "nvdiffrast"
    if missing:
        raise ImportError(
            f"joint_fit renderer 'nvdiffrast' cannot run here: {missing}; {INSTALL_HINT}. "
            "Or set joint_fit.renderer=torch (or auto) to use the CPU renderer"
        )
    return "nvdiffrast"


def context():
    """The process's nvdiffrast ``RasterizeCudaContext`` on the current CUDA device, made once per
    device and shared by every part's fit (each context holds GPU buffers; nvdiffrast compiles
    its CUDA plugin the first time)."""
    return _context(torch.cuda.current_device())


@functools.lru_cache(maxsize=None)
def _context(device: int):
    import nvdiffrast.torch as dr

    return dr.RasterizeCudaContext(device=device)


def clip_matrix(view: View, near: float, far: float) -> Tensor:
    """(4, 4) float: homogeneous base-frame points -> nvdiffrast clip space for ``view``.

    With ``(x, y, z) = R p + t`` the camera-frame point (OpenCV, metres):
    ``x_clip = (2 fx / W) x + (2 cx / W - 1) z``, ``y_clip = (2 fy / H) y + (2 cy / H - 1) z``,
    ``z_clip = (far + near) / (far - near) z - 2 far near / (far - near)``, ``w = z``; so
    ``x_clip / w = 2 u / W - 1`` for the pixel coordinate ``u`` (``v`` likewise) and ``z_clip / w``
    runs from -1 at ``near`` to +1 at ``far`` (metres). See the module docstring for why.
    """
    if not 0 < near < far:
        raise ValueError(f"`near` and `far` must satisfy 0 < near < far, got {near}, {far}")
    W, H = view.width, view.height
    P = torch.tensor(
        [
            [2 * view.fx / W, 0.0, 2 * view.cx / W - 1, 0.0],
            [0.0, 2 * view.fy / H, 2 * view.cy / H - 1, 0.0],
            [0.0, 0.0, (far + near) / (far - near), -2 * far * near / (far - near)],
            [0.0, 0.0, 1.0, 0.0],
        ],
        dtype=view.R.dtype,
    )
    T = torch.eye(4, dtype=view.R.dtype)
    T[:3, :3], T[:3, 3] = view.R, view.t
    return P @ T


def clip_positions(view: View, vertices: Tensor, near: float, far: float) -> Tensor:
    """Base-frame points ``(..., 3)`` (metres) -> clip-space positions ``(..., 4)`` for nvdiffrast."""
    M = clip_matrix(view, near, far).to(vertices)
    return vertices @ M[:, :3].T + M[:, 3]


def fragments_from_raster(rast: Tensor, faces: Tensor, depth: Tensor) -> Fragments:
    """The covered pixels of a rasteriser output in nvdiffrast's layout, as fragments.

    Parameters
    ----------
    rast : (B, H, W, 4) float
      Per pixel ``(u, v, z/w, triangle_id + 1)``, all 0 where no triangle covers the pixel centre;
      ``u, v`` are the perspective-correct barycentric weights of the triangle's first and
      second vertex (the third has ``1 - u - v``).
    faces : (F, 3) int64
      The triangles that were rasterised.
    depth : (B, V) float
      Camera depth of every vertex in every frame, metres.

    Returns
    -------
    Fragments
      One per covered pixel (``pixel = y * W + x``, sorted): coverage 1 (the silhouette is made
      soft by ``dr.antialias`` afterwards), depth at the pixel centre (exact, as the barycentrics
      are perspective-correct) and barycentrics ``(u, v, 1 - u - v)``; differentiable with
      respect to ``u``, ``v`` and ``depth``, as ``dr.interpolate`` is.
    """
    if rast.ndim != 4 or rast.shape[-1] != 4:
        raise ValueError(f"`rast` must be (B, H, W, 4) as dr.rasterize returns it, got {tuple(rast.shape)}")
    W = rast.shape[2]
    with torch.no_grad():
        tri = rast[..., 3].round().long() - 1  # (B, H, W) triangle index, -1 where empty
        b, y, x = torch.nonzero(tri >= 0, as_tuple=True)  # (n,) each
        face = tri[b, y, x]
    uv = rast[b, y, x, :2]  # (n, 2)
    bary = torch.cat([uv, 1.0 - uv.sum(dim=1, keepdim=True)], dim=1)  # (n, 3)
    corner_depth = depth[b[:, None], faces[face]]  # (n, 3)
    return Fragments(
        batch=b,
        face=face,
        pixel=y * W + x,
        coverage=torch.ones_like(bary[:, 0]),
        depth=(bary * corner_depth).sum(dim=1),
        bary=bary,
    )


def premultiplied_image(frags: Fragments, colours: Tensor, batch: int, height: int, width: int) -> Tensor:
    """(B, H, W, 2 + C) dense image of point-sampled fragments (at most one per pixel): coverage,
    then depth (metres) and ``colours`` (n, C), both multiplied by the coverage; 0 elsewhere."""
    c = frags.coverage[:, None]
    values = torch.cat([c, c * frags.depth[:, None], c * colours], dim=1)  # (n, 2 + C)
    flat = frags.batch * (height * width) + frags.pixel
    image = values.new_zeros(batch * height * width, values.shape[1]).index_put((flat,), values)
    return image.reshape(batch, height, width, values.shape[1])  # (B * H * W, 2 + C) -> (B, H, W, 2 + C)


def sparse_layer(image: Tensor) -> tuple[Tensor, Layer]:
    """The pixels of a premultiplied image (see :func:`premultiplied_image`) that it covers at all.

    Returns what ``soft_render.composite_layer`` returns: the flat pixels ``b * H * W + y * W + x``
    (m,) with coverage > 0, sorted, and there the layer's alpha (m,), depth (m,) and colours
    (m, C), no longer premultiplied.
    """
    flat = image.reshape(-1, image.shape[-1])  # (B, H, W, 2 + C) -> (B * H * W, 2 + C)
    with torch.no_grad():
        index = torch.nonzero(flat[:, 0] > 0).squeeze(1)
    values = flat[index]
    alpha = values[:, 0]
    return index, Layer(alpha=alpha, depth=values[:, 1] / alpha, rgb=values[:, 2:] / alpha[:, None])


@dataclass(frozen=True)
class CudaRaster:
    """What ``dr.antialias`` needs besides the image, all on the GPU: ``rast`` (B, H, W, 4),
    the clip-space positions ``pos`` (B, V, 4) and ``tri`` (F, 3) int32."""

    rast: Tensor
    pos: Tensor
    tri: Tensor


def rasterize(glctx, view: View, vertices: Tensor, faces: Tensor) -> tuple[Fragments, CudaRaster]:
    """Point-sample a batch of posed copies of one mesh with nvdiffrast (CUDA).

    Parameters
    ----------
    glctx : nvdiffrast.torch.RasterizeCudaContext
      See :func:`context`.
    view : View
      The camera.
    vertices : (B, V, 3) float
      Vertex positions per frame, base frame, metres (any device; differentiable).
    faces : (F, 3) int64
      Triangles, shared by all frames.

    Returns
    -------
    fragments : Fragments
      One per covered pixel (see :func:`fragments_from_raster`), on ``vertices``' device.
    raster : CudaRaster
      For :func:`antialiased_layer`.
    """
    import nvdiffrast.torch as dr

    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"`vertices` must be (B, V, 3), got {tuple(vertices.shape)}")
    cuda = torch.device("cuda", torch.cuda.current_device())
    v = vertices.to(device=cuda, dtype=torch.float32)
    with torch.no_grad():  # clip planes around the mesh: z/w keeps its precision where the mesh is
        z = v @ view.R[2].to(v) + float(view.t[2])  # (B, V) camera depth
        near = max(0.5 * float(z.min()), NEAR_M)
        far = max(2.0 * float(z.max()), 2.0 * near)
    pos = clip_positions(view, v, near, far).contiguous()  # (B, V, 4)
    tri = faces.to(device=cuda, dtype=torch.int32).contiguous()
    rast, _ = dr.rasterize(glctx, pos, tri, (view.height, view.width), grad_db=False)
    frags = fragments_from_raster(rast, faces.to(cuda), pos[..., 3])  # w = camera depth
    return _to(frags, vertices.device), CudaRaster(rast=rast, pos=pos, tri=tri)


def antialiased_layer(raster: CudaRaster, frags: Fragments, colours: Tensor) -> tuple[Tensor, Layer]:
    """Sparse layer of the fragments of :func:`rasterize` with ``colours`` (n, C), silhouettes
    antialiased by ``dr.antialias`` (its gradients move the vertices); returned on ``colours``'
    device, as :func:`sparse_layer` describes."""
    import nvdiffrast.torch as dr

    B, H, W, _ = raster.rast.shape
    device = raster.rast.device
    image = premultiplied_image(_to(frags, device), colours.to(device), B, H, W)
    image = dr.antialias(image.contiguous(), raster.rast, raster.pos, raster.tri)
    index, layer = sparse_layer(image)
    out = colours.device
    return index.to(out), Layer(alpha=layer.alpha.to(out), depth=layer.depth.to(out), rgb=layer.rgb.to(out))


def _to(frags: Fragments, device) -> Fragments:
    """The same fragments on ``device`` (differentiable)."""
    return Fragments(**{f.name: getattr(frags, f.name).to(device) for f in fields(frags)})
