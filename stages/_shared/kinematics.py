"""Joint geometry shared by the stages that propose, fit and check joints (numpy, base frame).

A joint moves a part's points by a magnitude ``m`` from rest: a revolute joint rotates them by
``m`` radians about the line through ``origin`` along the unit ``axis`` (right-hand rule); a
prismatic joint translates them by ``m`` metres along ``axis``. ``m = 0`` is the rest pose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

JointType = Literal["revolute", "prismatic"]


@dataclass(frozen=True)
class Box:
    """An oriented bounding box kept upright (one axis is base +z).

    Attributes
    ----------
    centre : (3,) float
      Box centre in the base frame, metres.
    axes : (3, 3) float
      Rows are the box's unit axes in the base frame: ``axes[0]`` the horizontal axis closest to
      +x (the front), ``axes[1] = z x axes[0]``, ``axes[2] = +z``. Right-handed.
    extents : (3,) float
      Full side lengths along ``axes``, metres.
    """

    centre: np.ndarray
    axes: np.ndarray
    extents: np.ndarray

    @property
    def diagonal(self) -> float:
        return float(np.linalg.norm(self.extents))

    def face_centre(self, axis: int, sign: int) -> np.ndarray:
        """(3,) float centre of the face whose outward normal is ``sign * axes[axis]``."""
        return self.centre + sign * 0.5 * self.extents[axis] * self.axes[axis]

    def contains(self, points: np.ndarray, tolerance: float = 1e-6) -> np.ndarray:
        """(n,) bool: which of ``points`` (n, 3) (base frame, metres) lie in the box, ``tolerance`` m outside counting."""
        local = (np.asarray(points, dtype=np.float64) - self.centre) @ self.axes.T
        return np.all(np.abs(local) <= 0.5 * self.extents + tolerance, axis=1)


def upright_box(points: np.ndarray) -> Box:
    """The smallest upright oriented box around ``points`` (min-area rectangle in the xy-plane).

    Box-like objects stand on the ground, so their parts' edges are vertical or horizontal; an
    upright box keeps those directions exactly, where a free 3D OBB may tilt on a near-cube.

    Parameters
    ----------
    points : (n, 3) float
      Points in the base frame (e.g. mesh vertices), metres; n >= 3.
    """
    import trimesh

    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 3:
        raise ValueError(f"`points` must be (n >= 3, 3), got {points.shape}")
    T2, _ = trimesh.bounds.oriented_bounds_2D(points[:, :2])
    # T2 maps xy into the rectangle's frame: its rows are the rectangle's axes in xy.
    a = T2[:2, :2]
    first = a[int(np.argmax(np.abs(a[:, 0])))]  # the rectangle axis closest to +/-x
    first = first * (1.0 if first[0] >= 0 else -1.0)
    x_axis = np.array([first[0], first[1], 0.0]) / np.linalg.norm(first)
    z_axis = np.array([0.0, 0.0, 1.0])
    axes = np.stack([x_axis, np.cross(z_axis, x_axis), z_axis])
    local = points @ axes.T  # (n, 3) coordinates along the box axes
    lo, hi = local.min(axis=0), local.max(axis=0)
    return Box(centre=((lo + hi) / 2) @ axes, axes=axes, extents=hi - lo)


def part_box(points: np.ndarray, tilt_gain: float = 0.7) -> Box:
    """A part's bounding box: upright (see :func:`upright_box`) unless the part is tilted.

    A laptop screen photographed open leans back; its upright box is mostly air and its faces
    are not the panel's. When the minimum-volume 3D box is smaller than ``tilt_gain`` times the
    upright one, that box is used, its axes ordered like an upright box's: ``axes[2]`` the one
    closest to +z (pointing up), ``axes[0]`` the next closest to +x (pointing front), and
    ``axes[1] = axes[2] x axes[0]``.

    Parameters
    ----------
    points : (n, 3) float
      Points of the part (e.g. mesh vertices), base frame, metres.
    tilt_gain : float
      Volume ratio below which the tilted box is preferred.
    """
    import trimesh

    upright = upright_box(points)
    to_box, extents = trimesh.bounds.oriented_bounds(np.asarray(points, dtype=np.float64))
    if np.prod(extents) >= tilt_gain * np.prod(upright.extents):
        return upright
    axes = np.asarray(to_box[:3, :3])  # rows: the box axes in the base frame
    up = int(np.argmax(np.abs(axes[:, 2])))
    rest = [i for i in range(3) if i != up]
    front = rest[int(np.argmax(np.abs(axes[rest, 0])))]
    z_axis = axes[up] * np.sign(axes[up, 2])
    x_axis = axes[front] * (np.sign(axes[front, 0]) or 1.0)
    ordered = np.stack([x_axis, np.cross(z_axis, x_axis), z_axis])
    local = np.asarray(points, dtype=np.float64) @ ordered.T
    lo, hi = local.min(axis=0), local.max(axis=0)
    return Box(centre=((lo + hi) / 2) @ ordered, axes=ordered, extents=hi - lo)


def rotation_matrices(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(M, 3, 3) float rotations by ``angles`` (M,) radians about the unit ``axis`` (3,) (Rodrigues)."""
    u = np.asarray(axis, dtype=np.float64)
    u = u / np.linalg.norm(u)
    angles = np.atleast_1d(np.asarray(angles, dtype=np.float64))
    K = np.array([[0.0, -u[2], u[1]], [u[2], 0.0, -u[0]], [-u[1], u[0], 0.0]])
    s, c = np.sin(angles)[:, None, None], np.cos(angles)[:, None, None]
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


