"""The third-party converter (benchmarks/third_party): MJCF -> URDF package, FK checked against MuJoCo.

A small hand-written MJCF (a cabinet with a drawer on a slide and, nested in the drawer, a flap
on a hinge; rotated bodies and off-origin joint anchors) is converted; the written URDF's forward
kinematics must match MuJoCo's at random joint values, and a URDF with one axis perturbed must
fail the same check. No wheel is downloaded.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("mujoco")

from benchmarks.third_party import mjcf_to_urdf as M  # noqa: E402
from benchmarks.third_party.build import split_objects  # noqa: E402
from benchmarks.third_party.conditions import background_image, draw_condition  # noqa: E402

CABINET = """
<mujoco model="cabinet">
  <compiler angle="radian"/>
  <worldbody>
    <geom type="plane" size="2 2 0.1" rgba="0.5 0.5 0.5 1"/>
    <body name="cabinet" pos="0.3 -0.2 0.1" quat="0.9238795 0 0 0.3826834">
      <geom type="box" size="0.2 0.15 0.1" pos="0 0 0.1" rgba="0.6 0.4 0.2 1"/>
      <geom type="box" size="0.05 0.05 0.05" pos="0 0 0.3" group="4" rgba="1 0 0 1"/>
      <body name="top" pos="0 0 0.22">
        <geom type="box" size="0.2 0.15 0.02" rgba="0.6 0.4 0.2 1"/>
      </body>
      <body name="drawer" pos="0.15 0 0.1" quat="0.9659258 0 0.2588190 0">
        <joint name="slide" type="slide" axis="1 0 0" range="0 0.2"/>
        <geom type="box" size="0.06 0.12 0.05" rgba="0.8 0.8 0.8 1"/>
        <body name="flap" pos="0.07 0 0.04">
          <joint name="hinge" type="hinge" axis="0 1 0" pos="0 0 0.03" range="-1.2 0.3"/>
          <geom type="box" size="0.01 0.1 0.03" rgba="0.2 0.2 0.8 1"/>
          <geom type="cylinder" size="0.01 0.02" pos="0.02 0 0" rgba="0.1 0.1 0.1 1"/>
        </body>
      </body>
    </body>
    <body name="ball" pos="1 1 0.1">
      <freejoint/>
      <geom type="sphere" size="0.05"/>
    </body>
  </worldbody>
</mujoco>
"""


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The cabinet compiled, converted (front yaw 30 deg) and written as a package."""
    tmp = tmp_path_factory.mktemp("third_party")
    xml = tmp / "cabinet.xml"
    xml.write_text(CABINET)
    model = M.load_model(xml)
    art = M.mjcf_articulation(model)
    T = M.base_transform(art, np.deg2rad(30.0))
    links, joints = M.base_frame_specs(art, T)
    pkg = M.write_articulation_package(tmp, "cabinet", links, joints)
    return model, art, T, links, joints, pkg


def test_links_joints_and_base_frame(converted):
    model, art, T, links, joints, pkg = converted
    # jointless "top" merged into the base, the free ball and the world's plane dropped
    assert list(links) == ["base", "drawer", "flap"]
    assert [(j["type"], j["parent"], j["child"]) for j in joints] == [
        ("prismatic", "base", "drawer"), ("revolute", "drawer", "flap")]
    assert any("ball" in d for d in art.dropped)
    np.testing.assert_allclose([joints[0]["lower"], joints[0]["upper"]], [0.0, 0.2])
    np.testing.assert_allclose([joints[1]["lower"], joints[1]["upper"]], [-1.2, 0.3])
    # base frame: bottom centre of the rest bounding box at the origin; the collision geom (group 4) left out
    points = np.concatenate([m.vertices for m in links.values()])
    lo, hi = points.min(axis=0), points.max(axis=0)
    np.testing.assert_allclose([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]], 0.0, atol=1e-12)
    assert hi[2] < 0.25  # the group-4 box at z 0.35..0.45 above the cabinet's bottom is not drawn
    # the drawer slides along the cabinet's x turned by 45 deg about z and tilted by 30 deg, less the 30 deg front turn
    a = np.deg2rad(45.0 - 30.0)
    expected = np.array([np.cos(a) * np.cos(np.deg2rad(30)), np.sin(a) * np.cos(np.deg2rad(30)), -np.sin(np.deg2rad(30))])
    np.testing.assert_allclose(joints[0]["axis_base"], expected, atol=1e-6)
    info = json.loads((pkg / "package.json").read_text())
    assert [j["child"] for j in info["joints"]] == ["drawer", "flap"]
    assert (pkg / "meshes" / "visual" / "flap.obj").is_file()


