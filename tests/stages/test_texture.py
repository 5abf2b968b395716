"""Stage 8, texture: the photo baked onto UV atlases, unseen texels filled."""

from __future__ import annotations

import re

import numpy as np
import pytest
import trimesh

import stages.texture as texture
from stages._shared.camera import orbit_camera
from stages._shared.io import read_rgb
from stages._shared.raster import interpolate, rasterize
from tests.stages.package_inputs import amodal_from_synth
from tests.stages.synth_inputs import synth_case

TEXTURE_SIZE = 256


@pytest.fixture(scope="module")
def baked(tmp_path_factory):
    out = tmp_path_factory.mktemp("texture")
    case = synth_case("storage_cabinet", 9, out / "inputs", size=256)  # one drawer, one door
    amodal = amodal_from_synth(case.obj, case.view, out / "amodal")
    names = tuple(p.name for p in case.obj.parts)
    cfg = texture.Config(texture_size=TEXTURE_SIZE)
    result = texture.run(cfg, case.fg, case.recon, names, amodal, out / "08-texture")
    return case, result


def _render_textured(result, camera):
    """Render the textured OBJs (as a viewer would: uv -> nearest texel); (H, W, 3) uint8 + mask."""
    meshes = [trimesh.load(t.obj, process=False) for t in (result.base, *result.parts)]
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    vertices = np.concatenate([m.vertices for m in meshes])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets)])
    uv = np.concatenate([m.visual.uv for m in meshes])
    link = np.repeat(np.arange(len(meshes)), [len(m.faces) for m in meshes])
    raster = rasterize(camera, vertices, faces)
    uv_px = interpolate(raster, faces, uv)
    image = np.zeros((camera.height, camera.width, 3), dtype=np.uint8)
    for k, mesh in enumerate(meshes):
        tex = np.asarray(mesh.visual.material.image.convert("RGB"))
        S = tex.shape[0]
        sel = raster.mask & (link[raster.face_id.clip(min=0)] == k)
        u, v = uv_px[sel, 0], uv_px[sel, 1]
        image[sel] = tex[np.clip(((1 - v) * S).astype(int), 0, S - 1), np.clip((u * S).astype(int), 0, S - 1)]
    return image, raster.mask


def test_rerendered_texture_matches_the_photo(baked):
    case, result = baked
    photo = read_rgb(case.fg.image)
    image, covered = _render_textured(result, case.recon.camera)
    # Compare away from silhouettes and seams, where one pixel mixes several surfaces.
    import cv2

    inner = cv2.erode(case.view.mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    edges = cv2.Canny(photo, 30, 90) > 0
    near_edge = cv2.dilate(edges.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    sel = inner & covered & ~near_edge
    assert sel.sum() > 0.3 * case.view.mask.sum()
    error = np.abs(image[sel].astype(int) - photo[sel].astype(int)).max(axis=1)  # grey levels
    assert np.median(error) <= 3
    assert np.percentile(error, 90) <= 8


def test_door_front_carries_the_photo_colour(baked):
    case, result = baked
    photo = read_rgb(case.fg.image)
    image, _ = _render_textured(result, case.recon.camera)
    import cv2

    door = cv2.erode(case.view.part_masks["door_0"].astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert door.sum() > 100
    diff = np.abs(np.median(image[door], axis=0) - np.median(photo[door], axis=0))
    assert np.all(diff <= 4), diff


def test_unseen_texels_are_filled(baked):
    case, result = baked
    photo = read_rgb(case.fg.image)
    for t in (result.base, *result.parts):
        tex = read_rgb(t.png)
        assert tex.shape == (TEXTURE_SIZE, TEXTURE_SIZE, 3)
        assert not np.any(tex.max(axis=2) == 0), f"{t.link}: black (unfilled) texels"
        assert 0.02 < t.seen_fraction < 0.9, (t.link, t.seen_fraction)
    # Seen from behind (never photographed), the base shows its photographed body colour.
    bounds = case.obj.bounds
    behind = orbit_camera(bounds.mean(axis=0), 3.0, np.pi, np.radians(20), np.radians(40), 160, 160)
    image, covered = _render_textured(result, behind)
    base_in_photo = case.view.mask & ~np.logical_or.reduce(list(case.view.part_masks.values()))
    body = np.median(photo[base_in_photo], axis=0)
    back = np.median(image[covered], axis=0)
    assert np.all(np.abs(back - body) <= 12), (back, body)


def test_obj_names_its_mtl_and_png_relatively(baked):
    _, result = baked
    for t in (result.base, *result.parts):
        assert t.obj.name == f"{t.link}.obj" and t.mtl.name == f"{t.link}.mtl" and t.png.name == f"{t.link}.png"
        assert re.search(rf"^mtllib {t.link}\.mtl$", t.obj.read_text(), flags=re.M)
        assert re.search(rf"^map_Kd {t.link}\.png$", t.mtl.read_text(), flags=re.M)
        assert t.png.is_file()


def test_textured_mesh_keeps_the_amodal_geometry(baked):
    case, result = baked
    for t, mesh in zip((result.base, *result.parts), [case.obj.base] + [p.mesh for p in case.obj.parts]):
        loaded = trimesh.load(t.obj, process=False)
        assert np.allclose(loaded.bounds, mesh.bounds, atol=1e-6)  # metres, base frame at rest
        assert np.isclose(abs(loaded.volume), mesh.volume, rtol=1e-6)


def test_part_names_must_match_the_part_meshes(baked, tmp_path):
    case, _ = baked
    amodal = amodal_from_synth(case.obj, case.view, tmp_path / "amodal")
    with pytest.raises(ValueError, match="part_names"):
        texture.run(texture.Config(texture_size=64), case.fg, case.recon, ("door_0",), amodal, tmp_path / "out")
    with pytest.raises(ValueError, match=r"A-Za-z0-9_"):
        texture.run(texture.Config(texture_size=64), case.fg, case.recon, ("door-0", "x"), amodal, tmp_path / "out")


def test_bilinear_sampling_is_exact_on_a_ramp():
    from stages._shared.sampling import sample_bilinear

    yy, xx = np.mgrid[0:30, 0:40]
    image = np.dstack([xx, yy]).astype(float)
    uv = np.random.default_rng(0).uniform([0.5, 0.5], [39.5, 29.5], size=(40000, 2))  # > cv2.remap's 32767
    values = sample_bilinear(image, uv)
    assert np.allclose(values, uv - 0.5, atol=1e-9)  # pixel centres at integer + 0.5
