"""The six faces of an object's axis-aligned box, their rectification and panel hinges.

Box-like objects (cabinets, drawer units, microwaves, boxes with lids) carry their movable parts
as rectangular panels on the faces of their bounding box. A :class:`BoxFace` gives each face a
metric 2D frame as a viewer standing outside and upright sees it: ``s`` runs along ``right``
from the face's left edge, ``t`` along ``down`` from its top edge, both in metres. The front
(+x) face seen from the front has base +y to the right and -z down; the top face is seen from
the front and above, so its "top" edge is the back edge and ``down`` is +x.

Used by part_masks (rectifying faces of the photo), amodal (panels and cavities) and anyone who
needs the joint a panel's hinge side implies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from stages._shared.camera import Camera

FaceName = Literal["front", "back", "left", "right", "top", "bottom"]
HingeSide = Literal["left", "right", "top", "bottom"]

#: Outward normal and the face's "up" direction (as seen from outside), per face, base frame.
_FACE_FRAMES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "front": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "back": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "right": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),  # +y is on the right when seen from the front
    "left": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "top": ((0.0, 0.0, 1.0), (-1.0, 0.0, 0.0)),  # seen from the front and above: back edge on top
    "bottom": ((0.0, 0.0, -1.0), (1.0, 0.0, 0.0)),
}
FACE_NAMES: tuple[str, ...] = tuple(_FACE_FRAMES)


@dataclass(frozen=True)
class BoxFace:
    """One face of an axis-aligned box, with a metric 2D frame on it.

    Attributes
    ----------
    name : str
      ``front`` (+x), ``back`` (-x), ``right`` (+y), ``left`` (-y), ``top`` (+z), ``bottom`` (-z).
    origin : (3,) float
      The face's top-left corner as seen from outside, base frame, metres.
    normal, right, down : (3,) float
      Outward unit normal and the in-face unit directions of increasing ``s`` and ``t``.
    width, height : float
      Extent along ``right`` and ``down``, metres.
    """

    name: str
    origin: np.ndarray
    normal: np.ndarray
    right: np.ndarray
    down: np.ndarray
    width: float
    height: float

    @property
    def centre(self) -> np.ndarray:
        """(3,) float face centre, base frame, metres."""
        return self.origin + 0.5 * self.width * self.right + 0.5 * self.height * self.down

    @property
    def corners(self) -> np.ndarray:
        """(4, 3) float corners top-left, top-right, bottom-right, bottom-left, base frame."""
        w, h = self.width * self.right, self.height * self.down
        return np.stack([self.origin, self.origin + w, self.origin + w + h, self.origin + h])

    def to_face(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) float ``(s, t, d)``: in-face coordinates and height above the face (outward), m."""
        rel = np.asarray(points, dtype=np.float64).reshape(-1, 3) - self.origin
        return np.stack([rel @ self.right, rel @ self.down, rel @ self.normal], axis=1)

    def to_base(self, s: np.ndarray, t: np.ndarray, d: np.ndarray | float = 0.0) -> np.ndarray:
        """(n, 3) float base-frame points at face coordinates ``s``, ``t`` and height ``d`` (m)."""
        s, t, d = np.broadcast_arrays(np.asarray(s, float), np.asarray(t, float), np.asarray(d, float))
        return (
            self.origin
            + s.reshape(-1, 1) * self.right
            + t.reshape(-1, 1) * self.down
            + d.reshape(-1, 1) * self.normal
        )

    def facing(self, camera: Camera) -> float:
        """Cosine between the outward normal and the direction from the face centre to the camera."""
        to_cam = camera.position - self.centre
        return float(self.normal @ to_cam / np.linalg.norm(to_cam))

    def projected_area(self, camera: Camera) -> float:
        """Area of the face's projection in the image, pixels^2 (0 when it faces away)."""
        if self.facing(camera) <= 0:
            return 0.0
        uv, depth = camera.project(self.corners)
        if np.any(depth <= 0):
            return 0.0
        x, y = uv[:, 0], uv[:, 1]
        return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def box_faces(lower: np.ndarray, upper: np.ndarray) -> dict[str, BoxFace]:
    """The six faces of the axis-aligned box ``[lower, upper]`` (base frame, metres), by name."""
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    if lower.shape != (3,) or upper.shape != (3,) or np.any(upper <= lower):
        raise ValueError(f"box bounds must be (3,) with upper > lower, got {lower} and {upper}")
    centre, half = 0.5 * (lower + upper), 0.5 * (upper - lower)
    faces = {}
    for name, (normal, up) in _FACE_FRAMES.items():
        n, u = np.array(normal), np.array(up)
        right = np.cross(u, n)
        down = -u
        origin = centre + half * n - half * right + half * u  # top-left corner: -right, +up
        faces[name] = BoxFace(
            name=name,
            origin=origin,
            normal=n,
            right=right,
            down=down,
            width=float(2 * np.abs(half @ right)),
            height=float(2 * np.abs(half @ u)),
        )
    return faces