def test_fk_matches_mujoco(converted):
    model, art, T, links, joints, pkg = converted
    dp, dr = M.fk_mismatch(model, art, T, pkg / "cabinet.urdf", joints, n_samples=10, seed=3)
    assert dp < M.FK_TOL_M and dr < M.FK_TOL_RAD, (dp, dr)


@pytest.mark.parametrize("what", ["axis", "origin"])
def test_fk_check_catches_a_wrong_joint(converted, tmp_path, what):
    model, art, T, links, joints, pkg = converted
    text = (pkg / "cabinet.urdf").read_text()
    head, rest = text.split('<joint name="flap_joint"', 1)
    tag = "axis xyz" if what == "axis" else "origin xyz"
    values = [float(v) for v in re.search(rf'{tag}="([^"]+)"', rest).group(1).split()]
    values[0] += 0.05  # a slightly wrong axis, or an anchor 5 cm off
    rest = re.sub(rf'{tag}="[^"]+"', f'{tag}="{" ".join(map(repr, values))}"', rest, count=1)
    bad = tmp_path / "cabinet.urdf"
    bad.write_text(head + '<joint name="flap_joint"' + rest)
    dp, dr = M.fk_mismatch(model, art, T, bad, joints, n_samples=10, seed=3)
    # a wrong hinge axis turns the flap's frame the wrong way; a wrong anchor moves it
    assert (dr if what == "axis" else dp) > 100 * (M.FK_TOL_RAD if what == "axis" else M.FK_TOL_M), (dp, dr)


def test_front_yaw_sees_the_moving_parts(converted):
    model, art, *_ = converted
    yaw, scores = M.front_yaw(art)
    # the drawer opens along the cabinet's +x (world yaw 45 deg): the nearest candidate side wins
    assert np.rad2deg(yaw) == 0.0 or np.rad2deg(yaw) == 90.0
    assert scores[np.rad2deg(yaw)] == max(scores.values()) and scores[180.0] < max(scores.values())


def test_split_and_conditions_are_deterministic_and_balanced():
    names = [f"pkg_obj{k}" for k in range(7)]
    split = split_objects(names)
    assert split == split_objects(list(reversed(names)))
    assert abs(sum(v == "dev" for v in split.values()) - sum(v == "heldout" for v in split.values())) <= 1
    conds = [draw_condition("pkg_obj0", k) for k in range(3)]
    assert conds[0] == draw_condition("pkg_obj0", 0)
    assert len({c.background for c in conds}) == 3 and len({c.lighting for c in conds}) == 3
    assert all(5 <= c.elevation_deg <= 40 and 30 <= c.focal_mm <= 70 and abs(c.azimuth_deg) <= 45 for c in conds)
    img = background_image("cluttered", 64, 48, 1)
    assert img.shape == (64, 48, 3) and img.dtype == np.uint8 and img.std() > 5
    assert (background_image("white", 8, 8, 0) == 255).all()


def _result(case, category, track, split=None, axis=1.0):
    row = {"gt": "j", "pred": "j", "type_correct": True, "axis_error_deg": axis, "pivot_error": 0.1, "chamfer": 0.05}
    out = {"case": case, "category": category, "track": track, "exit_code": 0, "seconds": 10.0, "log_tail": "",
           "valid": True, "found": 1, "missed": 0, "extra": 0, "joints": [row]}
    return out | ({"split": split} if split else {})


def test_run_tracks_tables_report_each_split_only_for_split_sets():
    from benchmarks.run_tracks import tables

    procedural = tables([_result("000_a", "drawer", "A"), _result("001_b", "door", "A")])
    assert "(dev)" not in procedural and "| drawer |" in procedural and "| **all** | 2 |" in procedural
    text = tables([_result("x_c0", "door", "A", "dev", 1.0), _result("y_c0", "door", "A", "heldout", 9.0),
                   _result("z_c0", "drawer", "A", "dev", 3.0)])
    assert "| door (dev) | 1 |" in text and "| door (heldout) | 1 |" in text and "| drawer (dev) | 1 |" in text
    assert "| **all (dev)** | 2 |" in text and "| **all (heldout)** | 1 |" in text and "| **all** | 3 |" in text
    heldout = next(ln for ln in text.splitlines() if ln.startswith("| **all (heldout)**"))
    assert "| 9.0 / 9.0 |" in heldout  # the held-out half's own axis error, not the whole set's
