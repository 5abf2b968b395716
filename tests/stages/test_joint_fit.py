"""Stage 7, joint_fit: dual quaternions, the soft and CUDA renderers and fits on rendered synth clips."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import trimesh
from scipy.ndimage import binary_erosion

import stages.joint_fit as joint_fit
from stages._shared import kinematics
from stages._shared.io import read_json, write_image, write_mesh
from stages._shared.raster import rasterize as exact_rasterize
from stages.amodal import AmodalResult
from stages.articulation_video import ArticulationVideoResult, PartClip
from stages.joint_fit import cuda_render, soft_render
from stages.joint_fit import dual_quaternion as dq
from stages.reconstruct import ReconstructResult
from synth.objects import make_object
from synth.render import product_camera, render_clip

#: Clip size for the fits: small enough for a fast test, as in a 128 px photo.
SIZE = 128


def _fit(tmp_path, category: str, seed: int, part_name: str, still: bool = False, renderer: str = "torch"):
    """Render ``part_name`` of a synth object opening (or standing still) and fit its joint.

    The base handed to the fit holds the other parts at rest, as amodal would give them.
    """
    obj = make_object(category, seed)
    camera = product_camera(obj, seed, SIZE, SIZE)
    k = [p.name for p in obj.parts].index(part_name)
    views = render_clip(obj, camera, part_name, 16)
    if still:
        views = [views[0]] * len(views)
    frames = tuple(write_image(tmp_path / f"frames/f_{t:03d}.png", v.rgb) for t, v in enumerate(views))
    base = trimesh.util.concatenate([obj.base] + [p.mesh for j, p in enumerate(obj.parts) if j != k])
    recon = ReconstructResult(
        mesh=write_mesh(tmp_path / "base.glb", base),
        camera=camera,
        camera_json=tmp_path / "camera.json",
        extents_m=tuple(obj.extents),
        silhouette_iou=1.0,
    )
    amodal = AmodalResult(
        base_mesh=tmp_path / "base.glb",
        part_meshes=(write_mesh(tmp_path / "part.glb", obj.parts[k].mesh),),
        base_image=tmp_path / "base.png",
        part_images=(tmp_path / "part.png",),
    )
    video = ArticulationVideoResult(clips=(PartClip(part_name, frames, frames[0], "prior"),))
    result = joint_fit.run(joint_fit.Config(renderer=renderer), recon, amodal, video, tmp_path / "out")
    return obj.parts[k], float(np.linalg.norm(obj.extents)), result


def _axis_error_deg(estimate, truth) -> float:
    """Angle between the axes, sign-agnostic (a flipped axis with a flipped range is the same joint)."""
    return float(np.degrees(np.arccos(np.clip(abs(np.dot(estimate.axis_base, truth.axis)), 0.0, 1.0))))


def _pivot_error(estimate, truth) -> float:
    """Distance from the estimated origin to the true axis line, metres."""
    d = np.asarray(estimate.origin_base) - truth.origin
    return float(np.linalg.norm(d - np.dot(d, truth.axis) * truth.axis))


# ----------------------------------------------------------------------------------------------
# Dual quaternions


def test_dual_quaternion_screw_matches_rotation_matrix_reference():
    rng = np.random.default_rng(0)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    pivot, points = rng.normal(size=3), rng.normal(size=(50, 3))
    angles, shifts = rng.uniform(-3, 3, 7), rng.uniform(-1, 1, 7)
    f64 = lambda x: torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
    q_r, q_d = dq.dq_screw(f64(axis), f64(pivot), f64(angles), f64(shifts))
    moved = dq.dq_transform((q_r[:, None], q_d[:, None]), f64(points)[None]).numpy()  # (7, 50, 3)

    # reference: rotate about the line (Rodrigues matrices), then slide along it
    R = kinematics.rotation_matrices(axis, angles)  # (7, 3, 3)
    reference = np.einsum("mij,nj->mni", R, points - pivot) + pivot + shifts[:, None, None] * axis
    np.testing.assert_allclose(moved, reference, atol=1e-6)
    # unit dual quaternions: |q_r| = 1 and q_r . q_d = 0
    np.testing.assert_allclose(q_r.norm(dim=1).numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose((q_r * q_d).sum(dim=1).numpy(), 0.0, atol=1e-12)


def test_dual_quaternion_product_composes_motions():
    rng = np.random.default_rng(1)
    f64 = lambda x: torch.as_tensor(x, dtype=torch.float64)  # noqa: E731
    a = dq.dq_screw(f64([0.0, 0.0, 1.0]), f64([0.3, -0.2, 0.0]), f64([0.7]), f64([0.0]))
    b = dq.dq_screw(f64(rng.normal(size=3) / np.sqrt(3)), f64(rng.normal(size=3)), f64([0.0]), f64([0.25]))
    b = (b[0] / b[0].norm(), b[1] / b[0].norm())
    points = f64(rng.normal(size=(20, 3)))
    both = dq.dq_transform(dq.dq_mul(b, a), points)  # apply a, then b
    one_by_one = dq.dq_transform(b, dq.dq_transform(a, points))
    np.testing.assert_allclose(both.numpy(), one_by_one.numpy(), atol=1e-9)


# ----------------------------------------------------------------------------------------------
# Soft renderer


def _door_scene():
    obj = make_object("cabinet", 0)
    camera = product_camera(obj, 0, SIZE, SIZE)
    door = obj.parts[0]
    return obj, camera, door


def test_soft_silhouette_matches_exact_raster_and_has_no_seams():
    obj, camera, door = _door_scene()
    hull = door.mesh.convex_hull
    angles = np.array([0.0, 0.6, 1.2])
    moved = kinematics.move_points(hull.vertices, "revolute", door.axis, door.origin, angles)
    view = soft_render.View.from_camera(camera, torch.float64)
    frags = soft_render.rasterize(
        view, torch.as_tensor(moved), torch.as_tensor(hull.faces), sigma=0.6,
        neighbours=torch.as_tensor(soft_render.edge_neighbours(hull.faces)),
    )  # fmt: skip
    index, layer = soft_render.composite_layer(frags, torch.ones(len(frags.batch), 3, dtype=torch.float64), SIZE, SIZE, 0.003)
    alpha = torch.zeros(len(angles) * SIZE * SIZE, dtype=torch.float64).index_put((index,), layer.alpha)
    alpha = alpha.reshape(len(angles), SIZE, SIZE).numpy()
    for k in range(len(angles)):
        exact = exact_rasterize(camera, moved[k], hull.faces).mask
        soft = alpha[k] > 0.5
        iou = (soft & exact).sum() / (soft | exact).sum()
        assert iou > 0.95, f"frame {k}: soft/exact silhouette IoU {iou:.3f}"
        # inner edges are hard: away from the silhouette the hull is fully covered, no seams
        interior = binary_erosion(exact, iterations=3)
        assert alpha[k][interior].min() > 0.95  # a seam between two triangles would read 0.75


def _check_gradients_reach_joint_parameters(render):
    """The door's hull posed at two angles by differentiable joint parameters and drawn by
    ``render(view, vertices, faces) -> (index, layer)``: a silhouette + depth loss must have a
    finite, nonzero gradient for the axis, the pivot and the magnitudes."""
    obj, camera, door = _door_scene()
    hull = door.mesh.convex_hull
    view = soft_render.View.from_camera(camera)
    axis = torch.tensor(door.axis, dtype=torch.float32, requires_grad=True)
    pivot = torch.tensor(door.origin, dtype=torch.float32, requires_grad=True)
    mags = torch.tensor([0.3, 0.8], requires_grad=True)
    q = dq.dq_screw(axis / axis.norm(), pivot, mags, torch.zeros(2))
    verts = dq.dq_transform((q[0][:, None], q[1][:, None]), torch.as_tensor(hull.vertices, dtype=torch.float32)[None])
    index, layer = render(view, verts, torch.as_tensor(hull.faces))
    target = torch.rand(2 * SIZE * SIZE, generator=torch.Generator().manual_seed(0))
    loss = ((layer.alpha - target[index]) ** 2).sum() + layer.depth.mean()
    loss.backward()
    for name, t in (("axis", axis), ("pivot", pivot), ("magnitudes", mags)):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0, name


def test_soft_render_gradients_reach_joint_parameters():
    def render(view, verts, faces):
        frags = soft_render.rasterize(view, verts, faces, sigma=0.6)
        return soft_render.composite_layer(frags, torch.full((len(frags.batch), 3), 0.5), SIZE, SIZE, 0.003)

    _check_gradients_reach_joint_parameters(render)


def test_blend_puts_the_nearer_layer_in_front():
    near = soft_render.Layer(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 5.0]), torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]))
    far = soft_render.Layer(torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0]), torch.tensor([[0, 0, 1.0], [0, 0, 1.0]]))
    alpha, rgb = soft_render.blend(far, near, torch.ones(3), tau=0.01)
    np.testing.assert_allclose(alpha.numpy(), [1.0, 1.0])
    np.testing.assert_allclose(rgb[0].numpy(), [1.0, 0.0, 0.0], atol=1e-6)  # red, 1 m nearer, wins
    np.testing.assert_allclose(rgb[1].numpy(), [0.0, 0.0, 1.0], atol=1e-6)  # no red coverage there


# ----------------------------------------------------------------------------------------------
# CUDA renderer (nvdiffrast): clip space and the rasteriser output's layout are checked on a CPU;
# nvdiffrast itself only where it can run

needs_nvdiffrast = pytest.mark.skipif(
    cuda_render.unavailable_reason() is not None,
    reason="needs a CUDA GPU and nvdiffrast (pip install image-to-urdf[cuda]); none on this machine",
)


def test_clip_space_projects_like_the_camera_onto_nvdiffrast_pixel_centres():
    obj, camera, door = _door_scene()
    view = soft_render.View.from_camera(camera, torch.float64)
    near, far = 0.5, 6.0

    def pixels(points):  # nvdiffrast: column i's centre at x/w = 2 (i + 0.5) / W - 1, row j's likewise
        pos = cuda_render.clip_positions(view, torch.as_tensor(points), near, far).numpy()
        ndc = pos[:, :3] / pos[:, 3:]
        return np.stack([(ndc[:, 0] + 1) * camera.width / 2, (ndc[:, 1] + 1) * camera.height / 2], 1), ndc[:, 2], pos

    points = np.concatenate([obj.base.vertices, door.mesh.vertices])
    uv, _, pos = pixels(points)
    uv_camera, depth = camera.project(points)
    np.testing.assert_allclose(uv, uv_camera, atol=1e-9)  # pixels
    np.testing.assert_allclose(pos[:, 3], depth, atol=1e-12)  # w is the camera depth, metres
    # a point 2 m down the ray through the centre of image pixel (x, y) lands on nvdiffrast's
    # centre of column x, row y: no y flip (row 0 is our top row, nvdiffrast's y/w = -1)
    ys, xs = np.array([0, 0, 17, SIZE - 1]), np.array([0, SIZE - 1, 90, 3])
    on_rays = camera.position + 2.0 * camera.rays()[ys, xs]
    uv, _, _ = pixels(on_rays)
    np.testing.assert_allclose(uv, np.stack([xs + 0.5, ys + 0.5], 1), atol=1e-9)
    # depth: near -> -1, far -> +1, nearer is smaller (nvdiffrast keeps the smallest z/w)
    on_axis = camera.position + np.array([near, 1.0, 3.0, far])[:, None] * camera.pose[:3, 2]
    _, z_ndc, _ = pixels(on_axis)
    np.testing.assert_allclose(z_ndc[[0, 3]], [-1.0, 1.0], atol=1e-12)
    assert np.all(np.diff(z_ndc) > 0)


def _nvdiffrast_layout(camera, moved, faces, near: float, far: float) -> torch.Tensor:
    """(B, H, W, 4) ``(u, v, z/w, triangle_id + 1)`` from our CPU z-buffer rasteriser, 0 off the mesh."""
    rast = np.zeros((len(moved), camera.height, camera.width, 4))
    for k, vertices in enumerate(moved):  # one exact raster per frame
        r = exact_rasterize(camera, vertices, faces)
        z_ndc = (far + near) / (far - near) - 2 * far * near / ((far - near) * np.where(r.mask, r.depth, 1.0))
        rast[k] = np.where(r.mask[..., None], np.dstack([r.bary[..., :2], z_ndc, r.face_id + 1]), 0.0)
    return torch.as_tensor(rast)


def test_rasteriser_output_in_nvdiffrast_layout_becomes_the_part_layer():
    obj, camera, door = _door_scene()
    hull = door.mesh.convex_hull
    angles = np.array([0.3, 1.0])
    moved = kinematics.move_points(hull.vertices, "revolute", door.axis, door.origin, angles)  # (2, V, 3)
    view = soft_render.View.from_camera(camera, torch.float64)
    faces = torch.as_tensor(hull.faces)
    near, far = 0.5, 6.0
    rast = _nvdiffrast_layout(camera, moved, hull.faces, near, far)
    verts = torch.as_tensor(moved)
    frags = cuda_render.fragments_from_raster(rast, faces, cuda_render.clip_positions(view, verts, near, far)[..., 3])
    rest_corners = torch.as_tensor(hull.vertices[hull.faces])
    rest = (frags.bary[..., None] * rest_corners[frags.face]).sum(dim=1)  # as the fitter colours fragments
    index, layer = cuda_render.sparse_layer(cuda_render.premultiplied_image(frags, rest, 2, SIZE, SIZE))

    # exactly the covered pixels, fully covered (no antialiasing on a CPU)
    covered = torch.as_tensor(rast[..., 3] > 0).reshape(-1)
    assert torch.equal(index, torch.nonzero(covered).squeeze(1))
    assert torch.all(layer.alpha == 1.0)
    # each pixel's rest point, moved by its frame's angle, lies at the pixel centre at the layer's
    # depth: the barycentrics were read in the right vertex order and the depth is exact
    b, pix = index // (SIZE * SIZE), index % (SIZE * SIZE)
    for k, angle in enumerate(angles):
        at = (b == k).numpy()
        seen = kinematics.move_points(layer.rgb[at].numpy(), "revolute", door.axis, door.origin, [angle])[0]
        uv, depth = camera.project(seen)
        centre = np.stack([pix[at].numpy() % SIZE + 0.5, pix[at].numpy() // SIZE + 0.5], 1)
        np.testing.assert_allclose(uv, centre, atol=1e-6)  # pixels
        np.testing.assert_allclose(depth, layer.depth[at].numpy(), atol=1e-9)  # metres
    # and the soft rasteriser (its own edge functions) agrees wherever it fully covers a pixel
    soft = soft_render.rasterize(view, verts, faces, sigma=0.6, neighbours=torch.as_tensor(soft_render.edge_neighbours(hull.faces)))
    soft_rest = (soft.bary[..., None] * rest_corners[soft.face]).sum(dim=1)
    s_index, s_layer = soft_render.composite_layer(soft, soft_rest, SIZE, SIZE, tau=1e-4)
    inside = s_index[s_layer.alpha > 0.999]
    ours = torch.searchsorted(index, inside)
    assert torch.equal(index[ours], inside)  # fully covered by the soft renderer -> covered here
    theirs = torch.searchsorted(s_index, inside)
    np.testing.assert_allclose(layer.depth[ours].numpy(), s_layer.depth[theirs].numpy(), atol=1e-6)
    np.testing.assert_allclose(layer.rgb[ours].numpy(), s_layer.rgb[theirs].numpy(), atol=1e-6)


def test_sparse_layer_undoes_the_premultiplication_of_antialiased_pixels():
    # an antialiased edge pixel: a quarter covered by a surface 2 m away in red, next to empty ones
    image = torch.zeros(1, 1, 3, 5)
    image[0, 0, 1] = torch.tensor([0.25, 0.25 * 2.0, 0.25, 0.0, 0.0])
    image[0, 0, 2] = torch.tensor([1.0, 3.0, 0.0, 1.0, 0.0])
    index, layer = cuda_render.sparse_layer(image)
    assert index.tolist() == [1, 2]
    np.testing.assert_allclose(layer.alpha.numpy(), [0.25, 1.0])
    np.testing.assert_allclose(layer.depth.numpy(), [2.0, 3.0])
    np.testing.assert_allclose(layer.rgb.numpy(), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@pytest.mark.skipif(cuda_render.unavailable_reason() is None, reason="nvdiffrast can run on this machine")
def test_asking_for_nvdiffrast_without_it_fails_before_any_work(tmp_path):
    assert cuda_render.choose_renderer("auto") == "torch"
    assert cuda_render.choose_renderer("torch") == "torch"
    with pytest.raises(ImportError, match=r"nvdiffrast.*image-to-urdf\[cuda\].*joint_fit.renderer=torch"):
        cuda_render.choose_renderer("nvdiffrast")
    obj = make_object("box_lid", 0)
    camera = product_camera(obj, 0, SIZE, SIZE)
    recon = ReconstructResult(tmp_path / "m.glb", camera, tmp_path / "c.json", tuple(obj.extents), 1.0)
    amodal = AmodalResult(write_mesh(tmp_path / "b.glb", obj.base), (), tmp_path / "b.png", ())
    video = ArticulationVideoResult(clips=())
    with pytest.raises(ImportError, match="image-to-urdf"):
        joint_fit.run(joint_fit.Config(renderer="nvdiffrast"), recon, amodal, video, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@needs_nvdiffrast
def test_nvdiffrast_raster_matches_the_cpu_raster():
    import nvdiffrast.torch as dr

    obj, camera, door = _door_scene()
    hull = door.mesh.convex_hull
    angles = np.array([0.3, 1.0])
    moved = kinematics.move_points(hull.vertices, "revolute", door.axis, door.origin, angles)
    view = soft_render.View.from_camera(camera)
    frags, raster = cuda_render.rasterize(cuda_render.context(), view, torch.as_tensor(moved, dtype=torch.float32), torch.as_tensor(hull.faces))
    for k in range(len(angles)):
        exact = exact_rasterize(camera, moved[k], hull.faces)
        mine = frags.batch == k
        mask = np.zeros(SIZE * SIZE, bool)
        mask[frags.pixel[mine].numpy()] = True
        mask = mask.reshape(SIZE, SIZE)
        iou = (mask & exact.mask).sum() / (mask | exact.mask).sum()
        assert iou > 0.98, f"frame {k}: nvdiffrast/CPU coverage IoU {iou:.3f} (a y flip or offset would be far lower)"
        both = mask & exact.mask
        depth = np.zeros(SIZE * SIZE)
        depth[frags.pixel[mine].numpy()] = frags.depth[mine].detach().numpy()
        np.testing.assert_allclose(depth.reshape(SIZE, SIZE)[both], exact.depth[both], atol=1e-3)  # metres, float32
    # our interpolation is dr.interpolate's
    attr = raster.pos[..., 3:].contiguous()  # (B, V, 1) camera depth
    theirs, _ = dr.interpolate(attr, raster.rast, raster.tri)
    flat = theirs.reshape(-1)[(frags.batch * SIZE * SIZE + frags.pixel).to(theirs.device)]
    np.testing.assert_allclose(flat.detach().cpu().numpy(), frags.depth.detach().numpy(), atol=1e-5)


@needs_nvdiffrast
def test_nvdiffrast_gradients_reach_joint_parameters():
    glctx = cuda_render.context()

    def render(view, verts, faces):
        frags, raster = cuda_render.rasterize(glctx, view, verts, faces)
        return cuda_render.antialiased_layer(raster, frags, torch.full((len(frags.batch), 3), 0.5))

    _check_gradients_reach_joint_parameters(render)


# ----------------------------------------------------------------------------------------------
# Fits


def test_fits_a_revolute_door(tmp_path):
    truth, diag, result = _fit(tmp_path, "cabinet", 0, "door_0")
    (joint,) = result.joints
    assert joint.joint_type == "revolute"
    assert _axis_error_deg(joint, truth) < 2.0
    assert _pivot_error(joint, truth) < 0.02 * diag
    # the clip opens the door to its upper limit; the fit sees that much, and the free range
    # (no collision with the base) extends the written limit at least as far
    assert joint.observed_upper == pytest.approx(truth.upper, abs=np.radians(8))
    assert joint.lower == 0.0 and joint.upper >= joint.observed_upper
    assert len(joint.magnitudes) == 16 and joint.magnitudes[0] == 0.0 and np.all(np.diff(joint.magnitudes) >= 0)
    assert joint.losses["revolute"] < joint.losses["prismatic"]
    report = read_json(result.params_json)["parts"][0]
    assert len(report["candidates"]) == 30  # a panel: 24 lines along its long edges, 6 slides
    assert report["fits"]["revolute"]["curve"]


def test_fits_a_prismatic_drawer(tmp_path):
    truth, diag, result = _fit(tmp_path, "drawer_unit", 0, "drawer_1")
    (joint,) = result.joints
    assert joint.joint_type == "prismatic"
    assert _axis_error_deg(joint, truth) < 2.0
    assert joint.observed_upper == pytest.approx(truth.upper, rel=0.1)
    assert joint.free_upper > 0.5 * truth.upper


def test_a_clip_without_motion_gives_a_fixed_joint(tmp_path):
    truth, diag, result = _fit(tmp_path, "cabinet", 0, "door_0", still=True)
    (joint,) = result.joints
    assert joint.joint_type == "fixed"
    assert joint.axis_base == (0.0, 0.0, 0.0)  # no axis is made up
    assert joint.lower == joint.upper == 0.0 and joint.losses == {}


def test_the_proposal_decides_only_where_the_clip_cannot():
    """A clip of door_0 fitted with door_1's mesh (a wrong part mesh) explains little (left to
    the clip, revolute wins by a hair): the proposed type is kept; with the right mesh the clip
    overrules a wrong proposal."""
    obj = make_object("cabinet", 0)
    camera = product_camera(obj, 0, SIZE, SIZE)
    frames = [v.rgb for v in render_clip(obj, camera, "door_0", 12)]
    door_0, door_1 = obj.part("door_0").mesh, obj.part("door_1").mesh
    diag = float(np.linalg.norm(obj.extents))
    cfg = joint_fit.Config()
    wrong_base = trimesh.util.concatenate([obj.base, door_0])
    report = dq.fit_joint(cfg, camera, wrong_base, door_1, frames, diag, "prismatic")
    best = max(1 - v / report["static_loss"] for v in report["estimate"]["losses"].values())
    assert best < cfg.min_explained
    assert report["estimate"]["joint_type"] == "prismatic" and report["type_from"] == "proposal"
    report = dq.fit_joint(cfg, camera, trimesh.util.concatenate([obj.base, door_1]), door_0, frames, diag, "prismatic")
    assert report["estimate"]["joint_type"] == "revolute" and report["type_from"] == "clip"


def test_rejects_clips_that_do_not_match_the_parts(tmp_path):
    obj = make_object("box_lid", 0)
    camera = product_camera(obj, 0, SIZE, SIZE)
    recon = ReconstructResult(tmp_path / "m.glb", camera, tmp_path / "c.json", tuple(obj.extents), 1.0)
    amodal = AmodalResult(write_mesh(tmp_path / "b.glb", obj.base), (), tmp_path / "b.png", ())
    frame = write_image(tmp_path / "f.png", np.zeros((SIZE, SIZE, 3), np.uint8))
    video = ArticulationVideoResult(clips=(PartClip("lid_0", (frame, frame), frame, "prior"),))
    with pytest.raises(ValueError, match="clip"):
        joint_fit.run(joint_fit.Config(), recon, amodal, video, tmp_path / "out")


@needs_nvdiffrast
def test_nvdiffrast_fit_matches_the_torch_fit(tmp_path):
    truth, diag, torch_fit = _fit(tmp_path / "torch", "cabinet", 0, "door_0", renderer="torch")
    _, _, cuda_fit = _fit(tmp_path / "nvdiffrast", "cabinet", 0, "door_0", renderer="nvdiffrast")
    (a,), (b,) = torch_fit.joints, cuda_fit.joints
    assert read_json(cuda_fit.params_json)["parts"][0]["renderer"] == "nvdiffrast"
    assert b.joint_type == a.joint_type == "revolute"
    between = np.degrees(np.arccos(np.clip(abs(np.dot(a.axis_base, b.axis_base)), 0.0, 1.0)))
    assert between < 1.0, f"nvdiffrast and torch axes differ by {between:.2f} deg"


def test_a_busy_background_is_reported_for_what_the_user_gave(tmp_path, caplog):
    """A generated clip's warning speaks of the photo; only a user's clip is asked to be filmed again."""
    warnings = {}
    for source in ("prior", "motion"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="stages.joint_fit"):
            dq._warn_background(PartClip("door_0", (), tmp_path / "p.gif", source))
        (warnings[source],) = [r.getMessage() for r in caplog.records]
    assert "film" not in warnings["prior"] and "the photo" in warnings["prior"]
    assert "film the part" in warnings["motion"] and "clip's first frame" in warnings["motion"]
