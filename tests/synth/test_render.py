"""Renderer: masks, depth and colour agree; views are deterministic; the product camera frames."""

import json
from pathlib import Path

import numpy as np
import pytest

from stages._shared.io import read_rgb
from synth.objects import CATEGORIES, make_object
from synth.render import (
    AZIMUTH_DEG,
    ELEVATION_DEG,
    FILL,
    FOV_Y_DEG,
    click_point,
    product_camera,
    render_clip,
    render_view,
)

SIZE = 96  # pixels; small keeps the suite fast
ASSETS = Path(__file__).resolve().parents[2] / "assets"


@pytest.fixture(scope="module", params=CATEGORIES)
def scene(request):
    obj = make_object(request.param, 0)
    camera = product_camera(obj, 3, SIZE, SIZE)
    return obj, camera, render_view(obj, camera)


def test_masks_depth_and_colour_agree(scene):
    obj, camera, view = scene
    assert view.rgb.shape == (SIZE, SIZE, 3) and view.rgb.dtype == np.uint8
    assert view.mask.dtype == bool and view.depth.shape == (SIZE, SIZE)
    assert np.array_equal(view.mask, np.isfinite(view.depth))
    assert set(view.part_masks) == {p.name for p in obj.parts}
    stacked = np.stack(list(view.part_masks.values()))
    assert not np.any(stacked & ~view.mask)  # inside the foreground
    assert stacked.sum(axis=0).max() <= 1  # disjoint
    assert all(m.any() for m in view.part_masks.values()), "every part is visible at rest"
    # Background pixels far from the object are exactly the background colour.
    from scipy.ndimage import binary_dilation

    far = ~binary_dilation(view.mask, iterations=2)
    assert np.all(view.rgb[far] == 255)
    # Depth lies between the nearest and farthest object points.
    _, z = camera.project(np.concatenate([obj.base.vertices] + [p.mesh.vertices for p in obj.parts]))
    d = view.depth[view.mask]
    assert d.min() >= z.min() - 1e-6 and d.max() <= z.max() + 1e-6


def test_opening_a_part_changes_the_render(scene):
    obj, camera, view = scene
    part = obj.parts[0]
    opened = render_view(obj, camera, {part.name: 0.7 * part.opening_limit})
    changed = np.any(opened.rgb != view.rgb, axis=2)
    assert changed.sum() > 0.02 * view.mask.sum()
    assert not np.array_equal(opened.part_masks[part.name], view.part_masks[part.name])


def test_product_camera_frames_the_object(scene):
    obj, camera, view = scene
    R = camera.pose[:3, :3]
    back = -R[:, 2]  # from the object towards the camera
    azimuth = np.degrees(np.arctan2(back[1], back[0]))
    elevation = np.degrees(np.arcsin(back[2]))
    fov = np.degrees(2 * np.arctan(0.5 * camera.height / camera.fy))
    assert AZIMUTH_DEG[0] - 1e-6 <= azimuth <= AZIMUTH_DEG[1] + 1e-6
    assert ELEVATION_DEG[0] - 1e-6 <= elevation <= ELEVATION_DEG[1] + 1e-6
    assert FOV_Y_DEG[0] - 1e-6 <= fov <= FOV_Y_DEG[1] + 1e-6
    uv, z = camera.project(np.concatenate([obj.base.vertices] + [p.mesh.vertices for p in obj.parts]))
    assert np.all(z > 0)
    span = max(np.ptp(uv[:, 0]) / camera.width, np.ptp(uv[:, 1]) / camera.height)
    assert FILL[0] - 0.01 <= span <= FILL[1] + 0.01
    centre = (uv.min(axis=0) + uv.max(axis=0)) / 2
    assert np.allclose(centre, [camera.cx, camera.cy], atol=0.02 * SIZE)  # pixels
    # The mask touches no image border: the whole object is in frame.
    assert not (view.mask[0].any() or view.mask[-1].any() or view.mask[:, 0].any() or view.mask[:, -1].any())


