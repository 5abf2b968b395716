"""Stage inputs built from a synth object: a rendered photo, its foreground and the GT box.

Shared by the part_masks, segment3d and amodal tests: they start from what the foreground and
reconstruct stages would hand over if they were exact (true mask, true camera, the object's box;
for an open laptop the base's box and the lid's, apart, as reconstruct's clamshell).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from stages._shared.io import write_image, write_json, write_mesh
from stages.foreground import ForegroundResult
from stages._shared.kinematics import part_box
from stages.reconstruct import HingedPanel, ReconstructResult
from synth.objects import SynthObject, make_object
from synth.render import RenderedView, product_camera, render_view


@dataclass(frozen=True)
class SynthCase:
    obj: SynthObject
    view: RenderedView
    fg: ForegroundResult
    recon: ReconstructResult
    box: np.ndarray  # (2, 3) float: the box the reconstruct result holds, base frame, metres


def front_plane_x(mesh: trimesh.Trimesh) -> float:
    """x of the mesh's largest +x-facing plane (a panel's front, not its handle's tip), metres;
    the mesh's largest x when no face looks along +x (a laptop's raised lid)."""
    front = mesh.face_normals[:, 0] > 0.99
    if not front.any():
        return float(mesh.bounds[1, 0])
    x = np.round(mesh.triangles_center[front, 0], 3)
    planes, inverse = np.unique(x, return_inverse=True)
    return float(planes[np.argmax(np.bincount(inverse, weights=mesh.area_faces[front]))])


def object_box(obj: SynthObject) -> np.ndarray:
    """(2, 3) float: the object's bounds with the front at its panels' front plane, not at handle tips."""
    box = obj.bounds.copy()
    box[1, 0] = max(front_plane_x(m) for m in [obj.base] + [p.mesh for p in obj.parts])
    return box


def synth_case(category: str, seed: int, out_dir: Path, size: int = 384) -> SynthCase:
    """Render ``make_object(category, seed)`` from its product camera and build stage inputs."""
    out_dir = Path(out_dir)
    obj = make_object(category, seed)
    camera = product_camera(obj, seed, size, size)
    view = render_view(obj, camera)
    image = write_image(out_dir / "fg" / "image.png", view.rgb)
    mask = write_image(out_dir / "fg" / "mask.png", view.mask)
    rgba = write_image(out_dir / "fg" / "rgba.png", np.dstack([view.rgb, view.mask.astype(np.uint8) * 255]))
    ys, xs = np.nonzero(view.mask)
    fg = ForegroundResult(
        image=image,
        mask=mask,
        rgba=rgba,
        width=size,
        height=size,
        bbox=(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
        mask_fraction=float(view.mask.mean()),
    )
    box, panels = object_box(obj), []
    shape = [trimesh.creation.box(bounds=box)]
    tilted = [p for p in obj.parts if p.joint_type == "revolute" and part_box(p.mesh.vertices).axes[2, 2] < 0.999]
    if tilted:  # an open laptop: the body's box and, apart from it, each tilted panel's box
        box = obj.base.bounds.copy()
        shape = [trimesh.creation.box(bounds=box)]
        for part in tilted:
            panel = part_box(part.mesh.vertices)
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = panel.axes.T, panel.centre
            shape.append(trimesh.creation.box(extents=panel.extents, transform=T))
            panels.append(HingedPanel(box=panel, origin=part.origin, axis=part.axis, angle=-part.lower))
    mesh_path = write_mesh(out_dir / "recon" / "mesh.glb", trimesh.util.concatenate(shape))
    camera_json = write_json(out_dir / "recon" / "camera.json", camera.to_dict())
    recon = ReconstructResult(
        mesh=mesh_path,
        camera=camera,
        camera_json=camera_json,
        extents_m=tuple(float(v) for v in box[1] - box[0]),
        silhouette_iou=1.0,
        panels=tuple(panels),
    )
    return SynthCase(obj=obj, view=view, fg=fg, recon=recon, box=box)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def gt_hinge_side(obj: SynthObject, name: str) -> str | None:
    """The hinge side (panel edge as seen from the front) of a synth part, None for prismatic.

    A vertical axis on the part's -y (+y) side is "left" ("right"); a horizontal axis at the
    part's bottom (top) is "bottom" ("top"); a lid's back edge is "top".
    """
    part = obj.part(name)
    if part.joint_type == "prismatic":
        return None
    lo, hi = part.mesh.bounds
    centre = 0.5 * (lo + hi)
    if abs(part.axis[2]) > 0.9:
        return "left" if part.origin[1] < centre[1] else "right"
    if part.origin[0] < centre[0] - 0.25 * (hi[0] - lo[0]):
        return "top"  # hinged along the back edge: a lid
    return "bottom" if part.origin[2] < centre[2] else "top"


def gt_part_masks(case: SynthCase, out_dir: Path):
    """A PartMasksResult holding the ground-truth masks, joint types and hinge sides."""
    from stages.part_masks import PartMask, PartMasksResult

    parts = []
    for name, mask in case.view.part_masks.items():
        path = write_image(Path(out_dir) / f"{name}.png", mask)
        joint = case.obj.part(name).joint_type
        parts.append(PartMask(name, path, joint, gt_hinge_side(case.obj, name), None, 1.0))
    return PartMasksResult(parts=tuple(parts))


def gt_faces(case: SynthCase, mesh: trimesh.Trimesh, name: str, snap: float = 0.05) -> np.ndarray:
    """(F,) bool: faces of the reconstructed mesh that belong to part ``name``.

    A face belongs to the part when its centre lies in the part's bounding box, its front side
    snapped out to the object's front when within ``snap`` of the box's depth (an inset door
    still owns the front faces over it), and the part is the true solid (base or part, at rest) nearest to
    it (the body's walls beside a drawer's tray stay the base's). So a door or drawer owns the
    front faces over its panel, a lid the top faces over it, and the gaps between panels no one.
    """
    from scipy.spatial import cKDTree

    k = 1 + [p.name for p in case.obj.parts].index(name)
    solids = [case.obj.base] + [p.mesh for p in case.obj.parts]
    lo, hi = solids[k].bounds
    box_lo, box_hi = case.box
    hi = hi.copy()
    if abs(hi[0] - box_hi[0]) <= snap * (box_hi[0] - box_lo[0]):
        hi[0] = max(hi[0], box_hi[0])
    centres = mesh.triangles_center
    inside = np.all((centres >= lo - 1e-6) & (centres <= hi + 1e-6), axis=1)
    # Distance to dense surface samples (~3 mm apart): exact enough to pick the nearest solid.
    samples = [m.sample(int(np.clip(m.area / 1e-5, 20_000, 300_000)), seed=j) for j, m in enumerate(solids)]
    distance = np.stack([cKDTree(p).query(centres[inside])[0] for p in samples])
    owned = np.zeros(len(centres), dtype=bool)
    owned[inside] = np.argmin(distance, axis=0) == k
    return owned


def interior_click(mask: np.ndarray) -> tuple[int, int]:
    """(x, y) of the mask pixel farthest from its outline."""
    from scipy import ndimage

    distance = ndimage.distance_transform_edt(mask)
    y, x = np.unravel_index(np.argmax(distance), mask.shape)
    return int(x), int(y)
