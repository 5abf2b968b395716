"""Stage 6, articulation_video: the kinematic prior's clips and reading a user's motion clip."""

from __future__ import annotations

import logging

import imageio.v3 as iio
import numpy as np
import pytest

import stages.articulation_video as articulation_video
from stages._shared.clip import read_clip
from stages._shared.io import read_json, read_rgb, write_image
from stages.part_masks import PartMask, PartMasksResult
from synth.objects import make_object
from tests.stages.package_inputs import amodal_from_synth
from tests.stages.synth_inputs import gt_hinge_side, synth_case

SIZE = 128


def _inputs(tmp_path, category: str, seed: int, proposals: dict | None = None):
    """Stage inputs for a synth object photographed at rest, every part in its amodal result.

    part_masks' proposal per part is the ground truth (joint type, hinge side) with confidence
    0.8, unless ``proposals`` maps the part's name to another (joint_type, hinge_side, confidence).
    """
    case = synth_case(category, seed, tmp_path / "case", size=SIZE)
    amodal = amodal_from_synth(case.obj, case.view, tmp_path / "amodal")
    parts = []
    for p in case.obj.parts:
        truth = (p.joint_type, gt_hinge_side(case.obj, p.name), 0.8)
        joint_type, side, confidence = (proposals or {}).get(p.name, truth)
        mask = write_image(tmp_path / "masks" / f"{p.name}.png", case.view.part_masks[p.name])
        parts.append(PartMask(p.name, mask, joint_type, side, None, confidence))
    return case.obj, case.fg, case.recon, PartMasksResult(parts=tuple(parts)), amodal


# ----------------------------------------------------------------------------------------------
# Kinematic prior


def test_prior_hinges_the_door_on_the_proposed_side_and_writes_the_clip(tmp_path):
    obj, fg, recon, masks, amodal = _inputs(tmp_path, "cabinet", 0)
    door, side = obj.parts[0], masks.parts[0].hinge_side
    cfg = articulation_video.Config(n_frames=6)
    result = articulation_video.run(cfg, fg, recon, masks, amodal, (None, None), tmp_path / "out")

    assert [c.part for c in result.clips] == [p.name for p in obj.parts]
    clip = result.clips[0]
    assert clip.source == "prior" and clip.part == door.name and len(clip.frames) == 6
    frames = [read_rgb(f) for f in clip.frames]
    assert all(f.shape == (SIZE, SIZE, 3) for f in frames)
    # frame 0 is the rest pose: inside the object it reproduces the photo
    photo, mask = read_rgb(fg.image), read_rgb(fg.mask)[..., 0] > 127
    assert np.abs(frames[0].astype(int) - photo.astype(int))[mask].mean() < 12
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).max(axis=2).astype(bool).mean() > 0.05
    assert iio.improps(clip.preview).shape[0] == 6

    report = read_json(tmp_path / "out/hypotheses.json")["parts"][door.name]
    hypotheses = report["hypotheses"]
    assert len(hypotheses) == 5  # a hinge on each of the 4 edges, one slide
    best = hypotheses[report["chosen"]]
    assert best["joint_type"] == "revolute" and best["side"] == side
    assert abs(np.dot(best["axis"], door.axis)) > np.cos(np.radians(2))  # the true hinge line
    d = np.asarray(best["origin"]) - door.origin
    assert np.linalg.norm(d - np.dot(d, door.axis) * door.axis) < 0.02 * np.linalg.norm(obj.extents)
    assert best["open"] == pytest.approx(np.pi / 2)  # nothing blocks a 90 degree swing


def test_prior_follows_a_flipped_proposal(tmp_path):
    obj = make_object("cabinet", 0)
    other = {"left": "right", "right": "left"}[gt_hinge_side(obj, "door_0")]
    _, fg, recon, masks, amodal = _inputs(tmp_path, "cabinet", 0, {"door_0": ("revolute", other, 0.8)})
    cfg = articulation_video.Config(n_frames=2)
    articulation_video.run(cfg, fg, recon, masks, amodal, (None, None), tmp_path / "out")
    report = read_json(tmp_path / "out/hypotheses.json")["parts"]["door_0"]
    assert report["hypotheses"][report["chosen"]]["side"] == other