def test_render_is_deterministic_and_supersampling_only_smooths():
    obj = make_object("microwave", 2)
    camera = product_camera(obj, 2, SIZE, SIZE)
    a, b = render_view(obj, camera), render_view(obj, camera)
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.depth, b.depth)
    single = render_view(obj, camera, supersample=1)
    assert np.array_equal(single.mask, np.isfinite(single.depth))
    assert (single.mask != a.mask).mean() < 0.02  # only edge pixels differ
    green = render_view(obj, camera, background=(0, 128, 0))
    assert np.array_equal(green.mask, a.mask)
    assert np.all(green.rgb[0, 0] == [0, 128, 0])
    from scipy.ndimage import binary_erosion

    inner = binary_erosion(a.mask)  # pixels whose subsamples all hit the object
    assert np.array_equal(green.rgb[inner], a.rgb[inner])
    assert not np.array_equal(green.rgb[~a.mask], a.rgb[~a.mask])


def test_render_clip_runs_from_rest_to_the_opening_limit():
    obj = make_object("laptop", 0)
    camera = product_camera(obj, 0, SIZE, SIZE)
    frames = render_clip(obj, camera, "lid_0", n_frames=4)
    assert len(frames) == 4
    assert np.array_equal(frames[0].rgb, render_view(obj, camera).rgb)
    lid_area = [f.part_masks["lid_0"].sum() for f in frames]
    assert lid_area[-1] < 0.8 * lid_area[0]  # closing the lid hides the screen
    assert obj.part("lid_0").opening_limit == obj.part("lid_0").lower


def test_click_point_is_inside_and_central():
    mask = np.zeros((40, 60), bool)
    mask[10:30, 5:25] = True
    mask[18:22, 25:55] = True  # a thin arm pulls the centroid to the right
    x, y = click_point(mask)
    assert mask[y, x]
    assert 5 + 5 <= x <= 25 and 15 <= y <= 25
    with pytest.raises(ValueError, match="empty"):
        click_point(np.zeros((4, 4), bool))


def test_bad_arguments_raise():
    obj = make_object("box_lid", 0)
    camera = product_camera(obj, 0, 32, 32)
    with pytest.raises(ValueError, match="supersample"):
        render_view(obj, camera, supersample=0)
    with pytest.raises(ValueError, match="background"):
        render_view(obj, camera, background=(300, 0, 0))
    with pytest.raises(ValueError, match="n_frames"):
        render_clip(obj, camera, "lid_0", n_frames=1)
    with pytest.raises(ValueError, match="name"):
        render_clip(obj, camera, "door_7")


def test_assets_match_the_generator():
    """The checked-in example photo and its clicks are what the synth package renders now."""
    record = json.loads((ASSETS / "cabinet.json").read_text())
    obj = make_object(record["category"], record["seed"])
    camera = product_camera(obj, record["camera_seed"], 512, 512)
    assert np.allclose(np.asarray(record["camera"]["T_base_camera"]), camera.pose, atol=1e-9)
    view = render_view(obj, camera)
    photo = read_rgb(ASSETS / "cabinet.png")
    assert np.abs(photo.astype(int) - view.rgb).mean() < 0.5
    for name, (x, y) in record["clicks"].items():
        assert view.part_masks[name][y, x]
    assert [j["name"] for j in record["joints"]] == [p.name for p in obj.parts]
    assert (ASSETS / record["motion"]["file"]).is_file()


