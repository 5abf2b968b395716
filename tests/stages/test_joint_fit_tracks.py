"""joint_fit's point tracks: the type and line of what moves, read from a rendered synth clip."""

from __future__ import annotations

import numpy as np
import trimesh

from stages._shared.raster import rasterize
from stages.joint_fit import tracks
from synth.objects import make_object
from synth.render import product_camera, render_clip


def _tracks_of(category: str, seed: int, part_name: str, size: int, still: bool = False):
    """``motion_from_tracks`` on ``part_name`` opening, with the object's true rest depth."""
    obj = make_object(category, seed)
    camera = product_camera(obj, seed, size, size)
    frames = [v.rgb for v in render_clip(obj, camera, part_name, 10)]
    if still:
        frames = [frames[0]] * len(frames)
    whole = trimesh.util.concatenate([obj.base] + [p.mesh for p in obj.parts])
    depth = rasterize(camera, whole.vertices, whole.faces).depth
    truth = obj.parts[[p.name for p in obj.parts].index(part_name)]
    return tracks.motion_from_tracks(frames, camera, depth), truth


def _angle_deg(a, b) -> float:
    return float(np.degrees(np.arccos(np.clip(abs(np.dot(a, b)), 0.0, 1.0))))


def test_a_sliding_drawer_moves_its_points_along_one_direction():
    seen, truth = _tracks_of("drawer_unit", 3, "drawer_0", 512)
    assert seen["verdict"] == "prismatic", seen
    assert _angle_deg(seen["axis_base"], truth.axis) < 5.0
    assert seen["residual_ratio"] <= tracks.PRISMATIC_RATIO


def test_a_door_turns_its_points_about_its_hinge():
    seen, truth = _tracks_of("microwave", 1, "door_0", 256)
    assert seen["verdict"] == "revolute", seen
    assert _angle_deg(seen["axis_base"], truth.axis) < 8.0
    # the screw axis passes near the true hinge line
    d = np.asarray(seen["origin_base"]) - truth.origin
    assert np.linalg.norm(d - np.dot(d, truth.axis) * truth.axis) < 0.05
    assert seen["residual_ratio"] >= tracks.REVOLUTE_RATIO


def test_a_still_clip_gives_no_verdict():
    seen, _ = _tracks_of("microwave", 1, "door_0", 256, still=True)
    assert seen["verdict"] is None
    assert seen["moving"] == 0
