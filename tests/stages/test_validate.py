"""Stage 10, validate: simulators load and sweep good packages; broken ones fail with named issues."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lxml import etree

import stages.validate as validate
from stages._shared.io import read_json
from stages.urdf_package import UrdfPackageResult
from stages.urdf_package.template import write_package
from synth.objects import make_object
from tests.stages.package_inputs import package_specs

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A ground-truth package of a synth cabinet with one drawer and one door."""
    obj = make_object("storage_cabinet", 9)
    links, joints = package_specs(obj)
    return obj, write_package("cabinet", links, joints, tmp_path_factory.mktemp("packages"))


def _copy(package: UrdfPackageResult, dest: Path) -> UrdfPackageResult:
    target = dest / package.package_dir.name
    shutil.copytree(package.package_dir, target)
    return UrdfPackageResult(
        name=package.name,
        package_dir=target,
        urdf=target / package.urdf.name,
        package_json=target / "package.json",
    )


def _hinged_box(dest: Path) -> UrdfPackageResult:
    src = DATA / "hinged_box"
    return _copy(
        UrdfPackageResult("hinged_box", src, src / "hinged_box.urdf", src / "package.json"), dest
    )


def _edit(urdf: Path, xpath: str, **attrib) -> None:
    """Set attributes on every element matching ``xpath`` in the URDF file."""
    tree = etree.parse(str(urdf))
    elements = tree.getroot().xpath(xpath)
    assert elements, xpath
    for element in elements:
        for key, value in attrib.items():
            element.set(key, value)
    tree.write(str(urdf), xml_declaration=True, encoding="utf-8")


def test_good_package_passes(good, tmp_path):
    obj, package = good
    result = validate.run(validate.Config(), package, tmp_path)
    assert result.passed, result.issues
    assert result.pybullet and result.mujoco and result.issues == ()
    assert 0.0 <= result.max_penetration_m <= 1e-3  # metres, exact geometry
    block = read_json(package.package_json)["validation"]
    assert block["passed"] is True and block["max_penetration_m"] == result.max_penetration_m
    for part in obj.parts:
        joint = block["joints"][f"{part.name}_joint"]
        assert len(joint["sweep"]) >= validate.Config().sweep_steps
        assert min(joint["sweep"]) == pytest.approx(part.lower) and max(joint["sweep"]) == pytest.approx(part.upper)
        assert joint["pybullet_penetration_m"] <= block["tolerances"]["max_collision_penetration_m"]
        assert joint["mujoco_penetration_m"] <= block["tolerances"]["max_collision_penetration_m"]
    assert result.report == package.package_dir / "validation.md" and "PASSED" in result.report.read_text()
    assert (tmp_path / "validation.json").is_file() and (tmp_path / "mujoco" / "cabinet.xml").is_file()


def test_hand_written_urdf_passes(tmp_path):
    package = _hinged_box(tmp_path / "pkg")
    result = validate.run(validate.Config(), package, tmp_path / "out")
    assert result.passed, result.issues
    assert result.pybullet and result.mujoco and result.max_penetration_m <= 1e-3


def test_every_physics_issue_is_reported_by_name(good, tmp_path):
    package = _copy(good[1], tmp_path / "pkg")
    _edit(package.urdf, "//joint[@name='drawer_0_joint']/limit", lower="0.3", upper="0")
    _edit(package.urdf, "//link[@name='door_0']/inertial/mass", value="0")
    result = validate.run(validate.Config(), package, tmp_path / "out")
    assert not result.passed and not result.mujoco
    assert "joint 'drawer_0_joint': <limit> lower 0.3 > upper 0" in result.issues
    assert any(i.startswith("link 'door_0': mass 0") for i in result.issues)
    assert any(i.startswith("mujoco: cannot compile") for i in result.issues)
    assert read_json(package.package_json)["validation"]["passed"] is False
    assert "FAILED" in result.report.read_text()


def test_part_swinging_through_the_base_fails(good, tmp_path):
    package = _copy(good[1], tmp_path / "pkg")
    door = good[0].part("door_0")
    flipped = " ".join(f"{-v:g}" for v in door.axis)  # the door now swings into the cabinet
    _edit(package.urdf, "//joint[@name='door_0_joint']/axis", xyz=flipped)
    result = validate.run(validate.Config(), package, tmp_path / "out")
    assert not result.passed and result.pybullet and result.mujoco
    assert result.max_penetration_m > 0.005
    assert any(i.startswith("joint 'door_0_joint': 'door_0' passes") and "into 'base'" in i for i in result.issues)
    assert any(i.startswith("joint 'door_0_joint': collision pieces") and "PyBullet" in i for i in result.issues)
    assert any(i.startswith("joint 'door_0_joint': collision pieces") and "MuJoCo" in i for i in result.issues)
    assert not any("drawer_0" in i for i in result.issues)


def test_file_inertia_and_joint_issues_are_collected(tmp_path):
    package = _hinged_box(tmp_path / "pkg")
    (package.package_dir / "meshes" / "visual" / "lid.png").unlink()
    (package.package_dir / "meshes" / "collision" / "base_0.obj").unlink()
    _edit(package.urdf, "//joint[@name='lid_joint']/axis", xyz="0 -2 0")
    _edit(package.urdf, "//joint[@name='lid_joint']/limit", effort="0")
    _edit(package.urdf, "//link[@name='base']/inertial/inertia", ixx="1.0")
    result = validate.run(validate.Config(), package, tmp_path / "out")
    assert not result.passed
    expected = [
        "link 'lid': visual mesh 'meshes/visual/lid.obj': texture 'lid.png' named in 'lid.mtl' not found",
        "link 'base': collision mesh 'meshes/collision/base_0.obj': file not found",
        "joint 'lid_joint': <axis> [0, -2, 0] is not a unit vector",
        "joint 'lid_joint': <limit> effort 0 (must be > 0)",
    ]
    for message in expected:
        assert message in result.issues, result.issues
    assert any(i.startswith("link 'base': inertia principal moments") for i in result.issues)


def test_names_and_paths(tmp_path):
    package = _hinged_box(tmp_path / "pkg")
    _edit(package.urdf, "//link[@name='lid']", name="lid-1")
    _edit(package.urdf, "//joint[@name='lid_joint']/child", link="lid-1")
    _edit(package.urdf, "//link[@name='base']/visual/geometry/mesh", filename=str(package.package_dir / "meshes/visual/base.obj"))
    result = validate.run(validate.Config(), package, tmp_path / "out")
    assert "link 'lid-1': name must match [A-Za-z0-9_]+" in result.issues
    assert any(i.startswith("link 'base': visual mesh '/") and "must be relative" in i for i in result.issues)


def test_unreadable_urdf_is_an_issue_not_an_exception(tmp_path):
    package = _hinged_box(tmp_path / "pkg")
    package.urdf.write_text("<robot name='x'><link name='base'>")
    result = validate.run(validate.Config(), package, tmp_path / "out")
    assert not result.passed and not result.pybullet and not result.mujoco
    assert result.issues[0].startswith("urdf 'hinged_box.urdf': not well-formed XML")
    assert result.report.is_file()