def test_textures_change_colour_only_and_stick_to_their_part():
    """Procedural textures vary the albedo inside materials, never the masks or depth, and move with the part."""
    obj = make_object("storage_cabinet", 0)
    camera = product_camera(obj, 0, SIZE, SIZE)
    flat, tex = render_view(obj, camera), render_view(obj, camera, textured=True)
    assert np.array_equal(flat.mask, tex.mask) and np.array_equal(flat.depth, tex.depth)
    assert np.any(flat.rgb != tex.rgb)
    assert np.array_equal(tex.rgb, render_view(obj, camera, textured=True).rgb)  # deterministic
    from synth.render import material_texture

    points = np.random.default_rng(0).uniform(-0.5, 0.5, (500, 3))
    for material in ("wood", "metal", "plastic"):
        f = material_texture(material, points, seed=3)
        assert f.std() > 1e-3 and 0.7 < f.min() and f.max() < 1.2
        assert np.array_equal(f, material_texture(material, points, seed=3))
    # Texture coordinates are the rest-pose surface points: on an opened drawer, the textured /
    # flat colour ratio is the material texture at the pixel's point moved back to rest.
    drawer = make_object("drawer_unit", 1)
    cam = product_camera(drawer, 0, SIZE, SIZE)
    part = drawer.parts[0]
    value = 0.6 * part.upper
    flat = render_view(drawer, cam, {part.name: value}, supersample=1)
    tex = render_view(drawer, cam, {part.name: value}, supersample=1, textured=True)
    from scipy.ndimage import binary_erosion

    inner = binary_erosion(flat.part_masks[part.name], iterations=2) & (flat.rgb.min(axis=2) > 60)
    rows, cols = np.nonzero(inner)
    rays = cam.rays()[rows, cols]
    z_axis = cam.pose[:3, 2]
    points = cam.position + rays * (flat.depth[rows, cols] / (rays @ z_axis))[:, None]  # posed, base frame
    rest = points - part.axis * value
    ratio = tex.rgb[rows, cols].astype(float).mean(axis=1) / flat.rgb[rows, cols].astype(float).mean(axis=1)
    from synth.objects import MATERIALS

    material = MATERIALS[int(np.bincount(part.mesh.face_attributes["material"]).argmax())]
    assert material != "matte"
    at_rest = np.abs(ratio - material_texture(material, rest, drawer.seed)).mean()
    at_posed = np.abs(ratio - material_texture(material, points, drawer.seed)).mean()
    assert at_rest < 0.01 and at_rest < 0.5 * at_posed


def test_render_urdf_matches_the_synth_render_of_its_package(tmp_path):
    """One code path: the package of a synth object renders with the object's masks and depth."""
    from stages.urdf_package.template import Config
    from synth.package import write_synth_package
    from synth.render import camera_for_points, load_urdf, render_urdf, render_urdf_clip

    obj = make_object("cabinet", 1)
    camera = product_camera(obj, 8, SIZE, SIZE)
    view = render_view(obj, camera)
    package = write_synth_package(obj, tmp_path, "cab", camera, view, Config(coacd_mcts_iterations=10, coacd_resolution=300))
    scene = load_urdf(package.urdf)
    assert scene.parts == [p.name for p in obj.parts]
    assert np.allclose(camera_for_points(scene.points(), 8, SIZE, SIZE).pose, camera.pose, atol=1e-6)
    urdf_view = render_urdf(scene, camera)
    assert np.array_equal(urdf_view.mask, np.isfinite(urdf_view.depth))
    assert (urdf_view.mask != view.mask).mean() < 1e-3
    for name, mask in view.part_masks.items():
        inter = (urdf_view.part_masks[name] & mask).sum()
        assert inter / (urdf_view.part_masks[name] | mask).sum() > 0.98
    ok = np.isfinite(view.depth) & np.isfinite(urdf_view.depth)
    assert np.allclose(view.depth[ok], urdf_view.depth[ok], atol=1e-6)  # metres
    # The clip opens the chosen joint from rest.
    joint = scene.joint_of_part["door_0"]
    frames = render_urdf_clip(scene, camera, joint, n_frames=3)
    assert np.array_equal(frames[0].mask, urdf_view.mask)
    opened = render_view(obj, camera, {"door_0": obj.part("door_0").opening_limit})
    assert (frames[-1].part_masks["door_0"] != opened.part_masks["door_0"]).mean() < 2e-3
    with pytest.raises(ValueError, match="joint"):
        render_urdf_clip(scene, camera, "nope")


def test_render_urdf_of_a_hand_written_package():
    """A third-party style URDF (hand-written, textured OBJs): part mask is the lid's subtree."""
    from synth.render import camera_for_points, load_urdf, render_urdf

    scene = load_urdf(Path(__file__).resolve().parents[1] / "data" / "hinged_box" / "hinged_box.urdf")
    assert scene.parts == ["lid"] and scene.part_of_link == {"base": None, "lid": "lid"}
    camera = camera_for_points(scene.points(), 0, SIZE, SIZE)
    rest, opened = render_urdf(scene, camera), render_urdf(scene, camera, {"lid_joint": 1.2})
    for view in (rest, opened):
        assert np.array_equal(view.mask, np.isfinite(view.depth))
        assert not np.any(view.part_masks["lid"] & ~view.mask)
    assert rest.part_masks["lid"].any() and not np.array_equal(rest.part_masks["lid"], opened.part_masks["lid"])
    with pytest.raises(ValueError, match="unknown joints"):
        render_urdf(scene, camera, {"hinge": 0.1})
