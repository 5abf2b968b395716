"""Procedural box-like articulated objects with ground-truth joints.

Every object is built from boxes and cylinders with manifold3d booleans, so each mesh is
watertight: the base has a real cavity behind every door and a slot behind every drawer, and the
parts clear the base through their whole joint range. Faces carry colours (``visual.face_colors``)
that a renderer can shade directly: cavity interiors are dark so the seams around doors and
drawers read as dark lines, handles contrast with their panels. Faces also carry a material
(``face_attributes["material"]``, an index into ``MATERIALS``: wood, brushed metal, plastic,
matte) from which the renderer draws procedural textures (wood grain, brushing, speckle).

Frames and units follow the project conventions: metres and radians, base frame z-up with its
origin at the bottom centre of the object's bounding box at rest, +x pointing out of the front.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

import numpy as np
import trimesh
from manifold3d import Manifold, OpType

#: Object categories ``make_object`` builds.
CATEGORIES = (
    "cabinet",
    "drawer_unit",
    "microwave",
    "laptop",
    "box_lid",
    "oven",
    "fridge",
    "dishwasher",
    "washer",
    "safe",
    "trash_can",
    "storage_cabinet",
)

#: RGBA of cavity interiors, so that seams and openings read as dark lines in photos.
INTERIOR_RGBA = (30, 30, 33, 255)
#: Range of the clearance between a panel and the edge of its opening, metres.
GAP_RANGE_M = (0.002, 0.004)
#: Gap between the back of a door or drawer front and the body's front face, metres.
FRONT_GAP_M = 0.002
#: How far cavity cutters reach past the surface they open, metres (avoids coplanar faces).
CUT_OVERSHOOT_M = 0.01
#: How far handle posts and tray walls sink into the panel they join, metres.
EMBED_M = 0.002
#: Segments of a full circle for cylinders.
CIRCLE_SEGMENTS = 40
#: Surface materials; ``mesh.face_attributes["material"]`` holds an index into this tuple per face.
#: The renderer draws a procedural texture for each (``matte``: none, e.g. cavities and glass).
MATERIALS = ("matte", "plastic", "wood", "metal")

_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_JOINT_TYPES = ("revolute", "prismatic")

RGBA = tuple[int, int, int, int]


# ---------------------------------------------------------------------------------------------
# Public dataclasses
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SynthPart:
    """A movable part and its joint to the base.

    Attributes
    ----------
    name : str
      Link name, ``[A-Za-z0-9_]`` (e.g. ``"door_0"``, ``"drawer_1"``, ``"lid_0"``).
    mesh : trimesh.Trimesh
      Watertight mesh in the base frame at rest, metres, with per-face colours.
    joint_type : str
      ``"revolute"`` or ``"prismatic"``.
    axis : (3,) float
      Unit joint axis in the base frame; a positive joint value opens the part.
    origin : (3,) float
      A point on the joint axis in the base frame, metres (for prismatic joints: a point on the
      part, the axis line through it is the direction of travel).
    lower, upper : float
      Joint limits (rad or m); the rest pose 0 lies in ``[lower, upper]``.
    """

    name: str
    mesh: trimesh.Trimesh
    joint_type: str
    axis: np.ndarray
    origin: np.ndarray
    lower: float
    upper: float

    def __post_init__(self):
        if not _NAME.match(self.name):
            raise ValueError(f"`name` must match [A-Za-z0-9_]+, got {self.name!r}")
        if self.joint_type not in _JOINT_TYPES:
            raise ValueError(f"`joint_type` must be one of {_JOINT_TYPES}, got {self.joint_type!r}")
        axis = np.asarray(self.axis, dtype=np.float64).reshape(3)
        norm = np.linalg.norm(axis)
        if not np.isclose(norm, 1.0, atol=1e-6):
            raise ValueError(f"`axis` of part {self.name!r} must be a unit (3,) vector, got norm {norm}")
        origin = np.asarray(self.origin, dtype=np.float64).reshape(3).copy()
        axis = axis / norm
        axis.setflags(write=False)
        origin.setflags(write=False)
        object.__setattr__(self, "axis", axis)
        object.__setattr__(self, "origin", origin)
        if not self.lower <= 0.0 <= self.upper:
            raise ValueError(
                f"part {self.name!r}: limits must satisfy lower <= 0 <= upper, got [{self.lower}, {self.upper}]"
            )

    @property
    def opening_limit(self) -> float:
        """The limit with the larger magnitude: the far end of the part's main motion."""
        return self.upper if abs(self.upper) >= abs(self.lower) else self.lower

    def transform(self, value: float) -> np.ndarray:
        """(4, 4) float rigid motion of the part at joint value ``value`` (rad or m), base frame.

        Raises ValueError when ``value`` lies outside ``[lower, upper]`` (1e-9 tolerance).
        """
        value = float(value)
        if not self.lower - 1e-9 <= value <= self.upper + 1e-9:
            raise ValueError(
                f"joint value for part {self.name!r} must lie in [{self.lower}, {self.upper}], got {value}"
            )
        if self.joint_type == "prismatic":
            T = np.eye(4)
            T[:3, 3] = self.axis * value
            return T
        return trimesh.transformations.rotation_matrix(value, self.axis, self.origin)

    def posed(self, value: float) -> trimesh.Trimesh:
        """A copy of ``mesh`` moved to joint value ``value``."""
        mesh = self.mesh.copy()
        mesh.apply_transform(self.transform(value))
        return mesh


