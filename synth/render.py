"""Deterministic product-photo rendering of synth objects and of any URDF package (numpy, CPU).

One code path (``render_meshes``) renders both: ``render_view`` a ``SynthObject`` (face colours,
optionally procedural material textures), ``render_urdf`` a URDF loaded by ``load_urdf`` (its
visual meshes posed by forward kinematics; UV textures or colours), each with a clip variant.
Flat-shaded Lambertian surfaces lit by an ambient term and two soft directional lights fixed in
the camera frame (so every view is lit like a studio photo), anti-aliased by supersampling and
area downsampling. Masks and depth come from the same supersampled raster by a majority rule, so
``mask == isfinite(depth)`` holds exactly and every part mask lies inside the foreground mask.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages._shared.camera import Camera, orbit_camera
from stages._shared.raster import rasterize
from synth.objects import SynthObject

#: Ambient light term (fraction of albedo lit everywhere).
AMBIENT = 0.40
#: Directional lights: (direction towards the light in the OpenCV camera frame, intensity).
#: A key light above-left of the camera and a weaker fill from the right.
LIGHTS_CAMERA = (((-0.35, -0.85, -0.55), 0.55), ((0.8, -0.15, -0.6), 0.25))
#: Ranges of the product camera: azimuth and elevation (degrees), vertical field of view
#: (degrees) and the fraction of the frame the object's larger projected side fills.
AZIMUTH_DEG = (-45.0, 45.0)
ELEVATION_DEG = (8.0, 30.0)
FOV_Y_DEG = (30.0, 50.0)
FILL = (0.6, 0.75)


@dataclass(frozen=True, eq=False)
class RenderedView:
    """A rendered photo and its exact annotations.

    Attributes
    ----------
    rgb : (H, W, 3) uint8
      The photo.
    mask : (H, W) bool
      Foreground: pixels whose majority of subsamples hit the object.
    part_masks : dict of str to (H, W) bool
      Visible pixels of each movable part (by part name); disjoint and inside ``mask``.
    depth : (H, W) float
      Camera-frame z of the visible surface, metres (mean over the pixel's winning subsamples);
      ``inf`` where ``mask`` is False.
    """

    rgb: np.ndarray
    mask: np.ndarray
    part_masks: dict[str, np.ndarray]
    depth: np.ndarray


def render_view(
    obj: SynthObject,
    camera: Camera,
    joint_values: dict[str, float] | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
    supersample: int = 2,
    textured: bool = False,
) -> RenderedView:
    """Render ``obj`` seen by ``camera`` with its parts at ``joint_values``.

    Parameters
    ----------
    obj : SynthObject
      The object; meshes are in the base frame.
    camera : Camera
      Camera posed in the base frame; the output has its width and height.
    joint_values : dict of str to float, optional
      Joint value (rad or m) per part name; unnamed parts stay at rest.
    background : (3,) int
      RGB of pixels the object does not cover.
    supersample : int
      Subsamples per pixel side (``supersample**2`` per pixel) for anti-aliasing.
    textured : bool
      Draw each face's material as a procedural texture (wood grain, brushed metal, plastic
      speckle; seeded by ``obj.seed``, fixed to the part so it moves with it). False: flat colours.
    """
    rest = [obj.base] + [p.mesh for p in obj.parts]
    return render_meshes(
        camera,
        obj.posed(joint_values),
        labels=list(range(len(rest))),
        part_names=[p.name for p in obj.parts],
        background=background,
        supersample=supersample,
        rest_meshes=rest if textured else None,
        texture_seed=obj.seed,
    )


def render_meshes(
    camera: Camera,
    meshes: list,
    labels: list[int],
    part_names: list[str],
    background: tuple[int, int, int] = (255, 255, 255),
    supersample: int = 2,
    rest_meshes: list | None = None,
    texture_seed: int = 0,
    lights: tuple | None = None,
    ambient: float | None = None,
) -> RenderedView:
    """Render posed meshes with studio lighting; the one code path for synth objects and URDFs.

    Parameters
    ----------
    camera : Camera
      Camera posed in the meshes' frame; the output has its width and height.
    meshes : list of trimesh.Trimesh
      Posed meshes (metres). Albedo comes from a UV texture (``TextureVisuals`` with an image,
      e.g. a package's OBJ+MTL+PNG) or else from face colours.
    labels : list of int
      Per mesh: 0 for the base (or any static link), k for ``part_names[k - 1]``.
    part_names : list of str
      Names of the movable parts, keys of ``part_masks``.
    background : (3,) int
      RGB of pixels no mesh covers.
    supersample : int
      Subsamples per pixel side (``supersample**2`` per pixel) for anti-aliasing.
    rest_meshes : list of trimesh.Trimesh or None
      The same meshes at rest, for procedural textures: faces with ``face_attributes["material"]``
      (indices into ``synth.objects.MATERIALS``) get their material's texture evaluated at the
      rest-pose surface point, so it sticks to the part. None: no procedural texture.
    texture_seed : int
      Seed of the procedural textures.
    lights : tuple of ((3,) float, float) or None
      Directional lights as (direction towards the light in the OpenCV camera frame, intensity);
      None for ``LIGHTS_CAMERA``.
    ambient : float or None
      Ambient term; None for ``AMBIENT``.
    """
    background = np.asarray(background)
    if background.shape != (3,) or background.min() < 0 or background.max() > 255:
        raise ValueError(f"`background` must be 3 ints in [0, 255], got {background.tolist()}")
    if int(supersample) != supersample or supersample < 1:
        raise ValueError(f"`supersample` must be an int >= 1, got {supersample!r}")
    if len(labels) != len(meshes) or (rest_meshes is not None and len(rest_meshes) != len(meshes)):
        raise ValueError(
            f"`labels` ({len(labels)}) and `rest_meshes` must give one entry per mesh ({len(meshes)})"
        )
    if labels and (min(labels) < 0 or max(labels) > len(part_names)):
        raise ValueError(f"`labels` must lie in [0, {len(part_names)}] (0 = base, k = part_names[k-1]), got {labels}")
    s = int(supersample)
    H, W = camera.height, camera.width

    # 1. Scene: one vertex/face array, with the mesh index of every face.
    n_faces = np.array([len(m.faces) for m in meshes])
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    vertices = np.concatenate([m.vertices for m in meshes])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets)])
    mesh_of_face = np.repeat(np.arange(len(meshes)), n_faces)
    link = np.asarray(labels, dtype=np.int64)[mesh_of_face]

    # 2. Flat Lambertian light per face, normals turned towards the camera.
    tri = vertices[faces]  # (F, 3, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-20)
    facing = np.einsum("fk,fk->f", normals, camera.position - tri.mean(axis=1))
    normals *= np.where(facing < 0, -1.0, 1.0)[:, None]
    R = camera.pose[:3, :3]
    light = np.full(len(faces), AMBIENT if ambient is None else float(ambient))
    for direction, intensity in LIGHTS_CAMERA if lights is None else lights:
        d = R @ (np.asarray(direction) / np.linalg.norm(direction))  # camera -> base frame
        light += intensity * np.clip(normals @ d, 0.0, None)

    # 3. Supersampled raster; albedo per subsample (face colour, UV texture, procedural texture).
    raster = rasterize(camera.scaled(s) if s > 1 else camera, vertices, faces)
    hit = raster.face_id >= 0
    fid = np.where(hit, raster.face_id, 0)
    albedo = _face_albedo(meshes)[fid]  # (H*s, W*s, 3) in [0, 1]
    _apply_uv_textures(albedo, meshes, offsets, faces, mesh_of_face, raster)
    if rest_meshes is not None:
        _apply_materials(albedo, rest_meshes, offsets, faces, mesh_of_face, raster, texture_seed)
    shaded = np.clip(albedo * light[fid][..., None], 0.0, 1.0)
    sub_rgb = np.where(hit[..., None], shaded, background / 255.0)  # (H*s, W*s, 3)
    rgb = sub_rgb.reshape(H, s, W, s, 3).mean(axis=(1, 3))
    rgb = np.round(rgb * 255.0).astype(np.uint8)

    # 4. Masks and depth by majority over each pixel's subsamples (ties: lower label wins).
    n_links = len(part_names) + 1
    labels_sub = np.where(hit, link[fid], n_links)  # n_links = background
    labels_sub = labels_sub.reshape(H, s, W, s).transpose(0, 2, 1, 3).reshape(H, W, s * s)
    depth_sub = raster.depth.reshape(H, s, W, s).transpose(0, 2, 1, 3).reshape(H, W, s * s)
    counts = (labels_sub[..., None] == np.arange(n_links + 1)).sum(axis=2)  # (H, W, n_links + 1)
    winner = counts.argmax(axis=2)
    mask = winner != n_links
    chosen = labels_sub == winner[..., None]
    depth_sum = np.where(chosen & mask[..., None], depth_sub, 0.0).sum(axis=2)
    depth = np.full((H, W), np.inf)
    depth[mask] = depth_sum[mask] / chosen.sum(axis=2)[mask]
    part_masks = {name: winner == k + 1 for k, name in enumerate(part_names)}
    return RenderedView(rgb=rgb, mask=mask, part_masks=part_masks, depth=depth)


def _face_albedo(meshes: list) -> np.ndarray:
    """(F, 3) float face colours in [0, 1] (grey where a mesh has none, e.g. textured meshes)."""
    out = []
    for m in meshes:
        coloured = m.visual.kind in ("face", "vertex")  # else a texture (or nothing): grey until sampled
        colours = m.visual.face_colors if coloured else np.full((len(m.faces), 3), 200)
        out.append(np.asarray(colours, dtype=np.float64)[:, :3] / 255.0)
    return np.concatenate(out)


def _apply_uv_textures(albedo, meshes, offsets, faces, mesh_of_face, raster) -> None:
    """Overwrite ``albedo`` where a UV-textured mesh is visible with its texture (nearest texel)."""
    for k, m in enumerate(meshes):
        image = getattr(getattr(m.visual, "material", None), "image", None)
        uv = getattr(m.visual, "uv", None)
        if image is None or uv is None or len(uv) != len(m.vertices):
            continue
        texture = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0  # (h, w, 3)
        seen = (raster.face_id >= 0) & (mesh_of_face[np.maximum(raster.face_id, 0)] == k)
        corners = faces[raster.face_id[seen]] - offsets[k]  # (n, 3) local vertex ids
        st = np.einsum("nk,nkc->nc", raster.bary[seen], np.asarray(uv, dtype=np.float64)[corners])
        h, w = texture.shape[:2]
        col = np.clip((st[:, 0] % 1.0) * w, 0, w - 1).astype(np.int64)
        row = np.clip((1.0 - st[:, 1] % 1.0) * h, 0, h - 1).astype(np.int64)  # OBJ: v = 0 is the bottom row
        albedo[seen] = texture[row, col]


def _apply_materials(albedo, rest_meshes, offsets, faces, mesh_of_face, raster, seed: int) -> None:
    """Multiply ``albedo`` by the procedural texture of each visible face's material."""
    from synth.objects import MATERIALS

    codes = np.concatenate(
        [np.asarray(m.face_attributes.get("material", np.zeros(len(m.faces))), dtype=np.int64) for m in rest_meshes]
    )
    rest_vertices = np.concatenate([m.vertices for m in rest_meshes])
    seen = raster.face_id >= 0
    face = raster.face_id[seen]
    points = np.einsum("nk,nkc->nc", raster.bary[seen], rest_vertices[faces[face]])  # (n, 3) rest pose, metres
    factor = np.ones(len(face))
    for name in ("plastic", "wood", "metal"):
        pick = codes[face] == MATERIALS.index(name)
        if pick.any():
            factor[pick] = material_texture(name, points[pick], seed)
    albedo[seen] *= factor[:, None]


def material_texture(material: str, points: np.ndarray, seed: int) -> np.ndarray:
    """(n,) float brightness factor of ``material`` at ``points`` ((n, 3) metres, part at rest).

    Solid textures (no UVs needed): wood has wavy dark grain lines running along z; brushed metal
    has fine streaks along y; plastic a faint speckle. Deterministic per ``seed``.
    """
    p = np.asarray(points, dtype=np.float64)
    if material == "wood":
        wobble = _value_noise(p * np.array([12.0, 12.0, 1.5]), seed)
        t = p[:, 0] * 35.0 + p[:, 1] * 55.0 + 3.0 * wobble
        grain = (0.5 + 0.5 * np.sin(2 * np.pi * t)) ** 6
        return 1.02 - 0.16 * grain - 0.05 * _value_noise(p * 300.0, seed + 1)
    if material == "metal":
        streaks = _value_noise(p * np.array([900.0, 4.0, 900.0]), seed)
        return 0.96 + 0.08 * streaks
    if material == "plastic":
        return 0.985 + 0.03 * _value_noise(p * 800.0, seed)
    raise ValueError(f"`material` must be 'wood', 'metal' or 'plastic', got {material!r}")


def _value_noise(p: np.ndarray, seed: int) -> np.ndarray:
    """(n,) smooth pseudo-random values in [0, 1) at (n, 3) lattice coordinates (trilinear value noise)."""
    cell = np.floor(p)
    f = p - cell
    f = f * f * (3.0 - 2.0 * f)  # smoothstep
    cell = cell.astype(np.int64)
    out = np.zeros(len(p))
    for corner in np.ndindex(2, 2, 2):
        c = cell + np.array(corner)
        h = (c[:, 0] * 73856093) ^ (c[:, 1] * 19349663) ^ (c[:, 2] * 83492791) ^ (int(seed) * 2654435761)
        h = (h ^ (h >> 13)) * 1274126177
        value = ((h ^ (h >> 16)) & 0xFFFF) / 65536.0
        weight = np.prod(np.where(np.array(corner) == 1, f, 1.0 - f), axis=1)
        out += weight * value
    return out


def product_camera(obj: SynthObject, seed: int, width: int = 512, height: int = 512) -> Camera:
    """A seeded 3/4 or front product-photo camera looking at ``obj`` at rest (see ``camera_for_points``)."""
    points = np.concatenate([m.vertices for m in [obj.base] + [p.mesh for p in obj.parts]])
    return camera_for_points(points, seed, width, height)


def camera_for_points(points: np.ndarray, seed: int, width: int = 512, height: int = 512) -> Camera:
    """A seeded 3/4 or front product-photo camera looking at an object given by its points.

    Azimuth is drawn from ``AZIMUTH_DEG`` (0 = straight at the front, +x), elevation from
    ``ELEVATION_DEG``, vertical field of view from ``FOV_Y_DEG``; the distance makes the object's
    larger projected side fill a fraction drawn from ``FILL`` of the frame, and the object is
    centred in the image.

    Parameters
    ----------
    points : (n, 3) float
      The object's surface points (e.g. mesh vertices) at rest, base frame, metres.
    seed : int
      Non-negative seed of the draws.
    """
    if int(seed) != seed or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int, got {seed!r}")
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(points) < 2:
        raise ValueError(f"`points` must hold at least 2 points of the object, got {len(points)}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(b"product_camera")]))
    azimuth = np.deg2rad(rng.uniform(*AZIMUTH_DEG))
    elevation = np.deg2rad(rng.uniform(*ELEVATION_DEG))
    fov_y = np.deg2rad(rng.uniform(*FOV_Y_DEG))
    fill = rng.uniform(*FILL)

    return framed_camera(points, azimuth, elevation, fov_y, fill, width, height)


def framed_camera(
    points: np.ndarray, azimuth: float, elevation: float, fov_y: float, fill: float, width: int = 512, height: int = 512
) -> Camera:
    """An orbit camera at ``azimuth``/``elevation`` (rad, 0 = +x front) with vertical field of view
    ``fov_y`` (rad), whose distance makes the object's larger projected side fill ``fill`` of the
    frame (above 1: a crop that cuts the object's edges), the object centred in the image.

    ``points``: (n, 3) float surface points at rest, base frame, metres.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    bounds = np.stack([points.min(axis=0), points.max(axis=0)])
    target = bounds.mean(axis=0)
    diag = float(np.linalg.norm(bounds[1] - bounds[0]))
    camera = None
    for _ in range(3):  # alternate: distance for the fill, then re-centre the projection
        distance = _distance_for_fill(points, target, azimuth, elevation, fov_y, width, height, fill, diag)
        camera = orbit_camera(target, distance, azimuth, elevation, fov_y, width, height)
        uv, _ = camera.project(points)
        off = (uv.min(axis=0) + uv.max(axis=0)) / 2 - np.array([camera.cx, camera.cy])
        R = camera.pose[:3, :3]
        target = target + (R[:, 0] * off[0] / camera.fx + R[:, 1] * off[1] / camera.fy) * distance
    return orbit_camera(target, distance, azimuth, elevation, fov_y, width, height)


def _distance_for_fill(points, target, azimuth, elevation, fov_y, width, height, fill, diag) -> float:
    """Bisection on the camera distance so that the projected extent fills ``fill`` of the frame."""
    lo, hi = 0.6 * diag, 60.0 * diag
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        cam = orbit_camera(target, mid, azimuth, elevation, fov_y, width, height)
        uv, z = cam.project(points)
        span = max(np.ptp(uv[:, 0]) / width, np.ptp(uv[:, 1]) / height) if np.all(z > 0) else np.inf
        lo, hi = (mid, hi) if span > fill else (lo, mid)
    return hi


def render_clip(
    obj: SynthObject,
    camera: Camera,
    part_name: str,
    n_frames: int = 16,
    background: tuple[int, int, int] = (255, 255, 255),
    supersample: int = 2,
    textured: bool = False,
) -> list[RenderedView]:
    """Frames of ``part_name`` moving from rest (0) to its opening limit, other parts at rest.

    The opening limit is the joint limit of larger magnitude (for a laptop lid photographed open,
    the direction that closes it). Joint values are evenly spaced, first frame at rest.
    """
    part = obj.part(part_name)
    return [
        render_view(obj, camera, {part_name: v}, background, supersample, textured)
        for v in clip_values(part.opening_limit, n_frames)
    ]


def clip_values(opening_limit: float, n_frames: int) -> list[float]:
    """``n_frames`` evenly spaced joint values from rest (0) to ``opening_limit`` (rad or m)."""
    if int(n_frames) != n_frames or n_frames < 2:
        raise ValueError(f"`n_frames` must be an int >= 2, got {n_frames!r}")
    return [float(v) for v in np.linspace(0.0, opening_limit, int(n_frames))]


# ---------------------------------------------------------------------------------------------
# Any URDF package (generated, ours or third-party)
# ---------------------------------------------------------------------------------------------

#: Joint types that move a part (its child link's subtree).
MOVABLE_JOINTS = ("revolute", "prismatic", "continuous")


@dataclass(frozen=True, eq=False)
class UrdfScene:
    """A URDF loaded for rendering.

    Attributes
    ----------
    urdf : yourdfpy.URDF
      The model (its scene graph gives link poses at a joint configuration).
    visuals : list of (str, trimesh.Trimesh)
      Per visual: its link and its mesh in the link frame (visual origin and scale applied).
    part_of_link : dict of str to str or None
      Per link: the child link of its nearest movable ancestor joint (the part it moves with),
      None for links fixed to the root.
    parts : list of str
      The movable parts (child links of movable joints), in joint order.
    joint_of_part : dict of str to str
      The movable joint that moves each part.
    """

    urdf: object
    visuals: list
    part_of_link: dict
    parts: list
    joint_of_part: dict

    def limits(self, joint: str) -> tuple[float, float]:
        """(lower, upper) of ``joint``; a continuous joint without limits gets (-pi, pi)."""
        j = self.urdf.joint_map[joint]
        if j.limit is None or j.limit.lower is None or j.limit.upper is None:
            return -np.pi, np.pi
        return float(j.limit.lower), float(j.limit.upper)

    def points(self, joint_values: dict[str, float] | None = None) -> np.ndarray:
        """(n, 3) float visual mesh vertices posed at ``joint_values``, root frame, metres."""
        return np.concatenate([m.vertices for m in self.posed(joint_values)])

    def posed(self, joint_values: dict[str, float] | None = None) -> list:
        """Visual meshes moved to ``joint_values`` (joint name -> rad or m; others at 0), root frame."""
        joint_values = dict(joint_values or {})
        unknown = set(joint_values) - set(self.urdf.actuated_joint_names)
        if unknown:
            raise ValueError(
                f"`joint_values` names unknown joints {sorted(unknown)}; movable joints are {self.urdf.actuated_joint_names}"
            )
        cfg = np.array([float(joint_values.get(n, 0.0)) for n in self.urdf.actuated_joint_names])
        self.urdf.update_cfg(cfg)
        root = self.urdf.base_link
        poses = {link: self.urdf.get_transform(link, root) for link in {v[0] for v in self.visuals}}
        out = []
        for link, mesh in self.visuals:
            m = mesh.copy()
            m.apply_transform(poses[link])
            out.append(m)
        return out


def load_urdf(urdf_path: Path) -> UrdfScene:
    """Load a URDF and its visual meshes (OBJ with MTL/PNG, STL, DAE, GLB: whatever trimesh reads).

    Mesh filenames are resolved relative to the URDF's folder (``package://`` prefixes are
    stripped to that folder too). Primitive visuals (box, cylinder, sphere) are meshed.
    """
    import trimesh
    import yourdfpy

    urdf_path = Path(urdf_path)
    if not urdf_path.is_file():
        raise ValueError(f"{urdf_path}: URDF not found; pass the .urdf file of a package")
    urdf = yourdfpy.URDF.load(str(urdf_path), build_scene_graph=True, load_meshes=False, build_collision_scene_graph=False)
    folder = urdf_path.parent
    visuals = []
    for link in urdf.robot.links:
        for visual in link.visuals:
            g = visual.geometry
            if g.mesh is not None:
                name = g.mesh.filename
                for prefix in ("package://", "file://"):
                    if name.startswith(prefix):
                        name = name[len(prefix):].split("/", 1)[-1] if prefix == "package://" else name[len(prefix):]
                path = Path(name) if Path(name).is_absolute() else folder / name
                if not path.is_file():
                    raise ValueError(f"{urdf_path}: link {link.name!r} names visual mesh {g.mesh.filename!r}, not found at {path}")
                mesh = trimesh.load(str(path), force="mesh", process=False)
                if g.mesh.scale is not None:
                    mesh.apply_scale(g.mesh.scale)
            elif g.box is not None:
                mesh = trimesh.creation.box(extents=g.box.size)
            elif g.cylinder is not None:
                mesh = trimesh.creation.cylinder(radius=g.cylinder.radius, height=g.cylinder.length)
            elif g.sphere is not None:
                mesh = trimesh.creation.icosphere(radius=g.sphere.radius)
            else:
                continue
            if visual.origin is not None:
                mesh.apply_transform(visual.origin)
            visuals.append((link.name, mesh))
    if not visuals:
        raise ValueError(f"{urdf_path}: no link has a visual geometry to render")

    parts, joint_of_part, part_of_link = [], {}, {}
    children = {}
    for j in urdf.robot.joints:
        children.setdefault(j.parent, []).append(j)
        if j.type in MOVABLE_JOINTS:
            parts.append(j.child)
            joint_of_part[j.child] = j.name
    stack = [(urdf.base_link, None)]
    while stack:  # walk the tree from the root, carrying the nearest movable ancestor's child
        link, part = stack.pop()
        part_of_link[link] = part
        for j in children.get(link, []):
            stack.append((j.child, j.child if j.type in MOVABLE_JOINTS else part))
    return UrdfScene(urdf=urdf, visuals=visuals, part_of_link=part_of_link, parts=parts, joint_of_part=joint_of_part)


def render_urdf(
    scene: UrdfScene,
    camera: Camera,
    joint_values: dict[str, float] | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
    supersample: int = 2,
    lights: tuple | None = None,
    ambient: float | None = None,
) -> RenderedView:
    """Render a loaded URDF at ``joint_values`` (joint name -> rad or m); same lighting as synth.

    ``part_masks`` is keyed by part (the child link of each movable joint) and covers the
    part's whole subtree. ``lights``/``ambient``: as ``render_meshes`` (None: the studio set-up).
    """
    labels = [0 if scene.part_of_link[link] is None else scene.parts.index(scene.part_of_link[link]) + 1
              for link, _ in scene.visuals]
    return render_meshes(camera, scene.posed(joint_values), labels, list(scene.parts), background, supersample,
                         lights=lights, ambient=ambient)


def render_urdf_clip(
    scene: UrdfScene,
    camera: Camera,
    joint: str,
    n_frames: int = 16,
    background: tuple[int, int, int] = (255, 255, 255),
    supersample: int = 2,
    lights: tuple | None = None,
    ambient: float | None = None,
) -> list[RenderedView]:
    """Frames of ``joint`` moving from rest (0) to the limit of larger magnitude, others at rest."""
    if joint not in scene.urdf.actuated_joint_names:
        raise ValueError(f"`joint` must be one of {scene.urdf.actuated_joint_names}, got {joint!r}")
    lower, upper = scene.limits(joint)
    opening = upper if abs(upper) >= abs(lower) else lower
    return [render_urdf(scene, camera, {joint: v}, background, supersample, lights, ambient)
            for v in clip_values(opening, n_frames)]


def click_point(mask: np.ndarray) -> tuple[int, int]:
    """A pixel well inside ``mask``, near its centroid: the prompt a user would click.

    Among pixels whose distance to the mask boundary is at least half the largest such distance,
    the one closest to the mask's centroid.

    Parameters
    ----------
    mask : (H, W) bool
      A part's visible pixels.

    Returns
    -------
    x, y : int
      Column and row of the chosen pixel.
    """
    from scipy.ndimage import distance_transform_edt

    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != bool:
        raise ValueError(f"`mask` must be (H, W) bool, got {mask.shape} {mask.dtype}")
    if not mask.any():
        raise ValueError("`mask` is empty: the part is not visible in this view; pick another camera")
    inner = distance_transform_edt(mask)
    ys, xs = np.nonzero(inner >= 0.5 * inner.max())
    my, mx = np.nonzero(mask)
    k = np.argmin((xs - mx.mean()) ** 2 + (ys - my.mean()) ** 2)
    return int(xs[k]), int(ys[k])
