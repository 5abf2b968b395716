"""Amodal backend "solid": complete each part into a watertight solid and carve its cavity.

DreamArt completes the segmented part and base meshes with HoloPart and inpaints amodal images
of each. A box-like object's parts are simple enough to complete by construction: each part is
a panel on one face of the object's box (found from its segmented faces and its mask), so

- a door (revolute) is a panel of ``panel_thickness`` over its rectangle, ``gap`` short of the
  rectangle's edges on every side; the base loses the panel's slot and, behind it, the
  interior the door closes (walls of ``wall_thickness`` kept);
- a drawer (prismatic) is the same front panel with an open-top tray behind it, reaching
  ``drawer_depth_fraction`` of the body's depth; the base loses the slot and the tray's
  channel, ``gap`` wider on every side;
- a lid (revolute, hinged at the top back edge, its mask at the top of the box) is the slab of
  the body above its seam (``panel_thickness`` when the photo shows no rim); the base below
  becomes an open box.

Every mesh is built with manifold3d booleans and checked watertight. A door turning about its
hinge edge on the face plane, a drawer sliding out along the face normal and a lid turning
about its back edge (``stages._shared.box_faces.panel_joint``) clear the base through their
range. The amodal images render base and parts alone in the input view, Lambert-shaded with
a light along the optical axis, cavity interiors darker (the contract carries no photo to sample).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stages._shared.box_faces import BoxFace, box_faces, panel_joint, slab_face
from stages._shared.io import read_mask, read_mesh, write_image, write_json, write_mesh
from stages._shared.raster import rasterize
from stages.reconstruct import body_bounds, panel_pixels

log = logging.getLogger(__name__)

#: How far cutters reach past the surface they open, metres (avoids coplanar faces in booleans).
_OVERSHOOT_M = 0.01
#: How far a drawer's tray sinks into its front panel, metres (a solid union, not a touch).
_EMBED_M = 0.001
#: Share of a part's pixels a box face must hold to count as one the part shows.
_MIN_FACE_SHARE = 0.05
#: Largest wall of a drawer's tray as a fraction of its smallest size, and the thinnest wall, m.
_MAX_WALL_FRACTION = 0.2
_MIN_WALL_M = 0.002
#: Mask IoU with a hinged panel's pixels at which a part is that panel.
_MIN_HINGED_IOU = 0.5
#: Smallest opening limit of a hinged panel, radians.
_MIN_HINGED_LIMIT = 0.2
#: Largest panel thickness as a fraction of the body's depth behind the face.
_MAX_THICKNESS_FRACTION = 0.25
#: Colours (RGB in [0, 1]) of the amodal renders: base, parts in turn.
_BASE_RGB = (0.72, 0.72, 0.70)
_PART_RGB = ((0.85, 0.55, 0.30), (0.35, 0.60, 0.85), (0.45, 0.75, 0.45), (0.80, 0.45, 0.70), (0.85, 0.80, 0.35))


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["solid"] = "solid"
    panel_thickness: float = Field(0.02, gt=0, description="thickness of door and drawer-front panels, metres")
    gap: float = Field(0.003, gt=0, description="clearance between a part and the base on every side, metres")
    wall_thickness: float = Field(
        0.015, gt=0, description="walls kept around a door's interior and of a drawer's tray (at most 1/5 of it), metres"
    )
    drawer_depth_fraction: float = Field(
        0.8, gt=0, lt=1, description="a drawer's tray depth (behind its front) as a fraction of the body's depth"
    )
    lid_top_tolerance: float = Field(
        0.05,
        ge=0,
        lt=0.5,
        description="a part hinged at its top covering the box's top face, or its side face's width, to this fraction is a lid",
    )
    lid_top_gap: float = Field(
        0.015,
        ge=0,
        lt=0.5,
        description="a lid's band on a side face starts this close to the box's top (fraction of the face's height); "
        "a top-hinged panel further down is a flap",
    )
    interior_shade: float = Field(0.45, gt=0, le=1, description="brightness of cavity interiors in the amodal images")


@dataclass(frozen=True)
class _Solid:
    """A completed part: its solid, the cavity it needs in the base, and how it moves.

    kind : "door", "drawer" or "lid". face / rect : the box face and (s0, s1, t0, t1) metres it
    sits on. axis / origin : the joint in the base frame (positive magnitudes open). limit : the
    opening limit, radians or metres.
    """

    kind: str
    face: BoxFace
    rect: tuple[float, float, float, float]
    solid: object
    cavity: object
    axis: np.ndarray
    origin: np.ndarray
    limit: float


def run(cfg: Config, recon, masks, seg, out_dir: Path):
    """Complete the parts and carve the base.

    Parameters
    ----------
    cfg : Config
    recon : ReconstructResult
      The watertight body mesh (base frame) and the input camera.
    masks : PartMasksResult
      Per part: mask, joint type and hinge side (as seen in the photo).
    seg : Segment3DResult
      The labelled (refined) mesh: labels 0 base, k + 1 part k.
    out_dir : Path
      Receives ``base.glb``, ``part_<k>.glb``, ``base.png``, ``part_<k>.png`` and ``parts.json``
      (each part's kind, face, rectangle and joint).

    Raises
    ------
    ValueError
      A part shows no pixel on the object's box, its rectangle is too small for the panel and
      gaps, or a boolean result is not a watertight solid.
    """
    from manifold3d import Manifold

    from stages.amodal import AmodalResult

    # 1. Inputs: the body, the labelled mesh and the masks.
    body_mesh = read_mesh(recon.mesh)
    body = _to_manifold(body_mesh, f"reconstructed mesh {recon.mesh}")
    lower, upper = body_bounds(recon, body_mesh)
    faces = box_faces(lower, upper)
    hinged_pixels = panel_pixels(recon, body_mesh)
    mesh = read_mesh(seg.mesh)
    labels = np.load(seg.labels)
    if len(labels) != len(mesh.faces):
        raise ValueError(
            f"{seg.labels} holds {len(labels)} labels for the {len(mesh.faces)} faces of {seg.mesh}; rerun segment3d"
        )
    if len(seg.part_meshes) != len(masks.parts):
        raise ValueError(f"segment3d has {len(seg.part_meshes)} parts, part_masks {len(masks.parts)}; rerun segment3d")
    camera = recon.camera
    raster = rasterize(camera, mesh.vertices, mesh.faces)
    top_seen = bool(camera.position[2] > upper[2])  # the camera sees the box's top face

    # 2. Each part completed from its face, its rectangle and its joint.
    solids = []
    for k, part in enumerate(masks.parts):  # loop over parts
        mask = read_mask(part.mask)
        if mask.shape != raster.face_id.shape:
            raise ValueError(f"mask {part.mask} is {mask.shape}, the camera's image is {raster.face_id.shape}")
        hinged = [i for i, px in enumerate(hinged_pixels) if (mask & px).sum() >= _MIN_HINGED_IOU * (mask | px).sum()]
        if hinged:  # the reconstruction's hinged panel (an open laptop's screen) is this part, whole
            solids.append(_hinged(cfg, recon.panels[hinged[0]], part.name))
            continue
        face, rects = _part_rectangles(camera, raster, mesh, labels == k + 1, mask, faces, part.name)
        solids.append(_complete(cfg, faces, face, rects, part, upper - lower, top_seen))

    # 3. The base: the body minus every cavity.
    cavities = [s.cavity for s in solids]
    base = body - (Manifold.batch_boolean(cavities, _op("Add")) if len(cavities) > 1 else cavities[0])
    base_tm = _to_trimesh(base, "base")
    part_tms = [_to_trimesh(s.solid, part.name) for s, part in zip(solids, masks.parts)]

    # 4. Amodal images in the input view.
    out_dir = Path(out_dir)
    base_path = write_mesh(out_dir / "base.glb", base_tm)
    part_paths = tuple(write_mesh(out_dir / f"part_{k}.glb", m) for k, m in enumerate(part_tms))
    base_image = write_image(out_dir / "base.png", _render(cfg, camera, base_tm, _BASE_RGB, lower, upper))
    part_images = tuple(
        write_image(out_dir / f"part_{k}.png", _render(cfg, camera, m, _PART_RGB[k % len(_PART_RGB)], lower, upper))
        for k, m in enumerate(part_tms)
    )
    write_json(
        out_dir / "parts.json",
        {
            "parts": [
                {
                    "name": part.name,
                    "kind": s.kind,
                    "face": s.face.name,
                    "rect_face_m": [round(v, 5) for v in s.rect],
                    "joint_type": "prismatic" if s.kind == "drawer" else "revolute",
                    "axis_base": np.round(s.axis, 6),
                    "origin_base": np.round(s.origin, 5),
                    "limit": round(float(s.limit), 5),
                    "volume_m3": round(float(m.volume), 8),
                }
                for s, part, m in zip(solids, masks.parts, part_tms)
            ],
            "base_volume_m3": round(float(base_tm.volume), 8),
        },
    )
    log.info(
        "amodal: base %.4f m^3 (body %.4f), parts %s",
        base_tm.volume, body_mesh.volume,
        ", ".join(f"{p.name}={s.kind}@{s.face.name}" for s, p in zip(solids, masks.parts)),
    )
    return AmodalResult(base_mesh=base_path, part_meshes=part_paths, base_image=base_image, part_images=part_images)


# ---------------------------------------------------------------------------------------------
# Where a part sits
# ---------------------------------------------------------------------------------------------


def _part_rectangles(camera, raster, mesh, is_part: np.ndarray, mask: np.ndarray, faces: dict, name: str):
    """The box face a part mostly lies on, and its rectangle (s0, s1, t0, t1) (metres) on each
    box face it shows at least ``_MIN_FACE_SHARE`` of its pixels on.

    The part's pixels are its mask's pixels that show one of its segmented faces; each goes to
    the box face whose normal is closest to its mesh face's and is intersected with that face's
    plane. A rectangle is the bounding rectangle of its pixels there.
    """
    # Pixels: inside the mask and on a face segmented as this part.
    fid = raster.face_id
    on_part = mask & raster.mask & is_part[np.where(raster.mask, fid, 0)]
    if not on_part.any():
        raise ValueError(
            f"part {name!r}: its mask shows none of its segmented faces; check that segment3d ran on these masks"
        )
    rows, cols = np.nonzero(on_part)
    names = list(faces)
    box_normals = np.stack([faces[n].normal for n in names])  # (6, 3)
    which = np.argmax(mesh.face_normals[fid[rows, cols]] @ box_normals.T, axis=1)  # (n,) box face per pixel
    counts = np.bincount(which, minlength=len(names))
    rays = camera.rays()[rows, cols]  # (n, 3) unit directions, base frame
    o = camera.position
    rects = {}
    for i in np.flatnonzero(counts >= _MIN_FACE_SHARE * len(rows)):  # loop over the few faces shown
        face, sel = faces[names[i]], which == i
        t = ((face.origin - o) @ face.normal) / (rays[sel] @ face.normal)
        st = face.to_face(o + t[:, None] * rays[sel])[:, :2]
        s0, t0 = np.clip(st.min(axis=0), 0.0, [face.width, face.height])
        s1, t1 = np.clip(st.max(axis=0), 0.0, [face.width, face.height])
        rects[names[i]] = (float(s0), float(s1), float(t0), float(t1))
    return faces[names[int(np.argmax(counts))]], rects


# ---------------------------------------------------------------------------------------------
# Completion
# ---------------------------------------------------------------------------------------------


def _complete(
    cfg: Config, faces: dict, face: BoxFace, rects: dict, part, extents: np.ndarray, top_seen: bool
) -> _Solid:
    """The completed solid of one part, its cavity in the base and its joint.

    A revolute part hinged at its top is a lid when it covers the whole top face, or when on a
    side face its rectangle reaches the top edge and spans the face's width, and it shows on the
    top face too where the camera sees that face (else it is a flap below the top, like a door);
    a smaller panel on the top face is a hatch, completed like a door.
    """
    rect = rects[face.name]
    s0, s1, t0, t1 = rect
    depth = float(np.abs(face.normal) @ extents)  # body size behind the face
    reach = cfg.lid_top_tolerance
    wide = s1 - s0 >= (1.0 - 2 * reach) * face.width
    if face.name == "top":
        at_top = wide and t1 - t0 >= (1.0 - 2 * reach) * face.height
    else:
        at_top = face.name != "bottom" and wide and t0 <= cfg.lid_top_gap * face.height and ("top" in rects or not top_seen)
    is_lid = part.joint_type == "revolute" and part.hinge_side == "top" and at_top
    if is_lid:
        return _lid(cfg, faces, rects, part.name)
    thickness = min(cfg.panel_thickness, _MAX_THICKNESS_FRACTION * depth)
    if min(s1 - s0, t1 - t0) <= 2 * cfg.gap + 1e-4:
        raise ValueError(
            f"part {part.name!r}: its rectangle on the {face.name} face is {s1 - s0:.4f} x {t1 - t0:.4f} m, too small "
            f"for the {cfg.gap} m gaps; check its mask"
        )
    panel = _face_box(face, (s0 + cfg.gap, s1 - cfg.gap, t0 + cfg.gap, t1 - cfg.gap), -thickness, 0.0)
    slot = _face_box(face, rect, -(thickness + cfg.gap), _OVERSHOOT_M)
    if part.joint_type == "prismatic":
        return _drawer(cfg, face, rect, panel, slot, thickness, depth)
    # A door: the slot, and behind it the interior it closes (the frame keeps wall_thickness).
    w = cfg.wall_thickness
    cavity = slot
    inner = (s0 + w, s1 - w, t0 + w, t1 - w)
    back = -(depth - w)
    if inner[1] > inner[0] and inner[3] > inner[2] and back < -(thickness + cfg.gap):
        cavity = cavity + _face_box(face, inner, back, -(thickness + cfg.gap) + _EMBED_M)
    axis, origin = panel_joint(face, rect, "revolute", part.hinge_side)
    return _Solid("door", face, rect, panel, cavity, axis, origin, np.pi / 2)


def _drawer(cfg: Config, face: BoxFace, rect, panel, slot, thickness: float, depth: float) -> _Solid:
    """A drawer: the front panel and an open-top tray behind it sliding out along the normal."""
    s0, s1, t0, t1 = rect
    g = cfg.gap
    inset = 2 * g  # the tray is narrower than its front, clear of the slot's edges
    tray_rect = (s0 + inset, s1 - inset, t0 + inset, t1 - inset)
    travel = cfg.drawer_depth_fraction * depth - thickness
    # Walls: as asked, but at most a fifth of the tray's smallest size (a small drawer's tray).
    smallest = min(tray_rect[1] - tray_rect[0], tray_rect[3] - tray_rect[2], travel)
    w = min(cfg.wall_thickness, _MAX_WALL_FRACTION * smallest)
    travel = min(travel, depth - thickness - g - w)  # the base keeps a back wall
    if w < _MIN_WALL_M or travel <= 2 * w:
        raise ValueError(
            f"drawer on the {face.name} face, {s1 - s0:.3f} x {t1 - t0:.3f} m over a {depth:.3f} m deep body, leaves "
            f"no room for a tray; check its mask (or the reconstruction's depth)"
        )
    outer = _face_box(face, tray_rect, -(thickness + travel), -thickness + _EMBED_M)
    # Open top: the hollow runs past the tray's upper edge (-t is up on the front and side faces).
    hollow_rect = (tray_rect[0] + w, tray_rect[1] - w, tray_rect[2] - _OVERSHOOT_M, tray_rect[3] - w)
    hollow = _face_box(face, hollow_rect, -(thickness + travel) + w, -thickness)
    solid = panel + (outer - hollow)
    channel = _face_box(face, (tray_rect[0] - g, tray_rect[1] + g, tray_rect[2] - g, tray_rect[3] + g),
                        -(thickness + travel + g), -thickness + _EMBED_M)
    axis, origin = panel_joint(face, rect, "prismatic", None)
    return _Solid("drawer", face, rect, solid, slot + channel, axis, origin, travel)


def _lid(cfg: Config, faces: dict, rects: dict, name: str) -> _Solid:
    """A lid: the body's slab above the lid's seam (the lowest edge of its region on the front
    and side faces), hinged along the top back edge; the base below becomes an open box.

    A lid whose mask shows no side face has a rim too thin for the photo to resolve: it becomes
    a slab of ``panel_thickness`` (at most ``_MAX_THICKNESS_FRACTION`` of the body's height).
    """
    top = faces["top"]
    upper_z = float(top.origin[2])
    lower_z = upper_z - faces["front"].height
    sides = [n for n in rects if n not in ("top", "bottom")]
    if sides:
        seam_z = min(float(faces[n].to_base(0.0, rects[n][3])[0, 2]) for n in sides)
    else:
        seam_z = upper_z - min(cfg.panel_thickness, _MAX_THICKNESS_FRACTION * (upper_z - lower_z))
        log.warning(
            "amodal: part %r is a lid seen only on the top face (its rim is thinner than the photo resolves); "
            "taken as a %.3f m slab", name, upper_z - seam_z,
        )  # fmt: skip
    if not lower_z + cfg.wall_thickness + cfg.gap < seam_z < upper_z - cfg.gap:
        raise ValueError(f"part {name!r}: lid seam at z = {seam_z:.4f} m leaves no base below or no lid above")
    full = (0.0, top.width, 0.0, top.height)
    over, w = _OVERSHOOT_M, cfg.wall_thickness
    slab = _face_box(top, full, -(upper_z - seam_z), 0.0)
    above = _face_box(top, (-over, top.width + over, -over, top.height + over), -(upper_z - seam_z) - cfg.gap, over)
    hollow = _face_box(top, (w, top.width - w, w, top.height - w), -(upper_z - lower_z) + w, over)
    axis, origin = panel_joint(top, full, "revolute", "top")
    return _Solid("lid", top, full, slab, above + hollow, axis, origin, np.pi / 2)


def _hinged(cfg: Config, panel, name: str) -> _Solid:
    """A hinged panel of the reconstruction (a solid apart from the body): the panel itself,
    its cavity the panel's box grown by ``_EMBED_M`` (it takes the panel out of the body and
    nothing else), turning about its hinge; it opens until it lies flat behind the body."""
    from manifold3d import Manifold

    box = panel.box
    grow = 2 * _EMBED_M

    def oriented(extents):
        T = np.eye(4)[:3]
        T[:, :3], T[:, 3] = box.axes.T, box.centre
        return Manifold.cube(tuple(extents), center=True).transform(T)

    face = slab_face(box, name)
    rect = (0.0, face.width, 0.0, face.height)
    limit = max(np.pi - float(panel.angle), _MIN_HINGED_LIMIT)
    return _Solid("lid", face, rect, oriented(box.extents), oriented(box.extents + grow), panel.axis, panel.origin, limit)


def _face_box(face: BoxFace, rect, d0: float, d1: float):
    """Manifold box over ``rect`` (s0, s1, t0, t1) of ``face`` between heights d0 < d1 (m) above it."""
    from manifold3d import Manifold

    s0, s1, t0, t1 = rect
    corners = face.to_base(np.array([s0, s1, s0, s1]), np.array([t0, t0, t1, t1]), d0)
    corners = np.vstack([corners, face.to_base(np.array([s0, s1]), np.array([t0, t1]), d1)])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    return Manifold.cube(tuple(hi - lo)).translate(tuple(lo))


# ---------------------------------------------------------------------------------------------
# Meshes and renders
# ---------------------------------------------------------------------------------------------


def _op(name: str):
    from manifold3d import OpType

    return getattr(OpType, name)


def _to_manifold(mesh, what: str):
    """A manifold3d solid from a watertight trimesh (vertices merged first)."""
    import trimesh
    from manifold3d import Manifold, Mesh64

    merged = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True)
    if not merged.is_watertight:
        raise ValueError(f"{what} is not watertight; the reconstruct stage must hand over a closed mesh")
    vertices = np.ascontiguousarray(merged.vertices, np.float64)
    solid = Manifold(Mesh64(vertices, np.ascontiguousarray(merged.faces, np.uint64)))
    if solid.is_empty():
        raise ValueError(f"{what} is not an oriented 2-manifold ({solid.status()}); repair it before amodal")
    return solid


def _to_trimesh(solid, what: str):
    """A watertight trimesh of a manifold3d solid; raises when the solid is empty or open."""
    import trimesh

    if solid.is_empty():
        raise ValueError(f"{what}: the completed solid is empty (the cavities took the whole body); check the part masks")
    m = solid.to_mesh64()
    # Taken as it is (manifold3d's output is indexed and closed): booleans can leave edges of
    # ~1e-11 m, and merging their ends would tear the surface there.
    mesh = trimesh.Trimesh(np.asarray(m.vert_properties)[:, :3], np.asarray(m.tri_verts, np.int64), process=False)
    if not mesh.is_watertight or mesh.volume <= 0:
        raise ValueError(f"{what}: the completed mesh is not a watertight solid ({len(mesh.faces)} faces)")
    return mesh


def _render(cfg: Config, camera, mesh, rgb, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 render of ``mesh`` alone on white: Lambert shading with a light along the
    optical axis; faces inside the body's box (cavity walls) at ``interior_shade``."""
    raster = rasterize(camera, mesh.vertices, mesh.faces)
    fid = np.where(raster.mask, raster.face_id, 0)
    centres = mesh.triangles_center
    view = camera.pose[:3, 2]  # the optical axis, base frame: one light direction for the whole view
    lambert = np.abs(mesh.face_normals @ view)
    margin = 1e-3
    interior = np.all((centres > lower + margin) & (centres < upper - margin), axis=1)
    shade = (0.35 + 0.65 * lambert) * np.where(interior, cfg.interior_shade, 1.0)
    colour = np.clip(shade[:, None] * np.asarray(rgb)[None], 0, 1)  # (F, 3)
    out = np.where(raster.mask[..., None], colour[fid], 1.0)
    return np.round(out * 255).astype(np.uint8)