@dataclass(frozen=True, eq=False)
class SynthObject:
    """A procedural articulated object.

    Attributes
    ----------
    category : str
      One of ``CATEGORIES``.
    seed : int
      The seed it was built from; ``make_object(category, seed)`` rebuilds it exactly.
    base : trimesh.Trimesh
      Watertight base link mesh in the base frame, metres, with per-face colours.
    parts : tuple of SynthPart
      The movable parts, each jointed to the base.
    """

    category: str
    seed: int
    base: trimesh.Trimesh
    parts: tuple[SynthPart, ...] = field(default_factory=tuple)

    def part(self, name: str) -> SynthPart:
        """The part called ``name``."""
        for part in self.parts:
            if part.name == name:
                return part
        raise ValueError(f"`name` must be one of {[p.name for p in self.parts]}, got {name!r}")

    def posed(self, joint_values: dict[str, float] | None = None) -> list[trimesh.Trimesh]:
        """Meshes of the base and of every part (in ``parts`` order) at the given joint values.

        Parameters
        ----------
        joint_values : dict of str to float, optional
          Joint value (rad or m) per part name; parts not named stay at rest (0).
        """
        joint_values = dict(joint_values or {})
        unknown = set(joint_values) - {p.name for p in self.parts}
        if unknown:
            raise ValueError(
                f"`joint_values` names unknown parts {sorted(unknown)}; parts are {[p.name for p in self.parts]}"
            )
        return [self.base.copy()] + [p.posed(joint_values.get(p.name, 0.0)) for p in self.parts]

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3) float axis-aligned bounds of the object at rest, base frame, metres."""
        b = np.stack([m.bounds for m in [self.base] + [p.mesh for p in self.parts]])
        return np.stack([b[:, 0].min(axis=0), b[:, 1].max(axis=0)])

    @property
    def extents(self) -> np.ndarray:
        """(3,) float size of the object's bounding box at rest along x, y, z, metres."""
        b = self.bounds
        return b[1] - b[0]

    def joints(self) -> list[dict]:
        """Ground-truth joints, one dict per part, with package.json key names.

        Keys: ``name`` (the part's name), ``type``, ``parent`` ("base"), ``child`` (the part's
        name), ``axis_base``, ``origin_base``, ``lower``, ``upper``.
        """
        return [
            {
                "name": p.name,
                "type": p.joint_type,
                "parent": "base",
                "child": p.name,
                "axis_base": [float(v) for v in p.axis],
                "origin_base": [float(v) for v in p.origin],
                "lower": float(p.lower),
                "upper": float(p.upper),
            }
            for p in self.parts
        ]


def make_object(category: str, seed: int) -> SynthObject:
    """Build the articulated object of ``category`` drawn from ``seed`` (deterministic).

    Parameters
    ----------
    category : str
      One of ``CATEGORIES``.
    seed : int
      Non-negative seed; dimensions, layout, colours and handles are drawn from it.
    """
    if category not in CATEGORIES:
        raise ValueError(f"`category` must be one of {CATEGORIES}, got {category!r}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int, got {seed!r}")
    seed = int(seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(category.encode())]))
    kit = _Kit()
    base_solid, specs = _BUILDERS[category](kit, rng)

    base = kit.trimesh(base_solid)
    meshes = [kit.trimesh(s.solid) for s in specs]
    for s, mesh in zip(specs, meshes):
        if s.rest_transform is not None:
            mesh.apply_transform(s.rest_transform)

    # Move the origin to the bottom centre of the bounding box at rest.
    b = np.stack([m.bounds for m in [base] + meshes])
    lo, hi = b[:, 0].min(axis=0), b[:, 1].max(axis=0)
    shift = -np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    base.apply_translation(shift)
    parts = []
    for s, mesh in zip(specs, meshes):
        mesh.apply_translation(shift)
        parts.append(
            SynthPart(
                name=s.name,
                mesh=mesh,
                joint_type=s.joint_type,
                axis=np.asarray(s.axis, dtype=np.float64),
                origin=np.asarray(s.origin, dtype=np.float64) + shift,
                lower=float(s.lower),
                upper=float(s.upper),
            )
        )
    return SynthObject(category=category, seed=seed, base=base, parts=tuple(parts))


# ---------------------------------------------------------------------------------------------
# Solid modelling kit: manifold primitives that remember their colour
# ---------------------------------------------------------------------------------------------


class _Kit:
    """Makes coloured manifold primitives and turns boolean results into coloured trimeshes.

    Each primitive is marked as a manifold "original"; after booleans, every output triangle
    still knows which primitive it came from, which gives its colour.
    """

    def __init__(self):
        self.colours: dict[int, RGBA] = {}
        self.materials: dict[RGBA, str] = {INTERIOR_RGBA: "matte"}  # by colour; "plastic" if absent

    def material(self, rgba: RGBA, name: str) -> RGBA:
        """Record that faces of colour ``rgba`` are made of ``name`` (one of ``MATERIALS``)."""
        if name not in MATERIALS:
            raise ValueError(f"`name` must be one of {MATERIALS}, got {name!r}")
        self.materials[tuple(int(c) for c in rgba)] = name
        return rgba

    def paint(self, solid: Manifold, rgba: RGBA) -> Manifold:
        solid = solid.as_original()
        self.colours[solid.original_id()] = tuple(int(c) for c in rgba)
        return solid

    def box(self, lo, hi, rgba: RGBA) -> Manifold:
        """Axis-aligned box between corners ``lo`` and ``hi`` ((3,) metres)."""
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        if np.any(hi - lo <= 0):
            raise ValueError(f"box corners must satisfy lo < hi, got lo={lo}, hi={hi}")
        return self.paint(Manifold.cube(tuple(hi - lo)).translate(tuple(lo)), rgba)

    def cylinder(self, centre, axis: str, radius: float, length: float, rgba: RGBA) -> Manifold:
        """Cylinder centred at ``centre`` ((3,) metres) along base axis ``axis`` ("x", "y", "z")."""
        solid = Manifold.cylinder(length, radius, radius, CIRCLE_SEGMENTS, True)
        rotation = {"x": (0.0, 90.0, 0.0), "y": (-90.0, 0.0, 0.0), "z": (0.0, 0.0, 0.0)}[axis]
        solid = solid.rotate(rotation).translate(tuple(float(c) for c in centre))
        return self.paint(solid, rgba)

    def trimesh(self, solid: Manifold) -> trimesh.Trimesh:
        """The coloured, watertight trimesh of ``solid``."""
        mesh = solid.to_mesh64()
        vertices = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
        faces = np.asarray(mesh.tri_verts, dtype=np.int64)
        run_ids = np.asarray(mesh.run_original_id, dtype=np.int64)
        run_tris = np.diff(np.asarray(mesh.run_index, dtype=np.int64)) // 3
        missing = set(run_ids.tolist()) - set(self.colours)
        if missing:
            raise ValueError(f"solid has faces from unpainted primitives {sorted(missing)}")
        palette = np.array([self.colours[i] for i in run_ids], dtype=np.uint8).reshape(-1, 4)
        colours = np.repeat(palette, run_tris, axis=0)
        out = trimesh.Trimesh(vertices, faces, process=False)
        out.visual.face_colors = colours
        codes = np.array([MATERIALS.index(self.materials.get(self.colours[i], "plastic")) for i in run_ids], dtype=np.int64)
        out.face_attributes["material"] = np.repeat(codes, run_tris)
        if not out.is_watertight or out.volume <= 0:
            raise ValueError(f"built solid is not a watertight positive-volume mesh ({len(faces)} faces)")
        return out


