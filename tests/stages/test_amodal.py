"""amodal "solid": watertight parts and carved base that never interpenetrate along the joints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import trimesh

from stages import amodal, segment3d
from stages._shared.io import read_mask, read_mesh, read_rgb, write_image
from stages._shared.kinematics import move_points
from stages._shared.raster import rasterize
from tests.stages.synth_inputs import gt_part_masks, synth_case

CFG = amodal.Config()
#: Deepest allowed penetration of a part's surface into the base, metres.
PENETRATION_M = 1e-3


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("amodal")
    out = {}
    for c, s in [("cabinet", 0), ("drawer_unit", 1), ("box_lid", 2), ("oven", 0)]:
        case = synth_case(c, s, root / f"{c}_{s}")
        masks = gt_part_masks(case, root / f"{c}_{s}" / "gt_masks")
        seg = segment3d.run(segment3d.Config(), case.recon, masks, root / f"{c}_{s}" / "seg")
        out[c] = (case, masks, seg)
    return out


def _motion(part, mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The joint a mask's joint type and hinge side imply for a completed part (test's own
    construction, from the part's bounds): axis, origin, magnitudes from rest to open."""
    lo, hi = mesh.bounds
    if part.joint_type == "prismatic":  # out of the front, as far as the part is deep
        return np.array([1.0, 0, 0]), hi, np.linspace(0, 0.95 * (hi[0] - lo[0]), 6)
    angles = np.linspace(0, np.pi / 2, 7)
    if part.hinge_side in ("left", "right"):  # vertical hinge at the panel's outer front edge
        y = lo[1] if part.hinge_side == "left" else hi[1]
        axis = np.array([0, 0, -1.0]) if part.hinge_side == "left" else np.array([0, 0, 1.0])
        return axis, np.array([hi[0], y, lo[2]]), angles
    if part.hinge_side == "bottom":  # drop-down flap: front bottom edge
        return np.array([0, 1.0, 0]), np.array([hi[0], lo[1], lo[2]]), angles
    # a lid: back top edge, lifting the front
    return np.array([0, -1.0, 0]), np.array([lo[0], lo[1], hi[2]]), angles


def _max_penetration(base: trimesh.Trimesh, part: trimesh.Trimesh, mask_part) -> float:
    points, _ = trimesh.sample.sample_surface_even(part, 1500, seed=0)
    points = np.vstack([points, part.vertices])
    axis, origin, magnitudes = _motion(mask_part, part)
    moved = move_points(points, mask_part.joint_type, axis, origin, magnitudes)  # (M, n, 3)
    depth = trimesh.proximity.signed_distance(base, moved.reshape(-1, 3))  # positive inside
    return float(depth.max())


@pytest.mark.parametrize("category", ["cabinet", "drawer_unit", "box_lid", "oven"])
def test_parts_are_watertight_and_clear_the_base(cases, tmp_path, category):
    case, masks, seg = cases[category]
    result = amodal.run(CFG, case.recon, masks, seg, tmp_path)
    base = read_mesh(result.base_mesh)
    body = read_mesh(case.recon.mesh)
    assert base.is_watertight and 0 < base.volume < body.volume
    assert len(result.part_meshes) == len(masks.parts)
    for mask_part, path in zip(masks.parts, result.part_meshes):
        part = read_mesh(path)
        assert part.is_watertight and part.volume > 0, mask_part.name
        # Inside the body's box, and moving through its range without entering the base.
        assert np.all(part.bounds[0] >= body.bounds[0] - 1e-6) and np.all(part.bounds[1] <= body.bounds[1] + 1e-6)
        assert _max_penetration(base, part, mask_part) <= PENETRATION_M, mask_part.name


def test_parts_cover_their_ground_truth_extent(cases, tmp_path):
    """A completed door spans its true panel on the front (y, z) within 1.5 cm, and a drawer
    tray reaches deep into the body."""
    case, masks, seg = cases["drawer_unit"]
    result = amodal.run(CFG, case.recon, masks, seg, tmp_path)
    depth = case.box[1, 0] - case.box[0, 0]
    for mask_part, path in zip(masks.parts, result.part_meshes):
        part = read_mesh(path)
        truth = case.obj.part(mask_part.name).mesh.bounds
        assert np.allclose(part.bounds[:, 1:], truth[:, 1:], atol=0.015), mask_part.name
        assert part.bounds[1, 0] - part.bounds[0, 0] >= 0.6 * depth


def test_lid_is_the_slab_above_its_seam(cases, tmp_path):
    case, masks, seg = cases["box_lid"]
    result = amodal.run(CFG, case.recon, masks, seg, tmp_path)
    lid, base = read_mesh(result.part_meshes[0]), read_mesh(result.base_mesh)
    truth = case.obj.part("lid_0").mesh.bounds
    assert lid.bounds[0, 2] == pytest.approx(truth[0, 2], abs=0.01)  # cut at the lid's underside
    assert base.bounds[1, 2] <= lid.bounds[0, 2] - 0.9 * CFG.gap
    # The base is an open box: much less than its full slab of volume.
    assert base.volume < 0.5 * np.prod(base.extents)