def test_prior_hinges_a_lid_at_its_back_edge_when_told_top(tmp_path):
    obj, fg, recon, masks, amodal = _inputs(tmp_path, "box_lid", 0)
    assert masks.parts[0].hinge_side == "top"  # part_masks' name for a lid's back edge
    articulation_video.run(articulation_video.Config(n_frames=2), fg, recon, masks, amodal, (None,), tmp_path / "out")
    report = read_json(tmp_path / "out/hypotheses.json")["parts"]["lid_0"]
    best, lid = report["hypotheses"][report["chosen"]], obj.part("lid_0")
    assert np.dot(best["axis"], lid.axis) > np.cos(np.radians(1))  # same line, opening upwards
    d = np.asarray(best["origin"]) - lid.origin
    thickness = np.ptp(lid.mesh.vertices[:, 2])
    assert np.linalg.norm(d - np.dot(d, lid.axis) * lid.axis) <= thickness + 1e-6  # on the back edge


def test_prior_slides_a_drawer_out_along_its_front_normal(tmp_path):
    obj, fg, recon, masks, amodal = _inputs(tmp_path, "drawer_unit", 0, {"drawer_0": ("prismatic", None, 0.6)})
    cfg = articulation_video.Config(n_frames=3)
    articulation_video.run(cfg, fg, recon, masks, amodal, (None,) * len(obj.parts), tmp_path / "out")
    report = read_json(tmp_path / "out/hypotheses.json")["parts"]["drawer_0"]
    best = report["hypotheses"][report["chosen"]]
    truth = obj.part("drawer_0")
    assert best["joint_type"] == "prismatic"
    assert np.dot(best["axis"], truth.axis) > np.cos(np.radians(1))  # out of the body, not into it
    depth = np.ptp(truth.mesh.vertices @ truth.axis)
    assert best["open"] == pytest.approx(0.7 * depth, rel=1e-6)
    assert report["magnitudes"][-1] == pytest.approx(best["open"])


def test_user_clip_replaces_the_prior(tmp_path):
    obj, fg, recon, masks, amodal = _inputs(tmp_path, "box_lid", 0)
    clip_dir = tmp_path / "clip"
    for t in range(4):
        write_image(clip_dir / f"f{t}.png", np.full((2 * SIZE, 2 * SIZE, 3), 40 * t, np.uint8))
    result = articulation_video.run(articulation_video.Config(), fg, recon, masks, amodal, (clip_dir,), tmp_path / "out")
    (clip,) = result.clips
    assert clip.source == "motion" and len(clip.frames) == 4 and clip.skipped == ()
    assert read_rgb(clip.frames[3]).shape == (SIZE, SIZE, 3) and read_rgb(clip.frames[3])[0, 0, 0] == 120


def test_rejects_a_motion_per_part_mismatch(tmp_path):
    _, fg, recon, masks, amodal = _inputs(tmp_path, "box_lid", 0)
    with pytest.raises(ValueError, match="motion"):
        articulation_video.run(articulation_video.Config(), fg, recon, masks, amodal, (None, None), tmp_path / "out")


# ----------------------------------------------------------------------------------------------
# read_clip


def test_read_clip_folder_resizes_sorts_naturally_and_skips_a_corrupt_frame(tmp_path, caplog):
    folder = tmp_path / "clip"
    for t in (1, 2, 10):  # natural order: f1, f2, f10 (a plain sort would put f10 second)
        write_image(folder / f"f{t}.png", np.full((60, 80, 3), 20 * t, np.uint8))
    (folder / "f3.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    with caplog.at_level(logging.WARNING, logger="stages._shared.clip"):
        frames, skipped = read_clip(folder, size=(40, 30))
    assert skipped == ["f3.png"]
    assert any("f3.png" in r.getMessage() for r in caplog.records)
    assert [f.shape for f in frames] == [(30, 40, 3)] * 3
    assert [int(f[0, 0, 0]) for f in frames] == [20, 40, 200]


def test_read_clip_video_file_and_alpha_over_white(tmp_path):
    video = tmp_path / "clip.mp4"
    iio.imwrite(video, np.full((5, 48, 64, 3), 128, np.uint8), fps=8)
    frames, skipped = read_clip(video, size=(32, 24))
    assert len(frames) == 5 and skipped == [] and frames[0].shape == (24, 32, 3)
    assert abs(int(frames[2][12, 16, 1]) - 128) <= 3  # lossy codec

    folder = tmp_path / "rgba"
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent: the background shows, white
    write_image(folder / "a.png", rgba)
    frames, _ = read_clip(folder, size=(8, 8))
    assert frames[0].min() == 255


@pytest.mark.parametrize("what", ["missing", "empty_folder", "not_a_video"])
def test_read_clip_rejects_unreadable_clips_naming_the_path(tmp_path, what):
    path = tmp_path / what
    if what == "empty_folder":
        path.mkdir()
    elif what == "not_a_video":
        path = tmp_path / "clip.mp4"
        path.write_bytes(b"definitely not a video")
    with pytest.raises(ValueError, match=str(path.name)):
        read_clip(path, size=(32, 32))