def move_points(
    points: np.ndarray, joint_type: JointType, axis: np.ndarray, origin: np.ndarray, magnitudes: np.ndarray
) -> np.ndarray:
    """Positions of a part's points after the joint moved by each magnitude.

    Parameters
    ----------
    points : (n, 3) float
      Points of the part at rest, base frame, metres.
    joint_type : {"revolute", "prismatic"}
    axis : (3,) float
      Joint axis (normalised here).
    origin : (3,) float
      A point on a revolute joint's axis; unused for prismatic joints.
    magnitudes : (M,) float
      Radians (revolute) or metres (prismatic) from rest.

    Returns
    -------
    (M, n, 3) float
    """
    points = np.asarray(points, dtype=np.float64)
    magnitudes = np.atleast_1d(np.asarray(magnitudes, dtype=np.float64))
    u = np.asarray(axis, dtype=np.float64)
    u = u / np.linalg.norm(u)
    if joint_type == "prismatic":
        return points[None] + magnitudes[:, None, None] * u
    if joint_type != "revolute":
        raise ValueError(f"`joint_type` must be 'revolute' or 'prismatic', got {joint_type!r}")
    o = np.asarray(origin, dtype=np.float64)
    R = rotation_matrices(u, magnitudes)  # (M, 3, 3)
    return np.einsum("mij,nj->mni", R, points - o) + o


def joint_matrix(joint_type: JointType, axis: np.ndarray, origin: np.ndarray, magnitude: float) -> np.ndarray:
    """(4, 4) float transform of the part's points for one joint magnitude (base frame)."""
    u = np.asarray(axis, dtype=np.float64)
    u = u / np.linalg.norm(u)
    T = np.eye(4)
    if joint_type == "prismatic":
        T[:3, 3] = magnitude * u
        return T
    if joint_type != "revolute":
        raise ValueError(f"`joint_type` must be 'revolute' or 'prismatic', got {joint_type!r}")
    o = np.asarray(origin, dtype=np.float64)
    R = rotation_matrices(u, [magnitude])[0]
    T[:3, :3] = R
    T[:3, 3] = o - R @ o
    return T


def subtree(joints, link: str) -> set[str]:
    """``link`` and every link below it, given joints with ``parent`` and ``child`` link names
    (our JointSpecs or a yourdfpy robot's joints)."""
    below = {link}
    changed = True
    while changed:
        changed = False
        for joint in joints:
            if joint.parent in below and joint.child not in below:
                below.add(joint.child)
                changed = True
    return below


def static_scene(base, parts: list, moving: int):
    """The base with every part but ``parts[moving]`` at rest, as one mesh (trimesh).

    While one part moves the others stay shut: they are seen in its clip and block its way like
    the base does.
    """
    import trimesh

    others = [p for k, p in enumerate(parts) if k != moving]
    return trimesh.util.concatenate([base] + others) if others else base