def test_lid_seen_only_on_top_is_a_thin_slab(cases, tmp_path):
    """A lid whose rim the photo does not resolve (its mask only on the top face) still completes."""
    case, masks, seg = cases["box_lid"]
    body = read_mesh(case.recon.mesh)
    raster = rasterize(case.recon.camera, body.vertices, body.faces)
    up = raster.mask & (body.face_normals[np.where(raster.mask, raster.face_id, 0)][..., 2] > 0.9)
    lid_mask = read_mask(masks.parts[0].mask)
    assert (lid_mask & ~up).sum() > 50  # the ground-truth mask does show the rim
    top_only = write_image(tmp_path / "top_only.png", lid_mask & up)
    masks = dataclasses.replace(masks, parts=(dataclasses.replace(masks.parts[0], mask=top_only),))
    result = amodal.run(CFG, case.recon, masks, seg, tmp_path / "out")
    lid, base = read_mesh(result.part_meshes[0]), read_mesh(result.base_mesh)
    assert lid.is_watertight and base.is_watertight
    top = body.bounds[1, 2]
    assert lid.bounds[1, 2] == pytest.approx(top, abs=1e-6)
    assert lid.bounds[0, 2] == pytest.approx(top - CFG.panel_thickness, abs=1e-6)
    assert np.allclose(lid.bounds[:, :2], body.bounds[:, :2], atol=1e-6)  # the whole top
    assert _max_penetration(base, lid, masks.parts[0]) <= PENETRATION_M


def test_amodal_images_show_each_mesh_alone(cases, tmp_path):
    case, masks, seg = cases["cabinet"]
    result = amodal.run(CFG, case.recon, masks, seg, tmp_path)
    for path in (result.base_image,) + result.part_images:
        image = read_rgb(path)
        assert image.shape == (case.fg.height, case.fg.width, 3)
        drawn = np.any(image < 250, axis=2)
        assert 0.01 < drawn.mean() < 0.9
    # A door drawn alone covers its mask in the photo.
    door = np.any(read_rgb(result.part_images[0]) < 250, axis=2)
    gt = case.view.part_masks[masks.parts[0].name]
    assert np.sum(door & gt) / np.sum(door | gt) >= 0.8


def test_mask_off_its_faces_is_an_error(cases, tmp_path):
    case, masks, seg = cases["cabinet"]
    empty = write_image(tmp_path / "empty.png", np.zeros((case.fg.height, case.fg.width), bool))
    bad = dataclasses.replace(masks, parts=(dataclasses.replace(masks.parts[0], mask=empty),) + masks.parts[1:])
    with pytest.raises(ValueError, match="shows none of its segmented faces"):
        amodal.run(CFG, case.recon, bad, seg, tmp_path)


def test_boolean_slivers_do_not_open_the_mesh():
    """Two cavities 1e-11 m out of line leave edges that short; the mesh must stay closed."""
    from manifold3d import Manifold

    from stages.amodal.solid import _to_trimesh

    body = Manifold.cube((1.0, 1.0, 1.0))
    a = Manifold.cube((0.5, 0.4, 0.8)).translate((0.6, 0.05, 0.1))
    b = Manifold.cube((0.5, 0.4, 0.8)).translate((0.6, 0.45 + 1e-11, 0.1 + 1e-11))
    solid = body - (a + b)
    mesh = _to_trimesh(solid, "base")
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(solid.volume(), rel=1e-9)


def test_a_flap_below_the_top_is_not_a_lid(tmp_path):
    """A storage cabinet's top-hinged flap stops 4 cm under the top (seen from below the top):
    it is a panel swinging up about its own top edge, not the body's slab above it."""
    case = synth_case("storage_cabinet", 1, tmp_path / "case")
    masks = gt_part_masks(case, tmp_path / "gt_masks")
    assert [p.hinge_side for p in masks.parts][0] == "top"
    seg = segment3d.run(segment3d.Config(), case.recon, masks, tmp_path / "seg")
    result = amodal.run(CFG, case.recon, masks, seg, tmp_path / "out")
    flap, base = read_mesh(result.part_meshes[0]), read_mesh(result.base_mesh)
    truth = case.obj.part("flap_0")
    assert flap.bounds[1, 2] == pytest.approx(truth.mesh.bounds[1, 2], abs=0.02)  # not up to the top
    moved = move_points(
        np.vstack([trimesh.sample.sample_surface_even(flap, 1500, seed=0)[0], flap.vertices]),
        "revolute", truth.axis, truth.origin, np.linspace(0, truth.upper, 7),
    )
    assert trimesh.proximity.signed_distance(base, moved.reshape(-1, 3)).max() <= PENETRATION_M


def test_open_laptop_lid_turns_about_its_hinge_clear_of_the_base(tmp_path):
    # The reconstruction holds the screen as a hinged panel apart from the base (the clamshell).
    case = synth_case("laptop", 0, tmp_path / "case")
    masks = gt_part_masks(case, tmp_path / "gt_masks")
    seg = segment3d.run(segment3d.Config(), case.recon, masks, tmp_path / "seg")
    result = amodal.run(CFG, case.recon, masks, seg, tmp_path / "amodal")
    base, lid = read_mesh(result.base_mesh), read_mesh(result.part_meshes[0])
    assert base.is_watertight and lid.is_watertight
    (panel,) = case.recon.panels
    assert lid.volume == pytest.approx(float(np.prod(panel.box.extents)), rel=1e-6)
    assert base.volume == pytest.approx(float(np.prod(case.box[1] - case.box[0])), rel=1e-6)  # the base's box, whole
    # Closed down onto the keyboard and opened further, about the true hinge: never inside the base.
    truth = case.obj.part("lid_0")
    points = np.vstack([trimesh.sample.sample_surface_even(lid, 1500, seed=0)[0], lid.vertices])
    moved = move_points(points, "revolute", truth.axis, truth.origin, np.linspace(truth.lower, truth.upper, 13))
    assert trimesh.proximity.signed_distance(base, moved.reshape(-1, 3)).max() <= PENETRATION_M
