"""Ground-truth packages of synth objects: our layout, true joints, and they pass validation
(load in PyBullet and MuJoCo, every joint swept through its range without interpenetration)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import stages.validate as validate
from stages._shared.io import read_mask
from stages.urdf_package.template import Config
from synth.objects import CATEGORIES, make_object
from synth.package import write_synth_package
from synth.render import product_camera, render_view

SIZE = 96  # pixels
#: Cheaper CoACD than the pipeline's default; validation holds the pieces to the same tolerances.
FAST = Config(coacd_mcts_iterations=20, coacd_resolution=500)


def _write_and_validate(category: str, seed: int, tmp_path):
    obj = make_object(category, seed)
    camera = product_camera(obj, seed, SIZE, SIZE)
    view = render_view(obj, camera)
    package = write_synth_package(obj, tmp_path / "packages", category, camera, view, FAST)
    report = validate.run(validate.Config(), package, tmp_path / "validate")
    return obj, view, package, report


@pytest.mark.parametrize("category", ["laptop", "storage_cabinet"])
def test_package_is_valid_and_holds_the_ground_truth(category, tmp_path):
    obj, view, package, report = _write_and_validate(category, 0, tmp_path)
    assert report.passed and report.pybullet and report.mujoco, report.issues
    assert report.max_penetration_m <= validate.Config().max_penetration_m
    info = json.loads(package.package_json.read_text())
    assert info["validation"]["passed"] is True
    assert info["scale_m"] == pytest.approx(float(obj.extents.max()))
    assert np.allclose(info["camera"]["T_base_camera"], product_camera(obj, 0, SIZE, SIZE).pose)
    for joint, truth in zip(info["joints"], obj.joints()):
        assert joint["child"] == truth["child"] and joint["type"] == truth["type"]
        assert np.allclose(joint["axis_base"], truth["axis_base"]) and np.allclose(joint["origin_base"], truth["origin_base"])
        assert (joint["lower"], joint["upper"]) == pytest.approx((truth["lower"], truth["upper"]))
        mask = read_mask(package.package_dir / joint["mask"])
        assert np.array_equal(mask, view.part_masks[joint["child"]])
        x, y = joint["click"]
        assert mask[y, x]


@pytest.mark.slow
@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_writes_a_valid_package(category, tmp_path):
    _, _, _, report = _write_and_validate(category, 1, tmp_path)
    assert report.passed and report.pybullet and report.mujoco, report.issues


def test_view_without_camera_is_refused(tmp_path):
    obj = make_object("box_lid", 0)
    view = render_view(obj, product_camera(obj, 0, 32, 32))
    with pytest.raises(ValueError, match="camera"):
        write_synth_package(obj, tmp_path, "box", view=view)
