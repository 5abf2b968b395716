"""Pinhole camera in the OpenCV convention, posed in the URDF base frame."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Camera:
    """A pinhole camera.

    Attributes
    ----------
    width, height : int
      Image size in pixels.
    fx, fy, cx, cy : float
      Intrinsics in pixels; pixel centres are at integer + 0.5 coordinates.
    T_base_camera : tuple of 4 tuples of 4 float
      Maps points from the camera frame (OpenCV: x right, y down, z forward) into the base frame.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    T_base_camera: tuple[tuple[float, ...], ...]

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def pose(self) -> np.ndarray:
        """(4, 4) float ``T_base_camera``."""
        return np.asarray(self.T_base_camera, dtype=np.float64)

    @property
    def T_camera_base(self) -> np.ndarray:
        """(4, 4) float inverse of ``T_base_camera``."""
        return np.linalg.inv(self.pose)

    @property
    def position(self) -> np.ndarray:
        """(3,) float camera centre in the base frame, metres."""
        return self.pose[:3, 3].copy()

    def to_camera(self, points_base: np.ndarray) -> np.ndarray:
        """Map ``(n, 3)`` base-frame points into the camera frame."""
        points = np.asarray(points_base, dtype=np.float64).reshape(-1, 3)
        T = self.T_camera_base
        return points @ T[:3, :3].T + T[:3, 3]

    def project(self, points_base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project ``(n, 3)`` base-frame points.

        Returns
        -------
        uv : (n, 2) float
          Pixel coordinates (x right, y down).
        depth : (n,) float
          Distance along the camera's +z axis, metres (negative behind the camera).
        """
        pc = self.to_camera(points_base)
        z = pc[:, 2]
        safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
        uv = np.stack([self.fx * pc[:, 0] / safe + self.cx, self.fy * pc[:, 1] / safe + self.cy], axis=1)
        return uv, z

    def rays(self) -> np.ndarray:
        """(H, W, 3) float unit ray directions through pixel centres, in the base frame."""
        xs = (np.arange(self.width) + 0.5 - self.cx) / self.fx
        ys = (np.arange(self.height) + 0.5 - self.cy) / self.fy
        gx, gy = np.meshgrid(xs, ys)
        d = np.stack([gx, gy, np.ones_like(gx)], axis=-1)
        d = d @ self.pose[:3, :3].T
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def scaled(self, factor: float) -> "Camera":
        """The same camera for an image resized by ``factor`` (e.g. 0.5 halves width and height)."""
        return Camera(
            width=int(round(self.width * factor)),
            height=int(round(self.height * factor)),
            fx=self.fx * factor,
            fy=self.fy * factor,
            cx=self.cx * factor,
            cy=self.cy * factor,
            T_base_camera=self.T_base_camera,
        )

    def to_dict(self) -> dict:
        """The ``camera`` block of package.json."""
        return {
            "width": self.width,
            "height": self.height,
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "T_base_camera": [list(map(float, row)) for row in self.T_base_camera],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Camera":
        T = np.asarray(data["T_base_camera"], dtype=np.float64)
        if T.shape != (4, 4):
            raise ValueError(f"`T_base_camera` must be (4, 4), got {T.shape}")
        return cls(
            width=int(data["width"]),
            height=int(data["height"]),
            fx=float(data["fx"]),
            fy=float(data["fy"]),
            cx=float(data["cx"]),
            cy=float(data["cy"]),
            T_base_camera=_as_tuple(T),
        )

    @classmethod
    def load(cls, path: Path) -> "Camera":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _as_tuple(T: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(T, dtype=np.float64))


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)) -> np.ndarray:
    """(4, 4) float ``T_base_camera`` for an OpenCV camera at ``eye`` looking at ``target``.

    ``eye``, ``target`` and ``up`` are (3,) points/directions in the base frame; the image's
    "up" (-y in OpenCV) is aligned with ``up`` as far as possible.
    """
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-9:  # looking straight along `up`: any perpendicular will do
        x = np.cross(z, [1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def orbit_camera(
    target: np.ndarray,
    distance: float,
    azimuth: float,
    elevation: float,
    fov_y: float,
    width: int,
    height: int,
) -> Camera:
    """A camera on a sphere around ``target`` looking at it.

    ``azimuth`` (rad) is measured in the base xy-plane from +x (the object's front) towards +y;
    ``elevation`` (rad) above the xy-plane; ``fov_y`` (rad) is the vertical field of view.
    """
    direction = np.array(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)]
    )
    eye = np.asarray(target, dtype=np.float64) + distance * direction
    f = 0.5 * height / np.tan(0.5 * fov_y)
    return Camera(
        width=int(width),
        height=int(height),
        fx=float(f),
        fy=float(f),
        cx=width / 2.0,
        cy=height / 2.0,
        T_base_camera=_as_tuple(look_at(eye, target)),
    )
