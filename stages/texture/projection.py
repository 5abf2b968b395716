"""Texture backend "projection": bake the input photo onto a UV atlas of every link.

For each link mesh (the amodal base and parts, base frame at rest):

1. cut a UV atlas with xatlas;
2. rasterise the mesh in texture space, giving each texel a 3D point and a face normal;
3. project the texel into the photo with the estimated camera and keep it where the surface is
   seen: in front of the depth buffer of all links together (at rest), facing the camera, inside
   the foreground mask;
4. sample the photo there (bilinear) and fill every texel the photo does not show, so that no
   texel is left black.

Each link is written as ``<link>.obj`` + ``<link>.mtl`` + ``<link>.png``.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stages._shared.camera import Camera
from stages._shared.io import read_mask, read_mesh, read_rgb, write_textured_obj
from stages._shared.raster import NEAR_M, interpolate, rasterize, rasterize_uv
from stages._shared.sampling import sample_bilinear

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["projection"] = "projection"
    texture_size: int = Field(1024, ge=16, le=8192, description="Side of each link's square texture, texels.")
    padding_texels: int = Field(4, ge=0, description="Gap between UV charts in the atlas, texels.")
    depth_tolerance_m: float = Field(
        0.004, gt=0, description="A texel is seen if it lies at most this far behind the depth buffer, metres."
    )
    min_facing_cos: float = Field(
        0.05, ge=0, lt=1, description="Least cosine between surface normal and direction to the camera for a seen texel."
    )
    mask_erode_px: int = Field(1, ge=0, description="Foreground mask erosion before sampling, pixels (keeps background out).")
    fill: Literal["median", "telea"] = Field(
        "median",
        description="Unseen texels: 'median' seen colour of the link, or 'telea' inpainting across the atlas.",
    )
    inpaint_radius_px: int = Field(3, ge=1, description="Telea inpainting radius, texels (fill='telea' only).")


def run(cfg: Config, fg, recon, part_names: tuple[str, ...], amodal, out_dir: Path):
    """Texture the base and every part from the photo.

    Parameters
    ----------
    cfg : Config
    fg : ForegroundResult
      ``image`` is the photo whose pixels are projected; ``mask`` limits sampling to the object.
    recon : ReconstructResult
      ``camera`` saw the photo (base frame).
    part_names : tuple of str
      ``part_names[k]`` names the link of ``amodal.part_meshes[k]``.
    amodal : AmodalResult
      Watertight base and part meshes (GLB, base frame at rest, metres).
    out_dir : Path
      Receives ``<link>.obj``, ``<link>.mtl``, ``<link>.png`` per link.

    Returns
    -------
    TextureResult
    """
    from stages.texture import TextureResult

    # 1. Check inputs
    started = time.perf_counter()
    part_names = tuple(part_names)
    if len(part_names) != len(amodal.part_meshes):
        raise ValueError(
            f"`part_names` must name each of the {len(amodal.part_meshes)} amodal part meshes, "
            f"got {len(part_names)} names {part_names}"
        )
    links = ("base",) + part_names
    for link in links:
        if not _NAME.match(link):
            raise ValueError(f"link name {link!r} must match [A-Za-z0-9_]+; rename the part")
    if len(set(links)) != len(links):
        raise ValueError(f"link names must be unique and no part may be called 'base', got {links}")
    photo = read_rgb(fg.image)
    mask = read_mask(fg.mask)
    camera = _camera_for_photo(recon.camera, photo.shape[1], photo.shape[0])
    if mask.shape != photo.shape[:2]:
        raise ValueError(f"foreground mask {fg.mask} is {mask.shape}, the photo {fg.image} is {photo.shape[:2]}")

    # 2. Depth buffer of all links together, at rest: what the camera sees
    meshes = [read_mesh(amodal.base_mesh)] + [read_mesh(p) for p in amodal.part_meshes]
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    all_vertices = np.concatenate([m.vertices for m in meshes])
    all_faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets)])
    face_link = np.concatenate([np.full(len(m.faces), i) for i, m in enumerate(meshes)])  # (F,)
    scene = rasterize(camera, all_vertices, all_faces)
    scene_link = np.where(scene.mask, face_link[scene.face_id.clip(min=0)], -1)  # (H, W) link index
    sample_mask = _erode(mask, cfg.mask_erode_px)
    object_colour = np.median(photo[sample_mask], axis=0) if sample_mask.any() else None

    # 3. Bake each link
    out_dir = Path(out_dir)
    textured = []
    for index, (link, mesh) in enumerate(zip(links, meshes)):
        textured.append(
            _bake_link(cfg, link, index, mesh, photo, sample_mask, camera, scene, scene_link, object_colour, out_dir)
        )
    seen = ", ".join(f"{t.link} {t.seen_fraction:.2f}" for t in textured)
    log.info(
        "texture: %d links at %d px, seen fraction %s, %.1f s",
        len(textured),
        cfg.texture_size,
        seen,
        time.perf_counter() - started,
    )
    return TextureResult(base=textured[0], parts=tuple(textured[1:]))


def _camera_for_photo(camera: Camera, width: int, height: int) -> Camera:
    """The camera at the photo's pixel grid (rescaled if the reconstruction used another size)."""
    if (camera.width, camera.height) == (width, height):
        return camera
    factor = width / camera.width
    if abs(camera.height * factor - height) > 1.0:
        raise ValueError(
            f"recon.camera is {camera.width}x{camera.height} but the photo is {width}x{height}, "
            "a different aspect ratio; the camera must be estimated on the foreground stage's image"
        )
    return camera.scaled(factor)


