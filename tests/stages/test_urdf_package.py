"""Stage 9, urdf_package: package layout, package.json, URDF round trip, frames and inertials."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import trimesh
import yourdfpy

import stages.texture as texture
import stages.urdf_package as urdf_package
from stages._shared.io import read_json, read_mask, sha256_file
from stages.urdf_package.template import LinkSpec, write_package
from tests.stages.package_inputs import amodal_from_synth, joint_fit_from_synth, package_specs, part_masks_from_view
from tests.stages.synth_inputs import synth_case

NAME = "storage_cabinet_9"
#: A coarse, fast CoACD for tests that do not look at the collision pieces.
FAST = urdf_package.Config(
    coacd_threshold=0.3, coacd_resolution=300, coacd_mcts_iterations=10, coacd_mcts_depth=1
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("urdf_package")
    case = synth_case("storage_cabinet", 9, out / "inputs", size=192)  # one drawer, one door
    amodal = amodal_from_synth(case.obj, case.view, out / "amodal")
    masks = part_masks_from_view(case.obj, case.view, out / "masks")
    joints = joint_fit_from_synth(case.obj, out / "joints")
    names = tuple(p.name for p in masks.parts)
    tex = texture.run(texture.Config(texture_size=128), case.fg, case.recon, names, amodal, out / "08-texture")
    inputs = dict(fg=case.fg, recon=case.recon, masks=masks, joints=joints, texture=tex)
    result = urdf_package.run(
        urdf_package.Config(), NAME, case.fg.image, scale_m=float(case.obj.extents.max()), out_dir=out / "09", **inputs
    )
    return case, inputs, result


def test_package_layout(built):
    case, _, result = built
    d = result.package_dir
    assert d.name == NAME and result.urdf == d / f"{NAME}.urdf" and result.package_json == d / "package.json"
    for link in ["base"] + [p.name for p in case.obj.parts]:
        for suffix in (".obj", ".mtl", ".png"):
            assert (d / "meshes" / "visual" / f"{link}{suffix}").is_file()
        assert (d / "meshes" / "collision" / f"{link}_0.obj").is_file()
    for part in case.obj.parts:
        assert (read_mask(d / "masks" / f"{part.name}.png") == case.view.part_masks[part.name]).all()
    filenames = re.findall(r'filename="([^"]+)"', result.urdf.read_text())
    assert filenames and all(not f.startswith("/") and "://" not in f for f in filenames)
    assert all((d / f).is_file() for f in filenames)
    assert not any(p.name.startswith(".") for p in d.parent.iterdir())  # no temporary folder left


def test_package_json(built):
    case, inputs, result = built
    summary = read_json(result.package_json)
    for key in ("name", "version", "source", "scale_m", "camera", "joints", "validation"):
        assert key in summary
    assert summary["name"] == NAME and summary["version"] == "image-to-urdf 0.1.0"
    assert summary["source"] == {"image": case.fg.image.name, "image_sha256": sha256_file(case.fg.image)}
    assert summary["scale_m"] == pytest.approx(case.obj.extents.max())
    assert summary["camera"] == case.recon.camera.to_dict()
    assert summary["validation"] is None
    by_name = {j["name"]: j for j in summary["joints"]}
    for part, mask in zip(case.obj.parts, inputs["masks"].parts):
        j = by_name[f"{part.name}_joint"]
        assert (j["type"], j["parent"], j["child"]) == (part.joint_type, "base", part.name)
        assert np.allclose(j["axis_base"], part.axis) and np.allclose(j["origin_base"], part.origin)
        assert (j["lower"], j["upper"]) == pytest.approx((part.lower, part.upper))
        assert j["mask"] == f"masks/{part.name}.png" and (result.package_dir / j["mask"]).is_file()
        assert j["click"] == list(mask.click) and j["confidence"] == 1.0
        assert j["effort"] > 0 and j["velocity"] > 0


def test_urdf_round_trip_and_joints(built):
    case, _, result = built
    urdf = yourdfpy.URDF.load(str(result.urdf), load_meshes=False)
    assert urdf.validate()
    assert {link.name for link in urdf.robot.links} == {"base"} | {p.name for p in case.obj.parts}
    joints = {j.name: j for j in urdf.robot.joints}
    for part in case.obj.parts:
        j = joints[f"{part.name}_joint"]
        assert (j.type, j.parent, j.child) == (part.joint_type, "base", part.name)
        assert np.allclose(j.origin[:3, 3], part.origin, atol=1e-9) and np.allclose(j.origin[:3, :3], np.eye(3))
        assert np.allclose(j.axis, part.axis)
        assert (j.limit.lower, j.limit.upper) == pytest.approx((part.lower, part.upper), abs=1e-9)
        assert j.limit.effort > 0 and j.limit.velocity > 0


@pytest.mark.parametrize("where", [0.0, 0.5, 1.0])
def test_link_meshes_follow_the_joints(built, where):
    """Forward kinematics of the written URDF puts each part where the ground truth has it."""
    case, _, result = built
    urdf = yourdfpy.URDF.load(str(result.urdf), load_meshes=False)
    for part in case.obj.parts:
        q = part.lower + where * (part.upper - part.lower)
        urdf.update_cfg({f"{p.name}_joint": (q if p is part else 0.0) for p in case.obj.parts})
        visual = trimesh.load(result.package_dir / "meshes" / "visual" / f"{part.name}.obj", process=False)
        visual.apply_transform(urdf.get_transform(frame_to=part.name, frame_from="base"))
        expected = part.posed(q)
        assert np.allclose(visual.bounds, expected.bounds, atol=1e-6)  # metres
        collision = trimesh.util.concatenate(
            [trimesh.load(result.package_dir / c.geometry.mesh.filename) for c in urdf.link_map[part.name].collisions]
        )
        collision.apply_transform(urdf.get_transform(frame_to=part.name, frame_from="base"))
        assert np.allclose(collision.bounds, expected.bounds, atol=0.01)  # convex pieces approximate


def test_inertials_from_mesh_and_density(built):
    case, _, result = built
    density = urdf_package.Config().density_kg_m3
    urdf = yourdfpy.URDF.load(str(result.urdf), load_meshes=False)
    origins = {"base": np.zeros(3)} | {p.name: p.origin for p in case.obj.parts}
    for name, mesh in [("base", case.obj.base)] + [(p.name, p.mesh) for p in case.obj.parts]:
        inertial = urdf.link_map[name].inertial
        solid = mesh.copy()
        solid.density = density
        assert inertial.mass == pytest.approx(mesh.volume * density, rel=1e-6)
        assert np.allclose(inertial.origin[:3, 3], solid.center_mass - origins[name], atol=1e-7)
        assert np.allclose(inertial.inertia, solid.moment_inertia, rtol=1e-5, atol=1e-9)  # OBJ keeps 8 decimals
        moments = np.linalg.eigvalsh(inertial.inertia)
        assert moments.min() > 0 and moments[0] + moments[1] >= moments[2]


def test_collision_pieces_are_convex_and_clear_the_parts(built):
    case, _, result = built
    d = result.package_dir
    summary = read_json(result.package_json)
    for entry in summary["links"]:
        for rel in entry["collision"]:
            piece = trimesh.load(d / rel)
            assert piece.is_watertight and piece.is_convex
        assert entry["collision_intrusion_m"] <= urdf_package.Config().collision_clearance_m


def test_camera_and_masks_rescaled_to_the_original_photo(built, tmp_path):
    case, inputs, _ = built
    photo = tmp_path / "original.png"
    PIL.Image.open(case.fg.image).resize((2 * case.fg.width, 2 * case.fg.height)).save(photo)
    result = urdf_package.run(FAST, "big", photo, scale_m=1.0, out_dir=tmp_path / "09", **inputs)
    summary = read_json(result.package_json)
    assert summary["camera"] == case.recon.camera.scaled(2.0).to_dict()
    assert summary["source"]["image"] == "original.png"
    mask = read_mask(result.package_dir / "masks" / "door_0.png")
    assert mask.shape == (2 * case.fg.height, 2 * case.fg.width)


def test_write_package_checks_its_inputs(built, tmp_path):
    case, _, _ = built
    links, joints = package_specs(case.obj)
    with pytest.raises(ValueError, match="A-Za-z0-9_"):
        write_package("bad name", links, joints, tmp_path)
    with pytest.raises(ValueError, match="one root"):
        write_package("x", links, joints[:1], tmp_path)
    open_box = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
    open_box.update_faces(np.arange(len(open_box.faces)) > 0)
    with pytest.raises(ValueError, match="link 'base'.*not closed"):
        write_package("x", [LinkSpec("base", open_box)] + links[1:], joints, tmp_path)
    assert not (tmp_path / "x").exists()


def test_run_checks_that_stages_agree_on_the_parts(built, tmp_path):
    case, inputs, _ = built
    joints = inputs["joints"]
    fewer = type(joints)(joints=joints.joints[:1], params_json=joints.params_json)
    with pytest.raises(ValueError, match="parts must match"):
        urdf_package.run(FAST, "x", case.fg.image, scale_m=1.0, out_dir=tmp_path, **(inputs | {"joints": fewer}))


def test_fixed_joint_has_no_limits(built, tmp_path):
    case, _, _ = built
    box = trimesh.creation.box(bounds=[[-0.1, -0.1, 0.0], [0.1, 0.1, 0.2]])
    knob = trimesh.creation.box(bounds=[[0.1, -0.01, 0.09], [0.12, 0.01, 0.11]])
    for m in (box, knob):
        m.visual.face_colors = (120, 120, 120, 255)
    from stages.urdf_package.template import JointSpec

    joint = JointSpec("knob_joint", "fixed", "base", "knob", (1.0, 0.0, 0.0), (0.1, 0.0, 0.1), 0.0, 0.0)
    result = write_package("fixed", [LinkSpec("base", box), LinkSpec("knob", knob)], [joint], tmp_path, cfg=FAST)
    text = Path(result.urdf).read_text()
    assert 'type="fixed"' in text and "<limit" not in text
    urdf = yourdfpy.URDF.load(str(result.urdf), load_meshes=False)
    assert urdf.joint_map["knob_joint"].limit is None


def test_limits_narrowed_where_collision_pieces_would_collide(tmp_path):
    """A door hinged next to a fin that sticks out of the body's side, given an upper limit of pi:
    it hits the fin just past 90 deg, so the written limit stops there and neither simulator sees
    its collision pieces penetrate. (The exact solids still do, by the allowance: keeping them
    clear is joint_fit's part, which hands over limits no wider than their clear range.)"""
    from stages.urdf_package.template import JointSpec

    body = trimesh.creation.box(bounds=[[-0.5, -0.5, 0.0], [0.0, 0.5, 1.0]])
    fin = trimesh.creation.box(bounds=[[-0.5, -0.55, 0.0], [0.3, -0.5, 1.0]])
    base = trimesh.boolean.union([body, fin], engine="manifold")
    door = trimesh.creation.box(bounds=[[0.0, -0.49, 0.05], [0.02, 0.49, 0.95]])
    for m in (base, door):
        m.visual.face_colors = (150, 120, 90, 255)
    joint = JointSpec("door_joint", "revolute", "base", "door", (0.0, 0.0, -1.0), (0.02, -0.49, 0.5), 0.0, np.pi)
    result = write_package("finned", [LinkSpec("base", base), LinkSpec("door", door)], [joint], tmp_path)
    entry = read_json(result.package_json)["joints"][0]
    assert entry["limits_before_collision_check"] == [0.0, pytest.approx(np.pi)]
    assert np.pi / 2 < entry["upper"] < np.radians(100)
    urdf = yourdfpy.URDF.load(str(result.urdf), load_meshes=False)
    assert urdf.joint_map["door_joint"].limit.upper == pytest.approx(entry["upper"])

    import stages.validate as validate

    validate.run(validate.Config(), result, tmp_path / "validate")
    checked = read_json(tmp_path / "validate" / "validation.json")
    tolerance = checked["tolerances"]["max_collision_penetration_m"]
    assert checked["pybullet"] and checked["mujoco"]
    assert 0 < checked["collision_penetration_m"]["pybullet"] <= tolerance
    assert checked["collision_penetration_m"]["mujoco"] <= tolerance
    assert not [i for i in checked["issues"] if "PyBullet" in i or "MuJoCo" in i], checked["issues"]