def _union(solids: list[Manifold]) -> Manifold:
    return Manifold.batch_boolean(list(solids), OpType.Add) if len(solids) > 1 else solids[0]


@dataclass
class _PartSpec:
    """A part while it is being built (before re-centring)."""

    name: str
    solid: Manifold
    joint_type: str
    axis: tuple
    origin: tuple
    lower: float
    upper: float
    rest_transform: np.ndarray | None = None  # applied to the mesh after building (e.g. an open lid)


# ---------------------------------------------------------------------------------------------
# Colours
# ---------------------------------------------------------------------------------------------

_WOODS = [(164, 116, 73), (196, 160, 116), (122, 84, 54), (214, 186, 146), (150, 100, 62)]
_PAINTS = [(236, 236, 231), (62, 72, 94), (96, 118, 98), (188, 66, 54), (172, 174, 178), (60, 60, 64), (226, 214, 190)]
_APPLIANCE = [(240, 240, 238), (184, 187, 191), (56, 56, 60)]
_LAPTOP = [(196, 198, 202), (92, 94, 99), (50, 50, 54), (214, 200, 186)]
_METALS = [(205, 205, 210), (190, 160, 92), (150, 152, 156)]
_DARK_METALS = [(52, 52, 56), (24, 24, 26), (80, 74, 68)]
#: Body colours drawn as brushed metal (stainless steel, aluminium).
_STEELS = [(184, 187, 191), (196, 198, 202), (172, 174, 178)]


@dataclass(frozen=True)
class _Style:
    body: RGBA
    panel: RGBA
    handle: RGBA
    tray: RGBA
    accent: RGBA  # control panels, windows, screens


def _rgba(rgb, rng: np.random.Generator | None = None, jitter: float = 0.0) -> RGBA:
    c = np.asarray(rgb, dtype=np.float64)
    if rng is not None and jitter:
        c = c + rng.uniform(-jitter, jitter, size=3)
    c = np.clip(np.round(c), 0, 255).astype(int)
    return (int(c[0]), int(c[1]), int(c[2]), 255)


def _luma(rgba) -> float:
    return 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]


def _shade(rgba: RGBA, factor: float) -> RGBA:
    return _rgba(np.asarray(rgba[:3], dtype=np.float64) * factor)


def _style(kit: "_Kit", rng: np.random.Generator, palette: list, two_tone: float = 0.0, accent=(44, 48, 56)) -> _Style:
    """Colours of one object; their materials are recorded in ``kit`` (wood for wood colours,
    brushed metal for handles and stainless steel, matte for windows and panels, else plastic)."""
    i = rng.integers(len(palette))
    body = kit.material(_rgba(palette[i], rng, 8), _material_of(palette[i]))
    panel, j = body, i
    if rng.random() < two_tone:
        j = rng.integers(len(palette))
        panel = kit.material(_rgba(palette[j], rng, 8), _material_of(palette[j]))
    metals = _METALS if _luma(panel) < 140 else _DARK_METALS
    handle = kit.material(_rgba(metals[rng.integers(len(metals))], rng, 6), "metal")
    tray = _shade(panel, 0.85) if _luma(panel) > 90 else _rgba((180, 170, 150), rng, 8)
    kit.material(tray, "wood" if _material_of(palette[j]) == "wood" or _luma(panel) <= 90 else "plastic")
    return _Style(body=body, panel=panel, handle=handle, tray=tray, accent=kit.material(_rgba(accent, rng, 4), "matte"))


def _material_of(rgb) -> str:
    rgb = tuple(rgb)
    if rgb in _WOODS:
        return "wood"
    return "metal" if rgb in _STEELS else "plastic"


# ---------------------------------------------------------------------------------------------
# Front-opening objects: a body with doors, drop-down flaps and drawers on its +x face
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Opening:
    """A rectangular opening in the body's front face (x = xf) and the part that closes it.

    ``kind`` is "door" (vertical hinge on side ``hinge`` = "left" (-y) or "right" (+y)), "flap"
    (hinge = "bottom": drops down, the default; "top": lifts up) or "drawer". ``handle`` is "bar", "knob", "recessed" or
    "none". ``shape`` "round" makes a round door inscribed in the rectangle.
    """

    name: str
    kind: str
    y0: float
    y1: float
    z0: float
    z1: float
    hinge: str = ""
    handle: str = "bar"
    window: bool = False
    shape: str = "rect"
    upper: float = 1.7


@dataclass(frozen=True)
class _Front:
    """Shared dimensions of a front-opening object, metres."""

    depth: float  # body size along x
    width: float  # body size along y
    z0: float  # body bottom
    z1: float  # body top
    cavity_depth: float  # how deep openings reach into the body
    gap: float  # clearance between panels and opening edges
    panel_t: float  # door/drawer-front thickness

    @property
    def xf(self) -> float:
        return self.depth / 2


