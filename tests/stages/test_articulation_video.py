"""Stage 6, articulation_video: the kinematic prior's clips and reading a user's motion clip."""

from __future__ import annotations

import logging

import imageio.v3 as iio
import numpy as np
import pytest

import stages.articulation_video as articulation_video
from stages._shared.clip import read_clip
from stages._shared.io import read_json, read_rgb, write_image, write_mesh
from stages.amodal import AmodalResult
from stages.foreground import ForegroundResult
from stages.part_masks import PartMask, PartMasksResult
from stages.reconstruct import ReconstructResult
from synth.objects import make_object
from synth.render import product_camera, render_view

SIZE = 128


def _inputs(tmp_path, category: str, seed: int, proposals: dict):
    """Stage inputs for a synth object photographed at rest; ``proposals`` maps part name to
    (joint_type, hinge_side, confidence) as part_masks would give them."""
    obj = make_object(category, seed)
    camera = product_camera(obj, seed, SIZE, SIZE)
    view = render_view(obj, camera)
    fg = ForegroundResult(
        image=write_image(tmp_path / "photo.png", view.rgb),
        mask=write_image(tmp_path / "mask.png", view.mask),
        rgba=tmp_path / "photo.png",
        width=SIZE,
        height=SIZE,
        bbox=(0, 0, SIZE, SIZE),
        mask_fraction=float(view.mask.mean()),
    )
    recon = ReconstructResult(
        mesh=write_mesh(tmp_path / "base.glb", obj.base),
        camera=camera,
        camera_json=tmp_path / "camera.json",
        extents_m=tuple(obj.extents),
        silhouette_iou=1.0,
    )
    parts = [p for p in obj.parts if p.name in proposals]
    masks = PartMasksResult(
        parts=tuple(
            PartMask(p.name, write_image(tmp_path / f"{p.name}.png", view.part_masks[p.name]), *proposals[p.name][:2], None, proposals[p.name][2])
            for p in parts
        )
    )
    amodal = AmodalResult(
        base_mesh=tmp_path / "base.glb",
        part_meshes=tuple(write_mesh(tmp_path / f"{p.name}.glb", p.mesh) for p in parts),
        base_image=tmp_path / "photo.png",
        part_images=tuple(tmp_path / "photo.png" for _ in parts),
    )
    return obj, fg, recon, masks, amodal


def _photo_side(camera, door) -> str:
    """The side of the door, as seen in the photo, its true hinge is on."""
    uv_hinge = camera.project(door.origin[None])[0][0]
    uv_centre = camera.project(door.mesh.bounds.mean(axis=0)[None])[0][0]
    dx = uv_hinge[0] - uv_centre[0]
    return "left" if dx < 0 else "right"


# ----------------------------------------------------------------------------------------------
# Kinematic prior


def test_prior_hinges_the_door_on_the_proposed_side_and_writes_the_clip(tmp_path):
    obj = make_object("cabinet", 0)
    door = obj.parts[0]
    side = _photo_side(product_camera(obj, 0, SIZE, SIZE), door)
    obj, fg, recon, masks, amodal = _inputs(tmp_path, "cabinet", 0, {door.name: ("revolute", side, 0.8)})
    cfg = articulation_video.Config(n_frames=6)
    result = articulation_video.run(cfg, fg, recon, masks, amodal, (None,), tmp_path / "out")

    (clip,) = result.clips
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
    side = _photo_side(product_camera(obj, 0, SIZE, SIZE), obj.parts[0])
    other = {"left": "right", "right": "left"}[side]
    _, fg, recon, masks, amodal = _inputs(tmp_path, "cabinet", 0, {obj.parts[0].name: ("revolute", other, 0.8)})
    articulation_video.run(articulation_video.Config(n_frames=2), fg, recon, masks, amodal, (None,), tmp_path / "out")
    report = read_json(tmp_path / "out/hypotheses.json")["parts"][obj.parts[0].name]
    assert report["hypotheses"][report["chosen"]]["side"] == other


def test_prior_slides_a_drawer_out_along_its_front_normal(tmp_path):
    obj, fg, recon, masks, amodal = _inputs(tmp_path, "drawer_unit", 0, {"drawer_0": ("prismatic", None, 0.6)})
    cfg = articulation_video.Config(n_frames=3)
    articulation_video.run(cfg, fg, recon, masks, amodal, (None,), tmp_path / "out")
    report = read_json(tmp_path / "out/hypotheses.json")["parts"]["drawer_0"]
    best = report["hypotheses"][report["chosen"]]
    truth = obj.part("drawer_0")
    assert best["joint_type"] == "prismatic"
    assert np.dot(best["axis"], truth.axis) > np.cos(np.radians(1))  # out of the body, not into it
    depth = np.ptp(truth.mesh.vertices @ truth.axis)
    assert best["open"] == pytest.approx(0.7 * depth, rel=1e-6)
    assert report["magnitudes"][-1] == pytest.approx(best["open"])


def test_user_clip_replaces_the_prior(tmp_path):
    obj, fg, recon, masks, amodal = _inputs(tmp_path, "box_lid", 0, {"lid_0": ("revolute", "top", 0.5)})
    clip_dir = tmp_path / "clip"
    for t in range(4):
        write_image(clip_dir / f"f{t}.png", np.full((2 * SIZE, 2 * SIZE, 3), 40 * t, np.uint8))
    result = articulation_video.run(articulation_video.Config(), fg, recon, masks, amodal, (clip_dir,), tmp_path / "out")
    (clip,) = result.clips
    assert clip.source == "motion" and len(clip.frames) == 4 and clip.skipped == ()
    assert read_rgb(clip.frames[3]).shape == (SIZE, SIZE, 3) and read_rgb(clip.frames[3])[0, 0, 0] == 120


def test_rejects_a_motion_per_part_mismatch(tmp_path):
    _, fg, recon, masks, amodal = _inputs(tmp_path, "box_lid", 0, {"lid_0": ("revolute", "top", 0.5)})
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