def _erode(mask: np.ndarray, px: int) -> np.ndarray:
    if px == 0:
        return mask
    import cv2

    kernel = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel) > 0


def _atlas(vertices: np.ndarray, faces: np.ndarray, cfg: Config) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UV atlas of a mesh.

    Returns
    -------
    vmapping : (V', ) int
      Original vertex of each atlas vertex (vertices are split along chart seams).
    faces : (F, 3) int
      Faces into the atlas vertices, same order as the input faces.
    uv : (V', 2) float
      Texture coordinates in [0, 1].
    """
    import xatlas

    atlas = xatlas.Atlas()
    atlas.add_mesh(np.asarray(vertices, dtype=np.float32), np.asarray(faces, dtype=np.uint32))
    pack = xatlas.PackOptions()
    pack.resolution = cfg.texture_size
    pack.padding = cfg.padding_texels
    pack.bilinear = True
    atlas.generate(pack_options=pack)
    vmapping, new_faces, uv = atlas[0]
    return vmapping.astype(np.int64), new_faces.astype(np.int64), uv.astype(np.float64)


def _bake_link(
    cfg: Config,
    link: str,
    link_index: int,
    mesh,
    photo: np.ndarray,
    sample_mask: np.ndarray,
    camera: Camera,
    scene,
    scene_link: np.ndarray,
    object_colour: np.ndarray | None,
    out_dir: Path,
):
    """Atlas, bake and fill one link; write its OBJ/MTL/PNG.

    ``scene`` is the Raster of all links together at rest and ``scene_link`` (H, W) int the link
    index seen at each pixel (-1 on background); ``link_index`` is this link's index there.
    """
    import PIL.Image
    import trimesh

    from stages.texture import TexturedMesh

    S = cfg.texture_size
    vmapping, faces, uv = _atlas(mesh.vertices, mesh.faces, cfg)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)[vmapping]
    solid = trimesh.Trimesh(vertices, faces, process=False)
    normals = solid.face_normals * (1.0 if solid.volume >= 0 else -1.0)  # (F, 3) outward

    # Texel -> surface point and normal
    texels = rasterize_uv(uv, faces, S, S)
    covered = texels.mask  # (S, S) texels inside a chart
    points = interpolate(texels, faces, vertices)[covered]  # (N, 3) base frame
    face_of = texels.face_id[covered]  # (N,)

    # Visibility in the photo. The texel must face the camera, fall inside the (eroded)
    # foreground mask, lie on this link's surface in the photo (nearest pixel), and not be behind
    # the depth buffer of all links. The depth test uses the farthest of the 2x2 pixel centres
    # around the texel: a surface seen at a grazing angle changes depth a lot from one pixel
    # centre to the next, while a real occluder covers all four.
    px, depth = camera.project(points)  # (N, 2) pixels, (N,) metres
    scene_depth = scene.depth  # (H, W) metres, inf on background
    H, W = scene_depth.shape
    ix = np.floor(px[:, 0]).astype(np.int64)
    iy = np.floor(px[:, 1]).astype(np.int64)
    inside = (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H) & (depth > NEAR_M)
    ix, iy = ix.clip(0, W - 1), iy.clip(0, H - 1)
    to_camera = camera.position - points
    cos = np.einsum("nk,nk->n", normals[face_of], to_camera) / np.linalg.norm(to_camera, axis=1)
    facing = cos > cfg.min_facing_cos
    x0 = np.floor(px[:, 0] - 0.5).astype(np.int64)
    y0 = np.floor(px[:, 1] - 0.5).astype(np.int64)
    xs = np.stack([x0, x0 + 1, x0, x0 + 1], axis=1).clip(0, W - 1)  # (N, 4)
    ys = np.stack([y0, y0, y0 + 1, y0 + 1], axis=1).clip(0, H - 1)
    unoccluded = depth <= scene_depth[ys, xs].max(axis=1) + cfg.depth_tolerance_m
    own = scene_link[iy, ix] == link_index
    seen = inside & facing & unoccluded & own & sample_mask[iy, ix]

    # Sample the photo (bilinear)
    colours = np.round(sample_bilinear(photo, px[seen])).clip(0, 255).astype(np.uint8)

    texture = np.zeros((S, S, 3), dtype=np.uint8)
    known = np.zeros((S, S), dtype=bool)
    rows, cols = np.nonzero(covered)
    texture[rows[seen], cols[seen]] = colours
    known[rows[seen], cols[seen]] = True
    texture = _fill(cfg, link, texture, known, covered, object_colour)

    seen_fraction = float(seen.sum() / max(len(seen), 1))
    out = trimesh.Trimesh(
        vertices,
        faces,
        visual=trimesh.visual.TextureVisuals(
            uv=uv, material=trimesh.visual.material.SimpleMaterial(image=PIL.Image.fromarray(texture))
        ),
        process=False,
    )
    obj, mtl, png = write_textured_obj(out_dir / f"{link}.obj", out)
    return TexturedMesh(link=link, obj=obj, mtl=mtl, png=png, seen_fraction=seen_fraction)


def _fill(
    cfg: Config,
    link: str,
    texture: np.ndarray,
    known: np.ndarray,
    covered: np.ndarray,
    object_colour: np.ndarray | None,
) -> np.ndarray:
    """Colour every texel the photo did not give.

    ``known`` (S, S) bool marks texels sampled from the photo, ``covered`` those inside a chart.
    Unseen chart texels get the link's median seen colour ('median') or Telea inpainting
    ('telea'); the gutter between charts then takes its nearest chart texel, so bilinear lookups
    at chart borders never mix in black. A link the photo does not show at all takes the median
    colour of the whole object.
    """
    import cv2
    from scipy import ndimage

    if not known.any():
        if object_colour is None:
            raise ValueError(f"link {link!r}: the foreground mask is empty, no colour to texture it with")
        log.info("texture: link %r is not seen in the photo; using the object's median colour", link)
        texture = np.empty_like(texture)
        texture[:] = np.round(object_colour).astype(np.uint8)
        return texture
    texture = texture.copy()
    if cfg.fill == "median":
        texture[covered & ~known] = np.median(texture[known], axis=0).round().astype(np.uint8)
    else:
        texture = cv2.inpaint(texture, (~known).astype(np.uint8), cfg.inpaint_radius_px, cv2.INPAINT_TELEA)
    # Gutter: copy the nearest chart texel (vectorised via the distance transform's indices).
    filled = covered | known
    _, (iy, ix) = ndimage.distance_transform_edt(~filled, return_indices=True)
    return texture[iy, ix]