def _front_object(
    kit: _Kit,
    rng: np.random.Generator,
    style: _Style,
    front: _Front,
    openings: list[_Opening],
    add: list[Manifold] = (),
    shelves: bool = False,
) -> tuple[Manifold, list[_PartSpec]]:
    """Body with cavities behind ``openings`` plus decorations ``add``; one part per opening."""
    xf = front.xf
    body = kit.box((-front.depth / 2, -front.width / 2, front.z0), (xf, front.width / 2, front.z1), style.body)
    cutters = []
    for op in openings:
        lo = (xf - front.cavity_depth, op.y0, op.z0)
        hi = (xf + CUT_OVERSHOOT_M, op.y1, op.z1)
        if op.shape == "round":
            r = min(op.y1 - op.y0, op.z1 - op.z0) / 2
            centre = (xf - front.cavity_depth / 2 + CUT_OVERSHOOT_M / 2, (op.y0 + op.y1) / 2, (op.z0 + op.z1) / 2)
            cutters.append(kit.cylinder(centre, "x", r, front.cavity_depth + CUT_OVERSHOOT_M, INTERIOR_RGBA))
        else:
            cutters.append(kit.box(lo, hi, INTERIOR_RGBA))
    base = body - _union(cutters)
    extra = list(add)
    if shelves:
        shelf_rgba = _shade(style.body, 0.55)
        for op in openings:
            if op.kind != "door" or op.z1 - op.z0 < 0.45:
                continue
            n = int((op.z1 - op.z0) // 0.35)
            for k in range(1, n + 1):
                z = op.z0 + k * (op.z1 - op.z0) / (n + 1)
                extra.append(
                    kit.box(
                        (xf - front.cavity_depth - EMBED_M, op.y0 - EMBED_M, z - 0.009),
                        (xf - 0.03, op.y1 + EMBED_M, z + 0.009),
                        shelf_rgba,
                    )
                )
    if extra:
        base = _union([base] + extra)
    parts = [_front_part(kit, rng, style, front, op) for op in openings]
    return base, parts


def _front_part(kit: _Kit, rng: np.random.Generator, style: _Style, front: _Front, op: _Opening) -> _PartSpec:
    """The panel (and drawer tray) closing ``op``, with its handle, window and joint."""
    g, t, xf = front.gap, front.panel_t, front.xf
    y0, y1, z0, z1 = op.y0 + g, op.y1 - g, op.z0 + g, op.z1 - g
    xb, xs = xf + FRONT_GAP_M, xf + FRONT_GAP_M + t  # back and front faces of the panel
    yc, zc = (y0 + y1) / 2, (z0 + z1) / 2
    if op.shape == "round":
        r = min(y1 - y0, z1 - z0) / 2
        panel = kit.cylinder(((xb + xs) / 2, yc, zc), "x", r, t, style.panel)
        y0, y1, z0, z1 = yc - r, yc + r, zc - r, zc + r
    else:
        panel = kit.box((xb, y0, z0), (xs, y1, z1), style.panel)
    solids = [panel]
    cuts = []

    if op.kind == "drawer":
        solids += _tray(kit, style, front, op)

    # Handle on the side opposite the hinge.
    w, h = y1 - y0, z1 - z0
    margin = float(np.clip(0.12 * min(w, h), 0.03, 0.06))
    if op.kind == "door":
        hy = y0 + margin if op.hinge == "right" else y1 - margin
        pos, along, length = (hy, zc + rng.uniform(-0.1, 0.1) * h), "z", float(np.clip(0.35 * h, 0.08, 0.4))
        if op.shape == "round":
            pos = (y0 + 0.45 * margin if op.hinge == "right" else y1 - 0.45 * margin, zc)
            length = 0.3 * h
    elif op.kind == "flap":
        hz = z0 + margin if op.hinge == "top" else z1 - margin
        pos, along, length = (yc, hz), "y", float(np.clip(0.6 * w, 0.1, 0.6))
    else:
        hz = zc + (0.25 * h if h > 0.2 else 0.0)
        pos, along, length = (yc, hz), "y", float(np.clip(0.4 * w, 0.08, 0.3))
    add, carve = _handle(kit, rng, style, op.handle, xs, pos, along, length, t)
    solids += add
    cuts += carve

    if op.window:
        m = margin * 1.6
        wy0, wy1 = (y0 + m, y1 - m)
        wz0, wz1 = (z0 + m, z1 - m)
        if op.kind == "door":  # keep clear of the handle
            wy0, wy1 = (wy0 + m, wy1) if op.hinge == "right" else (wy0, wy1 - m)
        else:
            wz1 -= m
        if op.shape == "round":
            rw = 0.62 * (y1 - y0) / 2
            cuts.append(kit.cylinder((xs, yc, zc), "x", rw, 0.006, style.accent))
        else:
            cuts.append(kit.box((xs - 0.002, wy0, wz0), (xs + CUT_OVERSHOOT_M, wy1, wz1), style.accent))

    solid = _union(solids)
    if cuts:
        solid = solid - _union(cuts)

    if op.kind == "drawer":
        tray_len = front.cavity_depth - 0.01
        return _PartSpec(op.name, solid, "prismatic", (1.0, 0.0, 0.0), (xs, yc, zc), 0.0, 0.8 * tray_len)
    if op.kind == "flap" and op.hinge == "top":  # hinge along the front top edge, bottom lifts towards +x
        return _PartSpec(op.name, solid, "revolute", (0.0, -1.0, 0.0), (xs, yc, z1), 0.0, op.upper)
    if op.kind == "flap":  # hinge along the front bottom edge, top falls towards +x
        return _PartSpec(op.name, solid, "revolute", (0.0, 1.0, 0.0), (xs, yc, z0), 0.0, op.upper)
    if op.hinge == "right":  # hinge on the +y edge, free edge swings out towards +x
        return _PartSpec(op.name, solid, "revolute", (0.0, 0.0, 1.0), (xs, y1, zc), 0.0, op.upper)
    if op.hinge == "left":
        return _PartSpec(op.name, solid, "revolute", (0.0, 0.0, -1.0), (xs, y0, zc), 0.0, op.upper)
    raise ValueError(f"opening {op.name!r}: `hinge` must be 'left' or 'right' for a door, got {op.hinge!r}")


def _tray(kit: _Kit, style: _Style, front: _Front, op: _Opening) -> list[Manifold]:
    """Open-top drawer box behind the front panel, clear of the slot walls by ``gap + 2 mm``."""
    c = front.gap + 0.002
    xf = front.xf
    h = op.z1 - op.z0
    wall, bottom = 0.009, 0.008
    y0, y1 = op.y0 + c, op.y1 - c
    z0, z1 = op.z0 + c, op.z1 - c - max(0.012, 0.15 * h)
    x0 = xf - (front.cavity_depth - 0.01)
    outer = kit.box((x0, y0, z0), (xf + FRONT_GAP_M + EMBED_M, y1, z1), style.tray)
    inner = kit.box((x0 + wall, y0 + wall, z0 + bottom), (xf - 0.006, y1 - wall, z1 + CUT_OVERSHOOT_M), _shade(style.tray, 0.8))
    return [outer - inner]


def _handle(kit, rng, style, kind, x_front, pos, along, length, panel_t) -> tuple[list, list]:
    """Handle solids to add and pockets to carve, on a panel whose front face is at ``x_front``.

    ``pos`` is the (y, z) centre, ``along`` the bar direction ("y" or "z"), ``length`` metres.
    """
    y, z = pos
    if kind == "none":
        return [], []
    if kind == "bar":
        standoff = rng.uniform(0.022, 0.034)
        r_bar, r_post = rng.uniform(0.0055, 0.0075), 0.0045
        bar = kit.cylinder((x_front + standoff, y, z), along, r_bar, length, style.handle)
        posts = []
        for s in (-1.0, 1.0):
            d = s * (length / 2 - 0.012)
            py, pz = (y + d, z) if along == "y" else (y, z + d)
            post_len = standoff + EMBED_M
            posts.append(kit.cylinder((x_front - EMBED_M + post_len / 2, py, pz), "x", r_post, post_len, style.handle))
        return [bar] + posts, []
    if kind == "knob":
        neck_len, r_cap = rng.uniform(0.015, 0.022), rng.uniform(0.011, 0.017)
        neck = kit.cylinder((x_front + (neck_len - EMBED_M) / 2, y, z), "x", 0.006, neck_len + EMBED_M, style.handle)
        cap = kit.cylinder((x_front + neck_len + 0.005, y, z), "x", r_cap, 0.012, style.handle)
        return [neck, cap], []
    if kind == "recessed":
        depth = min(0.5 * panel_t, 0.01)
        half_len, half_w = length / 2, 0.013
        hy, hz = (half_len, half_w) if along == "y" else (half_w, half_len)
        pocket = kit.box((x_front - depth, y - hy, z - hz), (x_front + CUT_OVERSHOOT_M, y + hy, z + hz), INTERIOR_RGBA)
        return [], [pocket]
    raise ValueError(f"`kind` must be 'bar', 'knob', 'recessed' or 'none', got {kind!r}")


def _feet(kit: _Kit, rng: np.random.Generator, depth: float, width: float, height: float, rgba: RGBA) -> list:
    """Four cylindrical feet under a body whose bottom is at z = ``height``."""
    r = rng.uniform(0.012, 0.022)
    inset = r + 0.015
    feet = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            c = (sx * (depth / 2 - inset), sy * (width / 2 - inset), (height + EMBED_M) / 2)
            feet.append(kit.cylinder(c, "z", r, height + EMBED_M, rgba))
    return feet


def _handle_kind(rng: np.random.Generator, weights=(0.5, 0.25, 0.25)) -> str:
    return str(rng.choice(["bar", "knob", "recessed"], p=np.asarray(weights) / np.sum(weights)))


def _door_upper(rng: np.random.Generator) -> float:
    return float(rng.uniform(1.5, 1.9))


def _front_dims(rng, depth, width, z0, z1, panel_t=(0.016, 0.022), back=(0.012, 0.02)) -> _Front:
    return _Front(
        depth=depth,
        width=width,
        z0=z0,
        z1=z1,
        cavity_depth=depth - rng.uniform(*back),
        gap=rng.uniform(*GAP_RANGE_M),
        panel_t=rng.uniform(*panel_t),
    )


def _doors_in(rng, y0, y1, z0, z1, count, names, handle, upper, window=False) -> list[_Opening]:
    """One door, hinge on a random side, or two doors meeting in the middle, hinged outside."""
    if count == 1:
        hinge = "left" if rng.random() < 0.5 else "right"
        return [_Opening(names[0], "door", y0, y1, z0, z1, hinge, handle, window, upper=upper)]
    ym = (y0 + y1) / 2
    return [
        _Opening(names[0], "door", y0, ym, z0, z1, "left", handle, window, upper=upper),
        _Opening(names[1], "door", ym, y1, z0, z1, "right", handle, window, upper=upper),
    ]


def _stack(z0: float, z1: float, n: int, rail: float, rng, graduated: bool) -> list[tuple[float, float]]:
    """Split [z0, z1] into ``n`` openings separated by rails, bottom to top."""
    weights = np.linspace(1.35, 0.8, n) if graduated else np.ones(n)
    usable = (z1 - z0) - rail * (n - 1)
    heights = usable * weights / weights.sum()
    tops = z0 + np.cumsum(heights) + rail * np.arange(n)
    return [(float(t - h), float(t)) for t, h in zip(tops, heights)]


# ---------------------------------------------------------------------------------------------
# Category builders: each returns (base solid, part specs) in a body-centred frame
# ---------------------------------------------------------------------------------------------


def _cabinet(kit, rng):
    style = _style(kit, rng, _WOODS + _PAINTS, two_tone=0.25)
    W, H, D = rng.uniform(0.4, 1.0), rng.uniform(0.5, 1.1), rng.uniform(0.35, 0.6)
    foot = rng.uniform(0.03, 0.09) if rng.random() < 0.6 else 0.0
    front = _front_dims(rng, D, W, foot, foot + H)
    border = rng.uniform(0.02, 0.045)
    n = 1 if W < 0.5 else int(rng.integers(1, 3))
    ops = _doors_in(rng, -W / 2 + border, W / 2 - border, foot + border, foot + H - border, n,
                    ["door_0", "door_1"], _handle_kind(rng), _door_upper(rng))
    add = _feet(kit, rng, D, W, foot, _shade(style.body, 0.5)) if foot else []
    if rng.random() < 0.4:
        top_rgba = _rgba(_WOODS[rng.integers(len(_WOODS))], rng, 8)
        over = rng.uniform(0.008, 0.02)
        add.append(kit.box((-D / 2 - EMBED_M, -W / 2 - over, foot + H - EMBED_M), (D / 2 + over, W / 2 + over, foot + H + rng.uniform(0.018, 0.03)), top_rgba))
    return _front_object(kit, rng, style, front, ops, add, shelves=True)


def _drawer_unit(kit, rng):
    style = _style(kit, rng, _WOODS + _PAINTS, two_tone=0.3)
    W, D = rng.uniform(0.35, 0.8), rng.uniform(0.35, 0.55)
    n = int(rng.integers(2, 5))
    H = rng.uniform(0.16, 0.26) * n + 0.06
    foot = rng.uniform(0.03, 0.08) if rng.random() < 0.5 else 0.0
    front = _front_dims(rng, D, W, foot, foot + H)
    border, rail = rng.uniform(0.02, 0.04), rng.uniform(0.015, 0.03)
    handle = _handle_kind(rng)
    rows = _stack(foot + border, foot + H - border, n, rail, rng, graduated=rng.random() < 0.4)
    ops = [_Opening(f"drawer_{i}", "drawer", -W / 2 + border, W / 2 - border, a, b, handle=handle)
           for i, (a, b) in enumerate(reversed(rows))]
    add = _feet(kit, rng, D, W, foot, _shade(style.body, 0.5)) if foot else []
    return _front_object(kit, rng, style, front, ops, add)


def _microwave(kit, rng):
    style = _style(kit, rng, _APPLIANCE, accent=(30, 34, 40))
    W, H, D = rng.uniform(0.45, 0.6), rng.uniform(0.26, 0.35), rng.uniform(0.33, 0.45)
    foot = 0.012
    front = _front_dims(rng, D, W, foot, foot + H, panel_t=(0.02, 0.03), back=(0.04, 0.08))
    border = rng.uniform(0.015, 0.025)
    split = -W / 2 + W * rng.uniform(0.7, 0.78)  # door on -y, control panel on +y
    ops = [_Opening("door_0", "door", -W / 2 + border, split, foot + border, foot + H - border, "left",
                    str(rng.choice(["bar", "recessed"])), window=True, upper=_door_upper(rng))]
    add = _feet(kit, rng, D, W, foot, (30, 30, 30, 255))
    add += _control_panel(kit, rng, style, front.xf, split + 0.012, W / 2 - border, foot + border, foot + H - border, "buttons")
    return _front_object(kit, rng, style, front, ops, add)


def _control_panel(kit, rng, style, xf, y0, y1, z0, z1, kind) -> list:
    """A dark strip on the front face with buttons or knobs (added to the base)."""
    strip = kit.box((xf - EMBED_M, y0, z0), (xf + 0.002, y1, z1), style.accent)
    items = [strip]
    yc, zc = (y0 + y1) / 2, (z0 + z1) / 2
    if kind == "buttons":
        rows = max(2, int((z1 - z0 - 0.06) // 0.03))
        for k in range(rows):
            z = z1 - 0.05 - k * 0.03
            for s in (-1, 1):
                y = yc + s * 0.25 * (y1 - y0)
                items.append(kit.box((xf, y - 0.009, z - 0.007), (xf + 0.005, y + 0.009, z + 0.007), (200, 200, 205, 255)))
        items.append(kit.box((xf + 0.001, y0 + 0.012, z1 - 0.03), (xf + 0.003, y1 - 0.012, z1 - 0.012), (60, 120, 90, 255)))
    else:  # knobs in a row along y
        n = max(2, int((y1 - y0) // 0.11))
        for k in range(n):
            y = y0 + (k + 0.5) * (y1 - y0) / n
            items.append(kit.cylinder((xf + 0.012, y, zc), "x", min(0.018, 0.3 * (z1 - z0)), 0.024, (205, 205, 210, 255)))
    return items


def _laptop(kit, rng):
    i = rng.integers(len(_LAPTOP))
    shell = kit.material(_rgba(_LAPTOP[i], rng, 6), _material_of(_LAPTOP[i]))
    D, W = rng.uniform(0.2, 0.26), rng.uniform(0.3, 0.38)
    hb, tl, g = rng.uniform(0.012, 0.018), rng.uniform(0.005, 0.008), 0.003
    phi0 = np.deg2rad(rng.uniform(100.0, 115.0))
    keys, pad = _rgba((36, 36, 40), rng, 4), _shade(shell, 0.9)
    base = kit.box((-D / 2, -W / 2, 0.0), (D / 2, W / 2, hb), shell)
    kx0 = -D / 2 + 0.015
    keyboard = kit.box((kx0, -W / 2 + 0.022, hb - 0.0015), (kx0 + 0.45 * D, W / 2 - 0.022, hb + CUT_OVERSHOOT_M), keys)
    pw = 0.36 * W
    trackpad = kit.box((D / 2 - 0.015 - 0.3 * D, -pw / 2, hb - 0.0007), (D / 2 - 0.015, pw / 2, hb + CUT_OVERSHOOT_M), pad)
    base = base - _union([keyboard, trackpad])

    hinge = np.array([-D / 2, 0.0, hb + g])
    lid = kit.box((-D / 2, -W / 2, hb + g), (D / 2 - 0.002, W / 2, hb + g + tl), shell)
    bezel = 0.012
    screen = kit.box((-D / 2 + bezel, -W / 2 + bezel, hb + g - CUT_OVERSHOOT_M), (D / 2 - 0.002 - bezel, W / 2 - bezel, hb + g + 0.001),
                     _rgba((22, 28, 40), rng, 4))
    lid = lid - screen
    axis = (0.0, -1.0, 0.0)  # positive angle lifts the front edge up and back
    rest = trimesh.transformations.rotation_matrix(phi0, axis, hinge)
    spec = _PartSpec("lid_0", lid, "revolute", axis, tuple(hinge), -phi0, 0.3, rest_transform=rest)
    return base, [spec]


def _lidded_box(kit, rng, style, D, W, H, wall, pedal=False):
    """Open-top box with a lid hinged along its back top edge (axis -y: positive lifts the front)."""
    body = kit.box((-D / 2, -W / 2, 0.0), (D / 2, W / 2, H), style.body)
    cavity = kit.box((-D / 2 + wall, -W / 2 + wall, wall), (D / 2 - wall, W / 2 - wall, H + CUT_OVERSHOOT_M), INTERIOR_RGBA)
    base = body - cavity
    if pedal:
        pw = min(0.12, 0.4 * W)
        base = base + kit.box((D / 2 - EMBED_M, -pw / 2, 0.01), (D / 2 + 0.05, pw / 2, 0.03), style.handle)
    g, over, tl = 0.002, rng.uniform(0.0, 0.01), rng.uniform(0.01, 0.022)
    lid = kit.box((-D / 2 - over, -W / 2 - over, H + g), (D / 2 + over, W / 2 + over, H + g + tl), style.panel)
    kind = str(rng.choice(["tab", "knob"]))
    xs = D / 2 + over
    if kind == "tab":
        tw = min(0.08, 0.3 * W)
        lid = lid + kit.box((xs - EMBED_M, -tw / 2, H + g), (xs + 0.018, tw / 2, H + g + min(tl, 0.012)), style.handle)
    else:
        r = 0.012
        kx = xs - max(0.03, 0.12 * D)
        lid = lid + kit.cylinder((kx, 0.0, H + g + tl + 0.008), "z", r, 0.016 + EMBED_M, style.handle)
    hinge = (-D / 2 - over, 0.0, H + g)
    return base, [_PartSpec("lid_0", lid, "revolute", (0.0, -1.0, 0.0), hinge, 0.0, float(rng.uniform(1.6, 2.0)))]


def _box_lid(kit, rng):
    style = _style(kit, rng, _WOODS + _PAINTS, two_tone=0.3)
    D, W, H = rng.uniform(0.15, 0.4), rng.uniform(0.2, 0.5), rng.uniform(0.1, 0.3)
    return _lidded_box(kit, rng, style, D, W, H, rng.uniform(0.008, 0.016))


def _trash_can(kit, rng):
    style = _style(kit, rng, _APPLIANCE + _PAINTS, two_tone=0.3)
    D, W, H = rng.uniform(0.25, 0.35), rng.uniform(0.25, 0.4), rng.uniform(0.4, 0.7)
    return _lidded_box(kit, rng, style, D, W, H, rng.uniform(0.006, 0.01), pedal=rng.random() < 0.6)


def _oven(kit, rng):
    style = _style(kit, rng, _APPLIANCE, accent=(28, 30, 34))
    W, H, D = rng.uniform(0.5, 0.76), rng.uniform(0.82, 0.95), rng.uniform(0.55, 0.65)
    front = _front_dims(rng, D, W, 0.0, H, panel_t=(0.025, 0.035), back=(0.03, 0.05))
    border = rng.uniform(0.015, 0.03)
    strip = rng.uniform(0.08, 0.12)
    bottom = 0.03
    ops = []
    if rng.random() < 0.5:
        dz = rng.uniform(0.1, 0.15)
        ops.append(_Opening("drawer_0", "drawer", -W / 2 + border, W / 2 - border, bottom, bottom + dz, handle="bar"))
        bottom += dz + 0.02
    door_top = H - strip - 0.01
    ops.insert(0, _Opening("door_0", "flap", -W / 2 + border, W / 2 - border, bottom, door_top, "bottom", "bar",
                           window=True, upper=float(rng.uniform(1.45, np.pi / 2))))
    add = _control_panel(kit, rng, style, front.xf, -W / 2 + border, W / 2 - border, H - strip, H - 0.008, "knobs")
    return _front_object(kit, rng, style, front, ops, add)


def _fridge(kit, rng):
    style = _style(kit, rng, _APPLIANCE)
    W, H, D = rng.uniform(0.55, 0.9), rng.uniform(1.4, 1.9), rng.uniform(0.6, 0.72)
    foot = 0.03
    front = _front_dims(rng, D, W, foot, foot + H, panel_t=(0.04, 0.06), back=(0.04, 0.06))
    border, mid = rng.uniform(0.01, 0.02), rng.uniform(0.015, 0.025)
    y0, y1, z0, z1 = -W / 2 + border, W / 2 - border, foot + border, foot + H - border
    layout = rng.integers(3)
    hinge = "left" if rng.random() < 0.5 else "right"
    up = _door_upper(rng)
    if layout == 0 or W < 0.65 and layout == 2:  # one tall door
        ops = [_Opening("door_0", "door", y0, y1, z0, z1, hinge, "bar", upper=up)]
    elif layout == 1:  # freezer on top, fridge below, same hinge side
        zs = z0 + (z1 - z0) * rng.uniform(0.62, 0.7)
        ops = [_Opening("door_0", "door", y0, y1, zs + mid, z1, hinge, "bar", upper=up),
               _Opening("door_1", "door", y0, y1, z0, zs, hinge, "bar", upper=up)]
    else:  # French doors over a freezer drawer
        zs = z0 + (z1 - z0) * rng.uniform(0.3, 0.38)
        ops = _doors_in(rng, y0, y1, zs + mid, z1, 2, ["door_0", "door_1"], "bar", up)
        ops.append(_Opening("drawer_0", "drawer", y0, y1, z0, zs, handle="bar"))
    add = _feet(kit, rng, D, W, foot, (30, 30, 30, 255))
    return _front_object(kit, rng, style, front, ops, add, shelves=True)


def _dishwasher(kit, rng):
    style = _style(kit, rng, _APPLIANCE, accent=(40, 42, 46))
    W, H, D = rng.uniform(0.45, 0.6), rng.uniform(0.8, 0.88), rng.uniform(0.55, 0.62)
    kick = rng.uniform(0.06, 0.1)
    front = _front_dims(rng, D, W, 0.0, H, panel_t=(0.03, 0.045), back=(0.03, 0.05))
    border = rng.uniform(0.008, 0.015)
    ops = [_Opening("door_0", "flap", -W / 2 + border, W / 2 - border, kick, H - border, "bottom",
                    str(rng.choice(["bar", "recessed"])), upper=float(rng.uniform(1.45, np.pi / 2)))]
    base, parts = _front_object(kit, rng, style, front, ops)
    # Toe kick: a dark recess under the door.
    recess = kit.box((front.xf - 0.05, -W / 2 + 0.01, -CUT_OVERSHOOT_M), (front.xf + CUT_OVERSHOOT_M, W / 2 - 0.01, kick - 0.015), INTERIOR_RGBA)
    return base - recess, parts


def _washer(kit, rng):
    style = _style(kit, rng, _APPLIANCE, accent=(34, 40, 48))
    W, H, D = rng.uniform(0.56, 0.62), rng.uniform(0.82, 0.88), rng.uniform(0.5, 0.62)
    front = _front_dims(rng, D, W, 0.0, H, panel_t=(0.04, 0.06), back=(0.08, 0.12))
    strip = rng.uniform(0.1, 0.14)
    r = min(0.4 * W, 0.5 * (H - strip - 0.12))
    zc = (H - strip) / 2 + 0.03
    hinge = "left" if rng.random() < 0.8 else "right"
    ops = [_Opening("door_0", "door", -r, r, zc - r, zc + r, hinge, "bar", window=True, shape="round",
                    upper=_door_upper(rng))]
    add = _control_panel(kit, rng, style, front.xf, 0.0, W / 2 - 0.02, H - strip, H - 0.015, "knobs")
    if rng.random() < 0.6:  # detergent drawer top left
        ops.append(_Opening("drawer_0", "drawer", -W / 2 + 0.02, -0.03, H - strip, H - 0.015, handle="recessed"))
    return _front_object(kit, rng, style, front, ops, add)


def _safe(kit, rng):
    style = _style(kit, rng, [(64, 66, 70), (90, 94, 98), (150, 30, 28), (210, 210, 205)], accent=(30, 30, 30))
    s = rng.uniform(0.3, 0.6)
    W, H, D = s * rng.uniform(0.9, 1.2), s * rng.uniform(0.9, 1.3), s * rng.uniform(0.85, 1.1)
    front = _front_dims(rng, D, W, 0.0, H, panel_t=(0.03, 0.05), back=(0.04, 0.07))
    wall = rng.uniform(0.035, 0.06)
    hinge = "left" if rng.random() < 0.5 else "right"
    ops = [_Opening("door_0", "door", -W / 2 + wall, W / 2 - wall, wall, H - wall, hinge, "bar", upper=_door_upper(rng))]
    base, parts = _front_object(kit, rng, style, front, ops)
    # A dial near the middle of the door.
    spec = parts[0]
    xs = front.xf + FRONT_GAP_M + front.panel_t
    dial = kit.cylinder((xs + 0.008 - EMBED_M, 0.0, 0.62 * H), "x", rng.uniform(0.025, 0.04), 0.016 + 2 * EMBED_M, (200, 200, 205, 255))
    spec.solid = spec.solid + dial
    return base, parts


def _storage_cabinet(kit, rng):
    style = _style(kit, rng, _WOODS + _PAINTS, two_tone=0.3)
    W, H, D = rng.uniform(0.6, 1.0), rng.uniform(0.8, 1.4), rng.uniform(0.4, 0.6)
    foot = rng.uniform(0.03, 0.08)
    front = _front_dims(rng, D, W, foot, foot + H)
    border, rail = rng.uniform(0.02, 0.04), rng.uniform(0.015, 0.03)
    handle = _handle_kind(rng)
    y0, y1, z0, z1 = -W / 2 + border, W / 2 - border, foot + border, foot + H - border
    ops = []
    layout = rng.random()
    if layout < 0.35:  # a row of drawers on top, doors below
        n_dr = int(rng.integers(1, 3))
        zd = z1 - rng.uniform(0.14, 0.2)
        edges = np.linspace(y0, y1, n_dr + 1)
        for i in range(n_dr):
            a = edges[i] + (rail / 2 if i > 0 else 0.0)
            b = edges[i + 1] - (rail / 2 if i < n_dr - 1 else 0.0)
            ops.append(_Opening(f"drawer_{i}", "drawer", a, b, zd, z1, handle=handle))
        ops += _doors_in(rng, y0, y1, z0, zd - rail, 2 if W > 0.7 else 1, ["door_0", "door_1"], handle, _door_upper(rng))
    elif layout < 0.7:  # a top-hinged flap (hutch) over doors
        zf = z1 - rng.uniform(0.2, 0.3)
        ops.append(_Opening("flap_0", "flap", y0, y1, zf, z1, "top", handle, upper=float(rng.uniform(1.2, 1.5))))
        ops += _doors_in(rng, y0, y1, z0, zf - rail, 2 if W > 0.7 else 1, ["door_0", "door_1"], handle, _door_upper(rng))
    else:  # a column of drawers on the right, a door on the left
        ys = y0 + (y1 - y0) * rng.uniform(0.45, 0.6)
        ops.append(_Opening("door_0", "door", y0, ys, z0, z1, "left", handle, upper=_door_upper(rng)))
        n_dr = int(rng.integers(2, 4))
        rows = _stack(z0, z1, n_dr, rail, rng, graduated=False)
        ops += [_Opening(f"drawer_{i}", "drawer", ys + rail, y1, a, b, handle=handle) for i, (a, b) in enumerate(reversed(rows))]
    add = _feet(kit, rng, D, W, foot, _shade(style.body, 0.5))
    return _front_object(kit, rng, style, front, ops, add, shelves=True)


_BUILDERS = {
    "cabinet": _cabinet,
    "drawer_unit": _drawer_unit,
    "microwave": _microwave,
    "laptop": _laptop,
    "box_lid": _box_lid,
    "oven": _oven,
    "fridge": _fridge,
    "dishwasher": _dishwasher,
    "washer": _washer,
    "safe": _safe,
    "trash_can": _trash_can,
    "storage_cabinet": _storage_cabinet,
}