def rectify_homography(face: BoxFace, camera: Camera, size: tuple[int, int]) -> np.ndarray:
    """(3, 3) float homography from rectified-face pixels to photo pixels (OpenCV convention).

    The rectified image of ``size = (W, H)`` pixels covers the face exactly: its pixel (c, r)
    (integer coordinates at pixel centres, as OpenCV uses) sits at ``s = (c + 0.5) * width / W``,
    ``t = (r + 0.5) * height / H``. Use it with ``cv2.warpPerspective(photo, Hm, size,
    flags=... | cv2.WARP_INVERSE_MAP)`` to rectify, and without the flag to warp a rectified
    mask back into the photo.
    """
    import cv2

    W, H = int(size[0]), int(size[1])
    uv, depth = camera.project(face.corners)
    if np.any(depth <= 0):
        raise ValueError(f"face {face.name!r} is partly behind the camera; it cannot be rectified")
    rect = np.array([[-0.5, -0.5], [W - 0.5, -0.5], [W - 0.5, H - 0.5], [-0.5, H - 0.5]], np.float32)
    photo = (uv - 0.5).astype(np.float32)  # Camera puts pixel centres at +0.5, OpenCV at integers
    return cv2.getPerspectiveTransform(rect, photo)


def slab_face(box, name: str) -> BoxFace:
    """The face of a slab (``kinematics.Box`` whose thinnest side is ``axes[0]``, e.g. a tilted
    lid from ``kinematics.part_box``) on its ``+axes[0]`` side, seen with ``axes[2]`` up."""
    n, up = np.asarray(box.axes[0], dtype=np.float64), np.asarray(box.axes[2], dtype=np.float64)
    right = np.cross(up, n)
    half = 0.5 * np.asarray(box.extents, dtype=np.float64)
    origin = box.centre + half[0] * n - half[1] * right + half[2] * up
    return BoxFace(name=name, origin=origin, normal=n, right=right, down=-up, width=float(2 * half[1]), height=float(2 * half[2]))


def panel_joint(
    face: BoxFace,
    rect: tuple[float, float, float, float],
    joint_type: Literal["revolute", "prismatic"],
    hinge_side: HingeSide | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The joint a panel's hinge side implies, opening outwards for positive magnitudes.

    Parameters
    ----------
    face : BoxFace
      The face the panel lies on.
    rect : (s0, s1, t0, t1) float
      The panel's extent in face coordinates, metres.
    joint_type : {"revolute", "prismatic"}
    hinge_side : {"left", "right", "top", "bottom"} or None
      The panel edge (as seen from outside the face) the hinge sits on; ignored for prismatic.

    Returns
    -------
    axis : (3,) float
      Unit axis, base frame. A revolute part turns by the right-hand rule about it so that its
      free edge leaves the face outwards; a prismatic part slides out along it (the normal).
    origin : (3,) float
      A point on the axis on the face plane (the hinge edge's midpoint, or the panel centre for
      prismatic), base frame, metres.
    """
    s0, s1, t0, t1 = map(float, rect)
    if joint_type == "prismatic":
        return face.normal.copy(), face.to_base(0.5 * (s0 + s1), 0.5 * (t0 + t1))[0]
    if joint_type != "revolute":
        raise ValueError(f"`joint_type` must be 'revolute' or 'prismatic', got {joint_type!r}")
    # Turning by +angle about `axis` moves a point at offset r from the hinge towards axis x r;
    # each axis below makes axis x (hinge -> free edge) the outward normal.
    sm, tm = 0.5 * (s0 + s1), 0.5 * (t0 + t1)
    hinges = {
        "left": (face.down, (s0, tm)),
        "right": (-face.down, (s1, tm)),
        "top": (-face.right, (sm, t0)),
        "bottom": (face.right, (sm, t1)),
    }
    if hinge_side not in hinges:
        raise ValueError(f"`hinge_side` must be one of {sorted(hinges)} for a revolute panel, got {hinge_side!r}")
    axis, (s, t) = hinges[hinge_side]
    return axis.copy(), face.to_base(s, t)[0]