def outer_plane(mesh, normal: np.ndarray, samples: int = 2000, seed: int = 0) -> float:
    """Offset along ``normal`` of a part's outer face, ignoring what sticks out of it.

    The area-weighted median position, along ``normal``, of the surface that faces that way: a
    handle or knob in front of a door (a small area) does not move it off the panel's face,
    where a bounding box would put it at the handle's tip.

    Parameters
    ----------
    mesh : trimesh.Trimesh
      The part, base frame, metres.
    normal : (3,) float
      Unit outward direction of the face.

    Returns
    -------
    float
      ``max``-like offset ``x . normal`` of the face plane, metres.
    """
    import trimesh

    normal = np.asarray(normal, dtype=np.float64)
    points, face = trimesh.sample.sample_surface(mesh, samples, seed=seed)
    facing = mesh.face_normals[face] @ normal > 0.9
    if not facing.any():
        return float((np.asarray(mesh.vertices) @ normal).max())
    return float(np.median(points[facing] @ normal))


def probe_points(mesh, n: int, inset: float, seed: int = 0) -> np.ndarray:
    """Points just inside a part's surface, for collision sweeps.

    ``n`` area-uniform surface samples (seeded, so results are reproducible) and up to ``n`` of
    the mesh's vertices (its corners), each moved ``inset`` metres inwards along its normal. A
    probe then enters another solid only when the part penetrates it by more than ``inset``:
    the inset is the sweep's tolerance for grazing contact. It is capped at 0.4 of the part's
    thinnest extent so that probes stay inside thin panels.

    Returns
    -------
    (m, 3) float
      Probe points, base frame, metres.
    """
    import trimesh

    inset = min(float(inset), 0.4 * float(part_box(mesh.vertices).extents.min()))
    samples, face = trimesh.sample.sample_surface(mesh, n, seed=seed)
    step = max(1, int(np.ceil(len(mesh.vertices) / n)))
    corners = np.asarray(mesh.vertices, dtype=np.float64)[::step]
    corner_normals = np.asarray(mesh.vertex_normals, dtype=np.float64)[::step]
    return np.concatenate([samples - inset * mesh.face_normals[face], corners - inset * corner_normals])


def free_range(
    obstacle,
    probes: np.ndarray,
    joint_type: JointType,
    axis: np.ndarray,
    origin: np.ndarray,
    limit: float,
    steps: int = 24,
    refine: int = 5,
) -> float:
    """How far the joint can move from rest towards ``limit`` before the part enters ``obstacle``.

    The part's probe points (see :func:`probe_points`) are moved over a grid of magnitudes in
    one batch and tested for containment in the obstacle (ray parity, fast); the first
    colliding step is then narrowed by bisection. Probes already inside the obstacle at rest
    are ignored (contact at rest is the amodal stage's business, not the joint's).

    Parameters
    ----------
    obstacle : trimesh.Trimesh
      Watertight solid(s) the part must not enter (the base, other parts), base frame, metres.
    probes : (n, 3) float
      The part's probe points at rest.
    joint_type, axis, origin
      The joint, as in :func:`move_points`.
    limit : float
      Largest magnitude considered (negative to explore the closing direction), rad or m.
    steps, refine : int
      Grid steps from 0 to ``limit``, then bisection iterations on the first colliding step.

    Returns
    -------
    float
      The reachable magnitude, between 0 and ``limit`` (same sign).
    """
    probes = np.asarray(probes, dtype=np.float64)
    if probes.ndim != 2 or probes.shape[1] != 3:
        raise ValueError(f"`probes` must be (n, 3), got {probes.shape}")
    if limit == 0 or len(probes) == 0:
        return 0.0
    probes = probes[~obstacle.contains(probes)]
    if len(probes) == 0:
        return float(limit)

    def collides(mags: np.ndarray) -> np.ndarray:
        moved = move_points(probes, joint_type, axis, origin, mags)  # (M, n, 3)
        return obstacle.contains(moved.reshape(-1, 3)).reshape(len(mags), -1).any(axis=1)

    grid = np.linspace(0.0, limit, steps + 1)[1:]
    hit = collides(grid)
    if not hit.any():
        return float(limit)
    first = int(np.argmax(hit))
    lo, hi = (grid[first - 1] if first > 0 else 0.0), grid[first]
    for _ in range(refine):  # bisection on the first colliding step
        mid = 0.5 * (lo + hi)
        if collides(np.array([mid]))[0]:
            hi = mid
        else:
            lo = mid
    return float(lo)
