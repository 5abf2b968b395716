"""URDF package backend "template": links, joints, convex collisions and inertials, written as
a package (DESIGN.md layout) through a Jinja template.

Layout of ``<out_dir>/<name>/``::

    <name>.urdf                     links and joints; mesh paths relative to this file
    meshes/visual/<link>.obj        textured visual mesh (+ .mtl + .png), in the link frame
    meshes/collision/<link>_<i>.obj convex pieces (CoACD), in the link frame
    masks/<part>.png                the part's mask in the input photo
    package.json                    machine-readable summary (joints, camera, scale, validation)

Frames: every link frame is parallel to the base frame. The base link's frame is the base frame;
a child link's frame sits at its joint's ``origin_base`` (a point on the joint axis, base frame at
rest), so that the joint rotates or slides the child about its own frame origin. Mesh vertices are
written in the link frame: the child's meshes are shifted by ``-origin_base`` when written, and
every ``<visual>``/``<collision>`` origin is the identity.

:func:`write_package` is the reusable writer (the ground-truth generator writes its packages with
it too); :func:`run` gathers the pipeline's stage results into its inputs.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stages._shared.camera import Camera
from stages._shared.io import atomic_dir, read_mask, sha256_file, write_bytes, write_image, write_json, write_mesh
from stages._shared.io import write_textured_obj
from stages._shared.solids import closed_solid

log = logging.getLogger(__name__)

#: The version string written to package.json.
VERSION = "image-to-urdf 0.1.0"
#: Folder of the Jinja templates (repository root / urdf_templates).
TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "urdf_templates"
#: Names of packages, links and joints (SAPIEN / Isaac Sim importers expect these).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")
#: Significant digits of every number written to the URDF.
URDF_DIGITS = 10

JointType = Literal["revolute", "prismatic", "fixed"]


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["template"] = "template"
    density_kg_m3: float = Field(400.0, gt=0, description="Density of every link's solid, kg/m^3 (light wood/MDF).")
    effort: float = Field(20.0, gt=0, description="Joint effort limit, N*m (revolute) or N (prismatic).")
    velocity: float = Field(1.0, gt=0, description="Joint velocity limit, rad/s (revolute) or m/s (prismatic).")
    damping: float = Field(0.1, ge=0, description="Joint damping, N*m*s/rad or N*s/m.")
    friction: float = Field(0.0, ge=0, description="Joint dry friction, N*m or N.")
    coacd_threshold: float = Field(
        0.05, gt=0, le=1, description="CoACD concavity threshold (fraction of the link's size); lower keeps cavities open."
    )
    coacd_max_hulls: int = Field(-1, ge=-1, description="Most convex pieces per link (merging beyond); -1 for no limit.")
    coacd_resolution: int = Field(1000, ge=100, description="CoACD surface samples for its concavity metric.")
    coacd_mcts_iterations: int = Field(50, ge=10, description="CoACD tree-search iterations per cut.")
    coacd_mcts_depth: int = Field(2, ge=1, description="CoACD tree-search depth (cuts looked ahead).")
    coacd_mcts_nodes: int = Field(10, ge=1, description="CoACD tree-search children per node.")
    coacd_seed: int = Field(0, description="CoACD random seed (decompositions are deterministic per seed).")
    collision_clearance_m: float = Field(
        0.001, ge=0, description="Gap kept between a link's convex pieces and its children's rest hulls, metres."
    )
    clearance_samples: int = Field(2000, ge=10, description="Surface samples per other link for the clearance report.")
    convex_tolerance: float = Field(
        1e-3, ge=0, description="A link whose convex hull exceeds its volume by at most this fraction is one convex piece."
    )
    collision_penetration_m: float = Field(
        0.004,
        ge=0,
        description="Joint limits are narrowed until a moving link's convex pieces penetrate the others' by at most "
        "this (or collision_penetration_fraction of the diagonal, if larger) in PyBullet, metres; 0.8 of what "
        "validation allows (PyBullet's hull margins alone reach ~3 mm)",
    )
    collision_penetration_fraction: float = Field(
        0.004, ge=0, description="The same allowance as a fraction of the object's bounding-box diagonal."
    )


@dataclass(frozen=True)
class LinkSpec:
    """One link to write.

    name : ``[A-Za-z0-9_]+``.
    mesh : trimesh.Trimesh in the base frame at rest, metres; a closed surface (watertight once
      coincident vertices are merged, as for a textured mesh split along UV seams). Its visual is
      a ``TextureVisuals`` with an image, or face/vertex colours (turned into a palette texture).
    """

    name: str
    mesh: object


@dataclass(frozen=True)
class JointSpec:
    """One joint to write, in the base frame at rest.

    axis : (3,) unit axis. origin : (3,) point on the axis, metres; the child link's frame.
    lower / upper : limits, radians or metres from rest. extra : more keys for this joint's
    entry in package.json (mask, click, confidence, ...).
    """

    name: str
    type: JointType
    parent: str
    child: str
    axis: tuple[float, float, float]
    origin: tuple[float, float, float]
    lower: float
    upper: float
    extra: dict = field(default_factory=dict)


def run(cfg: Config, name: str, photo: Path, fg, recon, masks, joints, texture, scale_m: float, out_dir: Path):
    """Assemble the pipeline's results into ``out_dir/<name>/``.

    Parameters
    ----------
    cfg : Config
    name : str
      Package name, ``[A-Za-z0-9_]+``.
    photo : Path
      The original input photo (hashed into package.json; its size fixes the camera's pixel grid).
    fg : ForegroundResult
      The pixel grid the camera and masks were estimated on.
    recon : ReconstructResult
      ``camera`` on ``fg``'s pixel grid, base frame.
    masks : PartMasksResult
      Part masks, clicks and mask confidences; ``parts[k].name`` names link k + 1.
    joints : JointFitResult
      One joint per part (matched by part name).
    texture : TextureResult
      Textured visual meshes (base frame at rest); also the solids for inertia and collision.
    scale_m : float
      The object's largest dimension used to scale the reconstruction, metres.
    out_dir : Path

    Returns
    -------
    UrdfPackageResult
    """
    import trimesh

    from stages._shared.photo import check_photo

    # 1. Check inputs
    photo = Path(photo)
    if not scale_m > 0:
        raise ValueError(f"`scale_m` must be a positive length in metres, got {scale_m}")
    part_names = [p.name for p in masks.parts]
    joint_by_part = {j.part: j for j in joints.joints}
    tex_by_link = {t.link: t for t in texture.parts}
    if sorted(joint_by_part) != sorted(part_names) or sorted(tex_by_link) != sorted(part_names):
        raise ValueError(
            f"parts must match across stages: part_masks {sorted(part_names)}, joint_fit "
            f"{sorted(joint_by_part)}, texture {sorted(tex_by_link)}; run them on the same parts"
        )
    if (recon.camera.width, recon.camera.height) != (fg.width, fg.height):
        raise ValueError(
            f"recon.camera is {recon.camera.width}x{recon.camera.height}, the foreground image "
            f"{fg.width}x{fg.height}; the camera must be estimated on the foreground stage's image"
        )

    # 2. Camera and masks on the original photo's pixel grid
    photo_w, photo_h = check_photo(photo)
    factor = photo_w / fg.width
    if abs(fg.height * factor - photo_h) > 1.0:
        raise ValueError(
            f"photo {photo} is {photo_w}x{photo_h} but the foreground image is {fg.width}x{fg.height}, "
            "a different aspect ratio; pass the photo the foreground stage read"
        )
    camera = recon.camera if factor == 1.0 else recon.camera.scaled(factor)
    part_masks = {p.name: _resize_mask(read_mask(p.mask), photo_w, photo_h) for p in masks.parts}

    # 3. Links and joints
    links = [LinkSpec("base", trimesh.load(texture.base.obj, force="mesh", process=False))]
    links += [LinkSpec(n, trimesh.load(tex_by_link[n].obj, force="mesh", process=False)) for n in part_names]
    joint_specs = []
    for part in masks.parts:
        j = joint_by_part[part.name]
        joint_specs.append(
            JointSpec(
                name=f"{part.name}_joint",
                type=j.joint_type,
                parent="base",
                child=part.name,
                axis=tuple(j.axis_base),
                origin=tuple(j.origin_base),
                lower=j.lower,
                upper=j.upper,
                extra={
                    "click": list(part.click) if part.click is not None else None,
                    "confidence": j.confidence,
                    "mask_confidence": part.confidence,
                    "hinge_side": part.hinge_side,
                    "observed_lower": j.observed_lower,
                    "observed_upper": j.observed_upper,
                    "free_lower": j.free_lower,
                    "free_upper": j.free_upper,
                    "losses": dict(j.losses),
                },
            )
        )
    extra = {
        "source": {"image": photo.name, "image_sha256": sha256_file(photo)},
        "scale_m": float(scale_m),
        "seen_fraction": {t.link: t.seen_fraction for t in (texture.base, *texture.parts)},
    }
    return write_package(name, links, joint_specs, out_dir, cfg=cfg, camera=camera, masks=part_masks, extra=extra)


def _resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    if mask.shape == (height, width):
        return mask
    import PIL.Image

    return np.asarray(PIL.Image.fromarray(mask).resize((width, height), PIL.Image.Resampling.NEAREST))


def write_package(
    name: str,
    links: Sequence[LinkSpec],
    joints: Sequence[JointSpec],
    out_dir: Path,
    cfg: Config = Config(),
    camera: Camera | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
    extra: Mapping | None = None,
):
    """Write a URDF package ``out_dir/<name>/`` (atomically: built in a temporary folder).

    Parameters
    ----------
    name : str
      Package and robot name, ``[A-Za-z0-9_]+``.
    links : sequence of LinkSpec
      The links; exactly one (the root, usually ``base``) is no joint's child.
    joints : sequence of JointSpec
      One joint per non-root link.
    out_dir : Path
      The package folder is ``out_dir/<name>``; an existing one is replaced whole.
    cfg : Config
      Density, joint effort/velocity/damping and CoACD settings.
    camera : Camera or None
      The input photo's camera (base frame), written as package.json ``camera``.
    masks : mapping of str to (H, W) bool, or None
      Per child link, its mask in the input photo; written to ``masks/<link>.png`` and named by
      the joint's ``mask`` key.
    extra : mapping or None
      More top-level keys for package.json (``source``, ``scale_m``, ...).

    Returns
    -------
    UrdfPackageResult
    """
    import trimesh
    import yourdfpy

    from stages.urdf_package import UrdfPackageResult

    # 1. Check inputs
    started = time.perf_counter()
    links, joints = list(links), list(joints)
    masks = dict(masks or {})
    _check_tree(name, links, joints, masks)
    frame = {_root(links, joints): np.zeros(3)}  # link frame origin in the base frame, metres
    for j in joints:
        frame[j.child] = np.asarray(j.origin, dtype=np.float64)

    solids = {link.name: closed_solid(link.mesh, f"link {link.name!r}") for link in links}  # base frame, rest
    pieces, intrusion = {}, {}
    for link in links:  # convex collision pieces, base frame at rest
        others = [s for n, s in solids.items() if n != link.name]
        children = [solids[j.child] for j in joints if j.parent == link.name]
        pieces[link.name], intrusion[link.name] = _convex_pieces(cfg, link.name, solids[link.name], children, others)
    joints = _limits_clear_of_pieces(cfg, joints, pieces, solids)

    out_dir = Path(out_dir)
    with atomic_dir(out_dir / name) as tmp:
        # 2. Links: visual OBJ, collision pieces, inertial (all in the link frame)
        urdf_links, link_entries = [], []
        for link in links:
            shift = trimesh.transformations.translation_matrix(-frame[link.name])
            visual = _textured(link.mesh)
            visual.apply_transform(shift)
            write_textured_obj(tmp / "meshes" / "visual" / f"{link.name}.obj", visual)
            collision_files = []
            for i, piece in enumerate(pieces[link.name]):
                rel = f"meshes/collision/{link.name}_{i}.obj"
                piece.apply_transform(shift)
                write_mesh(tmp / rel, piece)
                collision_files.append(rel)
            solid = solids[link.name].copy()
            solid.apply_transform(shift)
            solid.density = cfg.density_kg_m3
            inertial = yourdfpy.Inertial(
                origin=trimesh.transformations.translation_matrix(solid.center_mass),
                mass=float(solid.mass),
                inertia=np.asarray(solid.moment_inertia, dtype=np.float64),
            )
            urdf_links.append(
                yourdfpy.Link(
                    name=link.name,
                    inertial=inertial,
                    visuals=[
                        yourdfpy.Visual(
                            name=f"{link.name}_visual",
                            origin=np.eye(4),
                            geometry=yourdfpy.Geometry(mesh=yourdfpy.Mesh(filename=f"meshes/visual/{link.name}.obj")),
                        )
                    ],
                    collisions=[
                        yourdfpy.Collision(
                            name=f"{link.name}_collision_{i}",
                            origin=np.eye(4),
                            geometry=yourdfpy.Geometry(mesh=yourdfpy.Mesh(filename=rel)),
                        )
                        for i, rel in enumerate(collision_files)
                    ],
                )
            )
            link_entries.append(
                {
                    "name": link.name,
                    "visual": f"meshes/visual/{link.name}.obj",
                    "collision": collision_files,
                    "mass_kg": float(solid.mass),
                    "volume_m3": float(solid.volume),
                    "collision_intrusion_m": intrusion[link.name],
                    "center_of_mass": solid.center_mass,
                    "frame_origin_base": frame[link.name],
                }
            )

        # 3. Joints
        urdf_joints, joint_entries = [], []
        for j in joints:
            movable = j.type != "fixed"
            urdf_joints.append(
                yourdfpy.Joint(
                    name=j.name,
                    type=j.type,
                    parent=j.parent,
                    child=j.child,
                    origin=trimesh.transformations.translation_matrix(frame[j.child] - frame[j.parent]),
                    # A fixed joint has no axis; URDF readers then take the default (1, 0, 0).
                    axis=np.asarray(j.axis, dtype=np.float64) if movable else np.array([1.0, 0.0, 0.0]),
                    limit=(
                        yourdfpy.Limit(effort=cfg.effort, velocity=cfg.velocity, lower=float(j.lower), upper=float(j.upper))
                        if movable
                        else None
                    ),
                    dynamics=yourdfpy.Dynamics(damping=cfg.damping, friction=cfg.friction) if movable else None,
                )
            )
            entry = {
                "name": j.name,
                "type": j.type,
                "parent": j.parent,
                "child": j.child,
                "axis_base": [float(v) for v in j.axis],
                "origin_base": [float(v) for v in j.origin],
                "lower": float(j.lower),
                "upper": float(j.upper),
                "effort": cfg.effort if movable else None,
                "velocity": cfg.velocity if movable else None,
                "mask": f"masks/{j.child}.png" if j.child in masks else None,
            }
            entry.update(j.extra)
            joint_entries.append(entry)
        robot = yourdfpy.Robot(name=name, links=urdf_links, joints=urdf_joints)

        # 4. URDF through the template, reloaded to check it reads back as built
        urdf_path = tmp / f"{name}.urdf"
        write_bytes(urdf_path, render_urdf(robot).encode())
        _check_round_trip(urdf_path, robot)

        # 5. Masks and package.json
        for child, mask in masks.items():
            write_image(tmp / "masks" / f"{child}.png", np.asarray(mask, dtype=bool))
        summary = {
            "name": name,
            "version": VERSION,
            "source": None,
            "scale_m": None,
            "camera": camera.to_dict() if camera is not None else None,
            "joints": joint_entries,
            "links": link_entries,
            "density_kg_m3": cfg.density_kg_m3,
            "validation": None,
        }
        summary.update(dict(extra or {}))
        write_json(tmp / "package.json", summary)

    package_dir = out_dir / name
    log.info(
        "urdf_package: %s with %d links (%d collision pieces), %d joints, %.1f kg, %.1f s",
        name,
        len(links),
        sum(len(e["collision"]) for e in link_entries),
        len(joints),
        sum(e["mass_kg"] for e in link_entries),
        time.perf_counter() - started,
    )
    return UrdfPackageResult(
        name=name,
        package_dir=package_dir,
        urdf=package_dir / f"{name}.urdf",
        package_json=package_dir / "package.json",
    )


def render_urdf(robot) -> str:
    """Format a ``yourdfpy.Robot`` as URDF text with ``urdf_templates/robot.urdf.j2``."""
    import jinja2
    import trimesh

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _num
    env.filters["vec"] = lambda values: " ".join(_num(v) for v in np.asarray(values).ravel())
    env.filters["xyz"] = lambda T: " ".join(_num(v) for v in np.asarray(T)[:3, 3])
    env.filters["rpy"] = lambda T: " ".join(_num(v) for v in trimesh.transformations.euler_from_matrix(T, "sxyz"))
    return env.get_template("robot.urdf.j2").render(robot=robot, comment=f"written by {VERSION}")


def _num(value: float) -> str:
    """A number with URDF_DIGITS significant digits (``-0`` written as ``0``)."""
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"cannot write the non-finite number {value} to a URDF")
    return f"{value + 0.0:.{URDF_DIGITS}g}"


def _root(links: Sequence[LinkSpec], joints: Sequence[JointSpec]) -> str:
    children = {j.child for j in joints}
    return next(link.name for link in links if link.name not in children)


def _check_tree(name: str, links: list[LinkSpec], joints: list[JointSpec], masks: dict) -> None:
    """Names, one root, one parent per link, known link names; raise ValueError otherwise."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"package `name` must match [A-Za-z0-9_]+, got {name!r}")
    link_names = [link.name for link in links]
    for n in link_names + [j.name for j in joints]:
        if not NAME_PATTERN.match(n):
            raise ValueError(f"link/joint name {n!r} must match [A-Za-z0-9_]+; rename it")
    if len(set(link_names)) != len(link_names):
        raise ValueError(f"link names must be unique, got {link_names}")
    if len({j.name for j in joints}) != len(joints):
        raise ValueError(f"joint names must be unique, got {[j.name for j in joints]}")
    children = [j.child for j in joints]
    if len(set(children)) != len(children):
        raise ValueError(f"each link may be the child of one joint only, got children {children}")
    for j in joints:
        if j.parent not in link_names or j.child not in link_names:
            raise ValueError(f"joint {j.name!r} connects {j.parent!r} -> {j.child!r}, not both among links {link_names}")
        if j.type not in ("revolute", "prismatic", "fixed"):
            raise ValueError(f"joint {j.name!r}: type must be revolute, prismatic or fixed, got {j.type!r}")
        values = np.array([*j.axis, *j.origin, j.lower, j.upper], dtype=np.float64)
        if values.shape != (8,) or not np.all(np.isfinite(values)):
            raise ValueError(f"joint {j.name!r}: axis (3,), origin (3,), lower, upper must be finite, got {values}")
    roots = [n for n in link_names if n not in set(children)]
    if len(roots) != 1:
        raise ValueError(f"links must form one tree with one root, found roots {roots}; add the missing joints")
    for child in masks:
        if child not in children:
            raise ValueError(f"mask given for {child!r}, which is no joint's child link")


def _textured(mesh):
    """A copy of ``mesh`` carrying TextureVisuals; colours become an 8x-upsampled palette texture."""
    import PIL.Image
    import trimesh

    visual = mesh.visual
    if isinstance(visual, trimesh.visual.TextureVisuals):
        material = visual.material
        if isinstance(material, trimesh.visual.material.PBRMaterial):
            material = material.to_simple()
        if visual.uv is None or getattr(material, "image", None) is None:
            raise ValueError("a link mesh with TextureVisuals must have uv and a texture image")
        return mesh.copy()
    out = mesh.copy()
    if visual.kind == "face":
        out.unmerge_vertices()  # one colour per face -> per-vertex colours without blending
    colours = np.asarray(out.visual.vertex_colors)
    out.visual = trimesh.visual.ColorVisuals(out, vertex_colors=colours).to_texture()
    image = out.visual.material.image
    out.visual.material.image = image.resize((image.width * 8, image.height * 8), PIL.Image.Resampling.NEAREST)
    return out


def _convex_pieces(cfg: Config, link: str, solid, children: list, others: list) -> tuple[list, float]:
    """Convex pieces covering ``solid`` that keep clear of its children at rest.

    CoACD approximates a concave solid by hulls, and a hull tends to span the cavity a part rests
    in (a drawer's slot, a door's recess). Each piece is therefore cut by the convex hull of every
    child, grown by ``cfg.collision_clearance_m``: a convex piece minus a convex region is the
    union of convex pieces, one per face plane of the region, so the cut is exact.

    Parameters
    ----------
    solid : trimesh.Trimesh
      Closed link solid, base frame at rest.
    children : list of trimesh.Trimesh
      Solids of the links jointed to this one, same frame.
    others : list of trimesh.Trimesh
      Every other link's solid, same frame; only used to report the intrusion.

    Returns
    -------
    pieces : list of trimesh.Trimesh
      Convex hulls, base frame.
    intrusion : float
      Deepest point of another link (sampled on its surface) inside a piece, metres.
    """
    import trimesh

    pieces = [solid.convex_hull] if _is_convex(cfg, solid) else _coacd(cfg, solid, cfg.coacd_threshold)
    for child in children:
        pieces = [cut for piece in pieces for cut in _cut_away(piece, child.convex_hull, cfg.collision_clearance_m)]
    if not others:
        return pieces, 0.0
    rng = np.random.default_rng(cfg.coacd_seed)
    samples = np.concatenate(
        [trimesh.sample.sample_surface(o, cfg.clearance_samples, seed=int(rng.integers(1 << 31)))[0] for o in others]
    )  # (n, 3) points on the other links
    intrusion = float(max((_intrusion(piece, samples) for piece in pieces), default=0.0))
    return pieces, intrusion


def _limits_clear_of_pieces(cfg: Config, joints: list, pieces: dict, solids: dict) -> list:
    """``joints`` with limits narrowed so that, swept in PyBullet, each moving subtree's convex
    pieces stay within the allowance of every other link's pieces (other joints at rest).

    Joint fitting keeps the exact solids clear; the pieces are coarser (CoACD hulls, a door's
    hull spanning its handle), and simulators collide the pieces, so the limits must hold for
    them too. A joint whose pieces already collide at rest is left as it is (validation reports it).
    """
    import dataclasses

    import pybullet as p
    from scipy.spatial.transform import Rotation

    from stages._shared.contact import first_collision
    from stages._shared.kinematics import joint_matrix, subtree

    movable = [j for j in joints if j.type != "fixed"]
    if not movable:
        return joints
    bounds = np.concatenate([s.bounds for s in solids.values()])
    allowance = max(cfg.collision_penetration_m, cfg.collision_penetration_fraction * float(np.linalg.norm(np.ptp(bounds, axis=0))))
    client = p.connect(p.DIRECT)
    try:
        bodies = {
            name: [
                p.createMultiBody(
                    baseMass=0.0,
                    baseCollisionShapeIndex=p.createCollisionShape(
                        p.GEOM_MESH, vertices=np.asarray(piece.vertices).tolist(), physicsClientId=client
                    ),
                    physicsClientId=client,
                )
                for piece in link_pieces
            ]
            for name, link_pieces in pieces.items()
        }
        out = []
        for j in joints:
            if j.type == "fixed":
                out.append(j)
                continue
            moving_links = subtree(joints, j.child)
            moving = [b for n in moving_links for b in bodies[n]]
            static = [b for n, bs in bodies.items() if n not in moving_links for b in bs]

            def pose(T: np.ndarray) -> None:
                orn = Rotation.from_matrix(T[:3, :3]).as_quat()  # x, y, z, w
                for b in moving:
                    p.resetBasePositionAndOrientation(b, T[:3, 3].tolist(), orn.tolist(), physicsClientId=client)

            def depth(magnitude: float) -> float:
                pose(joint_matrix(j.type, np.asarray(j.axis), np.asarray(j.origin), magnitude))
                return max(
                    [-c[8] for a in moving for b in static
                     for c in p.getClosestPoints(a, b, distance=0.0, physicsClientId=client)],
                    default=0.0,
                )  # fmt: skip

            rest = depth(0.0)
            if rest > allowance:
                log.warning(
                    "urdf_package: %s: collision pieces of %r penetrate the others by %.4f m at rest; limits kept",
                    j.name, j.child, rest,
                )  # fmt: skip
                out.append(j)
            else:
                lower = first_collision(lambda m: depth(m) > allowance, j.lower) if j.lower < 0 else j.lower
                upper = first_collision(lambda m: depth(m) > allowance, j.upper) if j.upper > 0 else j.upper
                if (lower, upper) != (j.lower, j.upper):
                    log.info(
                        "urdf_package: %s: limits [%.4f, %.4f] narrowed to [%.4f, %.4f] where its collision pieces "
                        "stay clear", j.name, j.lower, j.upper, lower, upper,
                    )  # fmt: skip
                    j = dataclasses.replace(
                        j, lower=lower, upper=upper, extra={**j.extra, "limits_before_collision_check": [j.lower, j.upper]}
                    )
                out.append(j)
            pose(np.eye(4))  # back to rest for the next joint's sweep
        return out
    finally:
        p.disconnect(physicsClientId=client)


#: Slivers thinner than this (metres) left by a cut are dropped.
_MIN_PIECE_THICKNESS_M = 1e-4


def _cut_away(piece, region, margin: float) -> list:
    """Convex parts of ``piece`` outside ``region`` grown by ``margin`` (both convex, metres)."""
    lo, hi = region.bounds
    if np.any(piece.bounds[0] > hi + margin) or np.any(piece.bounds[1] < lo - margin):
        return [piece]
    normals = np.round(region.face_normals, 9)
    offsets = np.einsum("ij,ij->i", region.face_normals, region.triangles_center) + margin
    _, first = np.unique(np.column_stack([normals, np.round(offsets, 9)]), axis=0, return_index=True)
    out, remaining = [], piece
    for n, d in zip(region.face_normals[first], offsets[first]):
        outside = remaining.slice_plane(n * d, n, cap=True)  # n . x >= d: clear of the region
        if outside is not None and len(outside.faces) >= 4:
            hull = outside.convex_hull
            if hull.is_watertight and hull.bounding_box_oriented.extents.min() > _MIN_PIECE_THICKNESS_M:
                out.append(hull)
        remaining = remaining.slice_plane(n * d, -n, cap=True)
        if remaining is None or len(remaining.faces) == 0:
            break
    return out


def _is_convex(cfg: Config, solid) -> bool:
    return solid.convex_hull.volume <= solid.volume * (1.0 + cfg.convex_tolerance)


def _coacd(cfg: Config, solid, threshold: float) -> list:
    """CoACD convex hulls of a closed solid."""
    import coacd
    import trimesh

    coacd.set_log_level("error")
    parts = coacd.run_coacd(
        coacd.Mesh(solid.vertices, solid.faces),
        threshold=threshold,
        max_convex_hull=cfg.coacd_max_hulls,
        preprocess_mode="off",
        resolution=cfg.coacd_resolution,
        mcts_iterations=cfg.coacd_mcts_iterations,
        mcts_max_depth=cfg.coacd_mcts_depth,
        mcts_nodes=cfg.coacd_mcts_nodes,
        seed=cfg.coacd_seed,
    )
    pieces = [trimesh.Trimesh(v, f, process=True) for v, f in parts]
    return [p.convex_hull for p in pieces if len(p.vertices) >= 4 and p.volume > 0]


def _intrusion(piece, points: np.ndarray) -> float:
    """Deepest of ``points`` inside the convex ``piece``, metres (0 when none is inside)."""
    lo, hi = piece.bounds
    near = np.all((points > lo) & (points < hi), axis=1)
    if not near.any():
        return 0.0
    # Inside a convex hull, the depth is the smallest distance to its face planes.
    normals, offsets = piece.face_normals, np.einsum("ij,ij->i", piece.face_normals, piece.triangles_center)
    depth = (offsets[None, :] - points[near] @ normals.T).min(axis=1)  # (n,) > 0 inside
    return float(max(depth.max(), 0.0))


def _check_round_trip(urdf_path: Path, robot) -> None:
    """Reload the written URDF with yourdfpy; it must validate and equal ``robot``."""
    import dataclasses

    import yourdfpy

    loaded = yourdfpy.URDF.load(str(urdf_path), build_scene_graph=False, load_meshes=False)
    if not loaded.validate(validation_fn=lambda errors: not errors):
        raise RuntimeError(f"{urdf_path.name}: yourdfpy finds errors in the written URDF: {loaded.errors}")
    # yourdfpy 0.0.60 parses <dynamics> attributes as strings and compares <limit> exactly;
    # compare both as numbers (the URDF holds URDF_DIGITS significant digits).
    joints = []
    built = {j.name: j for j in robot.joints}
    for j in loaded.robot.joints:
        if j.dynamics is not None:
            j = dataclasses.replace(
                j, dynamics=yourdfpy.Dynamics(damping=float(j.dynamics.damping), friction=float(j.dynamics.friction))
            )
        ref = built.get(j.name)
        if j.limit is not None and ref is not None and ref.limit is not None:
            a = [j.limit.lower, j.limit.upper, j.limit.effort, j.limit.velocity]
            b = [ref.limit.lower, ref.limit.upper, ref.limit.effort, ref.limit.velocity]
            if np.allclose(np.array(a, dtype=float), np.array(b, dtype=float), rtol=1e-8, atol=1e-12):
                j = dataclasses.replace(j, limit=ref.limit)
        joints.append(j)
    if dataclasses.replace(loaded.robot, joints=joints) != robot:
        raise RuntimeError(f"{urdf_path.name}: the written URDF does not read back as the model that was built")
