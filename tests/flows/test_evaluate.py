"""Evaluation: a package scores exactly zero against itself, a rotated axis by exactly its angle;
matching by click and by mask IoU; missing and extra joints; the `eval` command."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from flows.cli import main
from flows.evaluate import evaluate_folder, evaluate_package, match_joints
from stages.urdf_package.template import Config
from synth.objects import make_object
from synth.package import write_synth_package
from synth.render import product_camera, render_view

SIZE = 128  # pixels
#: Cheap CoACD: the tests score joints, not collision pieces.
FAST = Config(coacd_mcts_iterations=10, coacd_resolution=300)


@pytest.fixture(scope="module")
def gt(tmp_path_factory):
    """Ground-truth package of a two-door cabinet with the photo's camera, masks and clicks."""
    obj = make_object("cabinet", 1)
    camera = product_camera(obj, 8, SIZE, SIZE)
    view = render_view(obj, camera)
    return write_synth_package(obj, tmp_path_factory.mktemp("gt"), "cabinet", camera, view, FAST).package_dir


def _edited_copy(gt, dest, edit) -> object:
    """A copy of the package whose package.json went through ``edit(info)``."""
    target = dest / gt.name
    shutil.copytree(gt, target)
    info = json.loads((target / "package.json").read_text())
    edit(info)
    (target / "package.json").write_text(json.dumps(info))
    return target


def test_package_against_itself_scores_exactly_zero(gt):
    result = evaluate_package(gt, gt, valid=True)
    assert result["found"] == 2 and result["missed"] == 0 and result["extra"] == 0 and result["valid"]
    for row in result["joints"]:
        assert row["matched_by"] == "click" and row["iou"] == 1.0 and row["type_correct"]
        assert row["axis_error_deg"] == 0.0
        assert row["pivot_error"] == 0.0
        assert row["limit_range_error_revolute_deg"] == 0.0
        assert row["chamfer"] == 0.0


@pytest.mark.parametrize("angle_deg", [5.0, 30.0, 72.5])
def test_axis_rotated_by_a_known_angle_scores_that_angle(gt, tmp_path, angle_deg):
    def rotate(info):
        j = info["joints"][0]
        a = np.asarray(j["axis_base"])
        perp = np.cross(a, [1.0, 0.0, 0.0])
        perp /= np.linalg.norm(perp)
        t = math.radians(angle_deg)
        j["axis_base"] = list(np.cos(t) * a + np.sin(t) * perp)

    pred = _edited_copy(gt, tmp_path, rotate)
    rows = evaluate_package(pred, gt)["joints"]
    assert rows[0]["axis_error_deg"] == pytest.approx(angle_deg, abs=1e-9)
    assert rows[1]["axis_error_deg"] == 0.0  # the other door untouched


def test_flipped_axis_with_negated_limits_is_the_same_joint(gt, tmp_path):
    def flip(info):
        j = info["joints"][1]
        j["axis_base"] = [-v for v in j["axis_base"]]
        j["lower"], j["upper"] = -j["upper"], -j["lower"]

    row = evaluate_package(_edited_copy(gt, tmp_path, flip), gt)["joints"][1]
    assert row["axis_error_deg"] == 0.0 and row["limit_range_error_revolute_deg"] == pytest.approx(0.0, abs=1e-12)


def test_pivot_and_type_errors(gt, tmp_path):
    diag = evaluate_package(gt, gt)["diagonal_m"]

    def move(info):
        j = info["joints"][0]
        a = np.asarray(j["axis_base"])
        off = np.cross(a, [1.0, 0.0, 0.0])
        j["origin_base"] = list(np.asarray(j["origin_base"]) + 0.1 * off / np.linalg.norm(off))  # 10 cm off the axis
        info["joints"][1]["type"] = "prismatic"

    rows = evaluate_package(_edited_copy(gt, tmp_path, move), gt)["joints"]
    assert rows[0]["pivot_error"] == pytest.approx(0.1 / diag, rel=1e-9)
    assert rows[1]["type_correct"] is False and rows[1]["pivot_error"] is None


def test_matching_by_iou_finds_missed_and_extra(gt, tmp_path):
    info = json.loads((gt / "package.json").read_text())
    from stages._shared.io import read_mask

    masks = [read_mask(gt / j["mask"]) for j in info["joints"]]
    preds = [
        {"_mask": masks[1], "click": None},  # door 1, found by IoU
        {"_mask": np.roll(masks[0], SIZE // 2, axis=1), "click": None},  # nowhere near door 0: extra
    ]
    gts = [{"_mask": m} for m in masks]
    assert match_joints(preds, gts) == {1: (0, "iou", 1.0)}
    # A click on door 0 matches door 0 whatever the predicted mask.
    x, y = info["joints"][0]["click"]
    preds[1]["click"] = [x, y]
    assert match_joints(preds, gts)[0][:2] == (1, "click")


def test_missing_prediction_misses_every_joint(gt, tmp_path):
    result = evaluate_package(None, gt)
    assert result == {**result, "valid": False, "found": 0, "missed": 2, "extra": 0}


def test_eval_command_single_and_folder(gt, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["eval", str(gt), str(gt), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["found"] == 2
    assert "door_0_joint" in capsys.readouterr().out
    # Folder form: <case>/ packages; a missing prediction counts as missed.
    (tmp_path / "gt_root").mkdir()
    (tmp_path / "pred_root").mkdir()
    shutil.copytree(gt, tmp_path / "gt_root" / "a")
    shutil.copytree(gt, tmp_path / "gt_root" / "b")
    shutil.copytree(gt, tmp_path / "pred_root" / "a")
    result = evaluate_folder(tmp_path / "pred_root", tmp_path / "gt_root")
    assert result["summary"]["found"] == 2 and result["summary"]["missed"] == 2
    assert result["summary"]["axis_error_deg"]["median"] == 0.0
    assert main(["eval", str(tmp_path / "pred_root"), str(tmp_path / "nowhere")]) == 2
