"""Stage 2, reconstruct: camera and box fitted to rendered product photos of synth objects."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

import stages.reconstruct
from stages._shared.camera import Camera, orbit_camera
from stages._shared.io import read_json, read_mesh, write_image
from stages._shared.kinematics import part_box
from stages._shared.raster import rasterize
from stages.foreground import ForegroundResult
from synth.objects import make_object
from synth.render import product_camera, render_view


def _foreground(tmp_path, rgb: np.ndarray, mask: np.ndarray) -> ForegroundResult:
    """A ForegroundResult for a rendered photo and its exact mask (isolates this stage)."""
    image = write_image(tmp_path / "fg" / "image.png", rgb)
    mask_path = write_image(tmp_path / "fg" / "mask.png", mask)
    ys, xs = np.nonzero(mask)
    return ForegroundResult(
        image=image,
        mask=mask_path,
        rgba=image,
        width=mask.shape[1],
        height=mask.shape[0],
        bbox=(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
        mask_fraction=float(mask.mean()),
    )


def _reconstruct_product_photo(category: str, seed: int, tmp_path):
    """The object, its product camera, its 512 px photo and what reconstruct makes of the photo
    (its exact mask as the foreground, ``--max-dim`` its true largest dimension)."""
    obj = make_object(category, seed)
    true_camera = product_camera(obj, seed, 512, 512)
    view = render_view(obj, true_camera)
    fg = _foreground(tmp_path, view.rgb, view.mask)
    result = stages.reconstruct.run(stages.reconstruct.Config(), fg, float(obj.extents.max()), tmp_path / "rc")
    return obj, true_camera, view, result


def _view_angles(camera_position: np.ndarray, centre: np.ndarray) -> tuple[float, float]:
    """Azimuth and elevation (degrees) of a camera seen from ``centre``."""
    d = camera_position - centre
    d = d / np.linalg.norm(d)
    return float(np.degrees(np.arctan2(d[1], d[0]))), float(np.degrees(np.arcsin(d[2])))


def _check_base_frame(result, max_dim: float) -> trimesh.Trimesh:
    mesh = read_mesh(result.mesh)
    assert mesh.is_watertight
    lo, hi = mesh.bounds
    assert hi - lo == pytest.approx(result.extents_m, abs=1e-6)
    assert max(result.extents_m) == pytest.approx(max_dim, rel=1e-6)
    assert lo[2] == pytest.approx(0.0, abs=1e-6)  # origin at the bottom centre
    assert (lo[:2] + hi[:2]) / 2 == pytest.approx([0.0, 0.0], abs=1e-6)
    assert Camera.load(result.camera_json) == result.camera
    return mesh


# Objects with their front and one side in view, azimuths of both signs (truth: 14, 14, -28 deg).
CASES = [("cabinet", 4), ("microwave", 4), ("fridge", 7)]


@pytest.mark.parametrize(("category", "seed"), CASES)
def test_camera_and_box_of_rendered_object(category, seed, tmp_path):
    obj, true_camera, view, result = _reconstruct_product_photo(category, seed, tmp_path)
    max_dim = float(obj.extents.max())

    mesh = _check_base_frame(result, max_dim)
    assert result.silhouette_iou >= 0.9
    # The camera, in the base frame: same view direction as the truth, front (+x) facing it.
    camera = result.camera
    assert (camera.width, camera.height, camera.cx, camera.cy) == (512, 512, 256.0, 256.0)
    assert camera.position[0] > 0
    bounds = obj.bounds
    true_az, true_el = _view_angles(true_camera.position, bounds.mean(axis=0))
    az, el = _view_angles(camera.position, mesh.bounds.mean(axis=0))
    assert abs(az - true_az) < 8.0 and abs(el - true_el) < 8.0
    assert np.array(result.extents_m) / obj.extents == pytest.approx(np.ones(3), abs=0.15)
    # Its projection of the mesh reproduces the photo's silhouette (checked independently here).
    rendered = rasterize(camera, mesh.vertices, mesh.faces).mask
    assert (rendered & view.mask).sum() / (rendered | view.mask).sum() == pytest.approx(result.silhouette_iou, abs=1e-6)
    fit = read_json(tmp_path / "rc" / "fit.json")
    assert abs(fit["azimuth_deg"]) <= 45.0
    assert fit["shape"] == "box" and result.panels == ()


# Open laptops: seed 3's outline alone fitted a flat plate (the screen read as its top face), at
# 31.6 deg elevation against the true 24.0; seed 0 is seen from low (7.6 deg).
@pytest.mark.parametrize("seed", [3, 0])
def test_open_laptop_is_a_clamshell(seed, tmp_path):
    obj, true_camera, view, result = _reconstruct_product_photo("laptop", seed, tmp_path)
    max_dim = float(obj.extents.max())

    mesh = _check_base_frame(result, max_dim)
    assert read_json(tmp_path / "rc" / "fit.json")["shape"] == "clamshell"
    assert len(mesh.split(only_watertight=True)) == 2  # base and lid, apart
    assert result.silhouette_iou >= 0.95
    true_az, true_el = _view_angles(true_camera.position, obj.bounds.mean(axis=0))
    az, el = _view_angles(result.camera.position, mesh.bounds.mean(axis=0))
    assert abs(az - true_az) < 3.0 and abs(el - true_el) < 3.0
    # The lid: its hinge, opening angle and solid match the true screen's (both frames put the
    # origin at the bottom centre of the bounding box).
    (panel,) = result.panels
    lid = obj.part("lid_0")
    assert np.degrees(panel.angle) == pytest.approx(np.degrees(-lid.lower), abs=5.0)
    assert panel.axis == pytest.approx(lid.axis, abs=1e-9)
    assert np.linalg.norm((panel.origin - lid.origin)[[0, 2]]) < 0.02 * max_dim  # metres, in the xz-plane
    true_box = part_box(lid.mesh.vertices)
    assert panel.box.centre == pytest.approx(true_box.centre, abs=0.03 * max_dim)
    assert np.sort(panel.box.extents)[1:] == pytest.approx(np.sort(true_box.extents)[1:], rel=0.1)
    assert panel.box.contains(mesh.vertices).sum() == 8  # the lid piece is the panel's box


# Deep appliances whose outline alone (main before issue 5) put the focal length 13-14 % off;
# their edges' vanishing points fix it (true vertical fields of view 35-48 deg).
FOCAL_CASES = [("fridge", 2), ("dishwasher", 3), pytest.param("dishwasher", 0, marks=pytest.mark.slow)]


@pytest.mark.parametrize(("category", "seed"), FOCAL_CASES)
def test_focal_length_of_rendered_appliance(category, seed, tmp_path):
    obj, true_camera, _, result = _reconstruct_product_photo(category, seed, tmp_path)

    assert result.camera.fx == pytest.approx(true_camera.fx, rel=0.04)  # pixels
    # With the focal length right, the camera sits where the truth does (relative to the object).
    mesh = read_mesh(result.mesh)
    distance = np.linalg.norm(result.camera.position - mesh.bounds.mean(axis=0))
    true_distance = np.linalg.norm(true_camera.position - obj.bounds.mean(axis=0))
    assert distance == pytest.approx(true_distance, rel=0.06)  # metres


def test_stepped_object_is_carved(tmp_path):
    # A block whose right half is lower: its outline has a notch no box explains.
    tall = trimesh.creation.box(extents=[0.5, 0.4, 0.9])
    tall.apply_translation([0.0, -0.2, 0.45])
    low = trimesh.creation.box(extents=[0.5, 0.4, 0.5])
    low.apply_translation([0.0, 0.2, 0.25])
    truth = trimesh.util.concatenate([tall, low])
    camera = orbit_camera([0, 0, 0.45], 2.5, np.radians(20), np.radians(18), np.radians(40), 512, 512)
    raster = rasterize(camera, truth.vertices, truth.faces)
    light = np.array([0.5, 0.3, 0.8]) / np.linalg.norm([0.5, 0.3, 0.8])
    shade = 0.35 + 0.6 * np.clip(truth.face_normals @ light, 0.0, 1.0)
    rgb = np.full((512, 512, 3), 255.0)
    rgb[raster.mask] = np.array([180.0, 120.0, 80.0]) * shade[raster.face_id[raster.mask], None]

    result = stages.reconstruct.run(
        stages.reconstruct.Config(), _foreground(tmp_path, rgb.astype(np.uint8), raster.mask), 0.9, tmp_path / "rc"
    )

    mesh = _check_base_frame(result, 0.9)
    fit = read_json(tmp_path / "rc" / "fit.json")
    assert fit["carved"] and fit["carved_fraction"] > 0.1
    assert result.silhouette_iou >= 0.93
    assert abs(fit["azimuth_deg"] - 20.0) < 8.0 and abs(fit["elevation_deg"] - 18.0) < 8.0
    assert np.array(result.extents_m) == pytest.approx([0.5, 0.8, 0.9], rel=0.15)
    assert mesh.volume < 0.9 * float(np.prod(result.extents_m))  # the notch is gone...
    assert mesh.volume == pytest.approx(truth.volume, rel=0.15)  # ...and little else


def test_mismatched_mask_is_refused(tmp_path):
    fg = _foreground(tmp_path, np.zeros((64, 80, 3), np.uint8), np.pad(np.ones((20, 20), bool), 22)[:64, :80])
    fg = ForegroundResult(**{**fg.__dict__, "width": 100})
    with pytest.raises(ValueError, match="re-run the foreground stage"):
        stages.reconstruct.run(stages.reconstruct.Config(), fg, 1.0, tmp_path / "rc")
    with pytest.raises(ValueError, match="max_dim"):
        stages.reconstruct.run(stages.reconstruct.Config(), fg, 0.0, tmp_path / "rc")


def test_tiny_object_is_refused(tmp_path):
    mask = np.zeros((512, 512), bool)
    mask[250:254, 250:254] = True
    fg = _foreground(tmp_path, np.full((512, 512, 3), 255, np.uint8), mask)
    with pytest.raises(ValueError, match=r"mask\.png: the object covers 16 pixels"):
        stages.reconstruct.run(stages.reconstruct.Config(), fg, 1.0, tmp_path / "rc")
