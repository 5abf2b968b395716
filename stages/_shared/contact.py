"""Interpenetration of watertight solids, measured one way everywhere.

Joint limits (how far a part may move) and validation (did it pass through the base) must agree,
so both use these functions: the deepest point of either solid inside the other, found from
surface samples plus the solids' vertices and points along their sharp edges (corners and edges
of box-like parts are where contact starts, and random samples alone miss them: a base's edge
pressed 2 mm into a door's face lies in a strip that few samples of a large base fall in).
"""

from __future__ import annotations

import numpy as np

from stages._shared.kinematics import joint_matrix


#: Edges between faces turned more than this (radians) are sharp: contact starts along them.
SHARP_EDGE_RAD = np.radians(20.0)


def contact_points(mesh, n: int, seed: int = 0) -> np.ndarray:
    """(m, 3) float points on ``mesh``'s surface: ``n`` area-uniform samples, its vertices and
    about ``n`` points spread evenly along its sharp edges (by length, at least one per edge).

    Vertices are thinned to at most ``n`` (every k-th) so dense meshes stay cheap.
    """
    import trimesh

    samples, _ = trimesh.sample.sample_surface(mesh, int(n), seed=seed)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    step = max(1, int(np.ceil(len(vertices) / max(int(n), 1))))
    return np.concatenate([samples, vertices[::step], _edge_points(mesh, int(n))])


def _edge_points(mesh, n: int) -> np.ndarray:
    """About ``n`` points along ``mesh``'s sharp edges, evenly spaced on each (segment midpoints)."""
    edges = mesh.face_adjacency_edges[mesh.face_adjacency_angles > SHARP_EDGE_RAD]  # (E, 2)
    if len(edges) == 0 or n <= 0:
        return np.zeros((0, 3))
    a, b = mesh.vertices[edges[:, 0]], mesh.vertices[edges[:, 1]]
    length = np.linalg.norm(b - a, axis=1)
    count = np.maximum(1, np.ceil(n * length / max(length.sum(), 1e-12))).astype(np.int64)  # (E,)
    edge = np.repeat(np.arange(len(edges)), count)
    rank = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)  # index along its edge
    t = ((rank + 0.5) / count[edge])[:, None]
    return a[edge] * (1.0 - t) + b[edge] * t


def depth_inside(solid, points: np.ndarray) -> float:
    """Deepest of ``points`` (n, 3) inside the watertight ``solid``, metres; 0 when none is inside."""
    import trimesh

    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    lo, hi = solid.bounds
    near = np.all((points >= lo - 1e-9) & (points <= hi + 1e-9), axis=1)  # cheap reject outside the bbox
    if not near.any():
        return 0.0
    depth = trimesh.proximity.signed_distance(solid, points[near])  # positive inside
    return float(max(depth.max(), 0.0))


def interpenetration(a, a_points: np.ndarray, b, b_points: np.ndarray, T_b_a: np.ndarray) -> float:
    """Deepest interpenetration of solids ``a`` and ``b``, metres.

    Parameters
    ----------
    a, b : trimesh.Trimesh
      Watertight solids, each in its own frame.
    a_points, b_points : (n, 3) float
      Contact points of each (see :func:`contact_points`), in its own frame.
    T_b_a : (4, 4) float
      Pose of ``a``'s frame in ``b``'s frame.
    """
    T_b_a = np.asarray(T_b_a, dtype=np.float64)
    a_in_b = a_points @ T_b_a[:3, :3].T + T_b_a[:3, 3]
    T_a_b = np.linalg.inv(T_b_a)
    b_in_a = b_points @ T_a_b[:3, :3].T + T_a_b[:3, 3]
    return max(depth_inside(b, a_in_b), depth_inside(a, b_in_a))


def clear_range(
    static,
    part,
    joint_type: str,
    axis: np.ndarray,
    origin: np.ndarray,
    limit: float,
    max_penetration_m: float,
    n_points: int = 1000,
    steps: int = 16,
    refine: int = 8,
    seed: int = 0,
) -> float:
    """How far a part moves from rest before it passes into ``static`` deeper than allowed.

    This is the measure validation applies, so limits set from it pass validation.

    Parameters
    ----------
    static, part : trimesh.Trimesh
      Watertight solids at rest, base frame, metres (``static``: the base and every part that
      stays put).
    joint_type, axis, origin
      The joint in the base frame (see ``stages._shared.kinematics.joint_matrix``).
    limit : float
      Largest magnitude considered, rad or m; negative explores the closing direction.
    max_penetration_m : float
      Deepest interpenetration accepted, metres.
    steps, refine : int
      Grid steps from 0 to ``limit``, then bisection iterations on the first step that collides.

    Returns
    -------
    float
      The clear magnitude, between 0 and ``limit`` (same sign).
    """
    if limit == 0:
        return 0.0
    part_points = contact_points(part, n_points, seed=seed)
    static_points = contact_points(static, n_points, seed=seed + 1)

    def collides(magnitude: float) -> bool:
        T = joint_matrix(joint_type, axis, origin, magnitude)  # part's pose in the base frame
        return interpenetration(part, part_points, static, static_points, T) > max_penetration_m

    return first_collision(collides, limit, steps, refine)


def first_collision(collides, limit: float, steps: int = 16, refine: int = 8) -> float:
    """Largest magnitude from 0 towards ``limit`` before ``collides(magnitude)`` turns true.

    ``steps`` grid steps from 0 to ``limit``, then ``refine`` bisections between the last clear
    and the first colliding step. Returns ``limit`` when no step collides.
    """
    lo = 0.0
    for hi in np.linspace(0.0, limit, steps + 1)[1:]:
        if collides(float(hi)):
            break
        lo = float(hi)
    else:
        return float(limit)
    for _ in range(refine):  # bisection between the last clear and the first colliding step
        mid = 0.5 * (lo + hi)
        if collides(mid):
            hi = mid
        else:
            lo = mid
    return lo
