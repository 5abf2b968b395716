"""Validate backend "simulators": check a URDF package the way a simulator would use it.

Checks, all collected (none stops the others unless the URDF cannot be read at all):

1. The URDF loads in yourdfpy; names are ``[A-Za-z0-9_]``; every link has a positive mass and a
   valid inertia (symmetric, positive definite, principal moments obeying the triangle
   inequality); every revolute/prismatic joint has a unit axis and limits with lower < upper,
   effort > 0 and velocity > 0; every mesh path is relative, inside the package and exists
   (visual OBJs also with their MTL and texture).
2. PyBullet (DIRECT) loads it with a fixed base and steps it; each movable joint is swept through
   its range and the penetration between the moving link's convex pieces and every other link is
   read with ``getClosestPoints`` (negative distance = penetration).
3. MuJoCo compiles it (a copy with a ``<mujoco><compiler>`` block that resolves the package's
   relative mesh paths), steps it, and sweeps every joint via ``qpos``, reading contact depths
   between the moving body and the others (parent filtering disabled).
4. Exact geometry: over the same sweep, the depth of the moving link's closed visual mesh inside
   the other links' (and back), from the signed distance of surface samples.

Collision pieces are CoACD approximations and PyBullet adds a convex margin, so their penetration
has its own, looser tolerance; the exact-geometry depth is held to ``max_penetration_m``.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stages._shared.io import read_json, write_bytes, write_json
from stages._shared.kinematics import subtree
from stages._shared.solids import closed_solid

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_]+$")
#: A joint axis is unit when its norm is within this of 1.
AXIS_NORM_TOLERANCE = 1e-6
#: Relative slack on the inertia triangle inequality (principal moments from a mesh can be exact).
TRIANGLE_TOLERANCE = 1e-9
#: package.json keys required by DESIGN.md.
PACKAGE_KEYS = ("name", "version", "source", "scale_m", "camera", "joints", "validation")


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["simulators"] = "simulators"
    sweep_steps: int = Field(9, ge=2, description="Joint values tried from lower to upper limit (rest, 0, is added).")
    max_penetration_m: float = Field(
        0.001, ge=0, description="Largest allowed interpenetration of the exact (visual) solids, metres."
    )
    max_collision_penetration_m: float = Field(
        0.005, ge=0, description="Allowed penetration of convex collision pieces in PyBullet/MuJoCo, metres (floor)."
    )
    collision_penetration_fraction: float = Field(
        0.005, ge=0, description="Allowed collision-piece penetration as a fraction of the bbox diagonal (if larger)."
    )
    surface_points: int = Field(1000, ge=10, description="Surface samples (plus vertices) per link for the exact-geometry check.")
    sim_steps: int = Field(240, ge=1, description="Simulation steps run in each simulator from rest.")
    seed: int = Field(0, description="Seed of the surface sampling.")


@dataclass
class _JointReport:
    """Worst penetrations of one movable joint over its sweep, metres (0 = none)."""

    name: str
    child: str
    values: list[float]
    exact_m: float = 0.0
    exact_q: float | None = None
    exact_other: str | None = None
    pybullet_m: float | None = None
    mujoco_m: float | None = None


@dataclass
class _Report:
    issues: list[str] = field(default_factory=list)
    joints: dict[str, _JointReport] = field(default_factory=dict)
    pybullet: bool = False
    mujoco: bool = False
    collision_tolerance_m: float | None = None


def run(cfg: Config, package, out_dir: Path):
    """Validate a package; write ``validation.md`` and package.json ``validation`` into it.

    Parameters
    ----------
    cfg : Config
    package : UrdfPackageResult
    out_dir : Path
      Receives ``validation.json`` and the MuJoCo copy (``mujoco/<name>.urdf`` + compiled ``.xml``).

    Returns
    -------
    ValidationResult
      ``passed`` is False when any issue was found; this function does not raise on failed checks.
    """
    from stages.validate import ValidationResult

    started = time.perf_counter()
    out_dir = Path(out_dir)
    urdf_path = Path(package.urdf)
    package_dir = Path(package.package_dir)
    rep = _Report()

    # 1. Static checks
    urdf = _load_urdf(urdf_path, rep)
    files_ok = False
    if urdf is not None:
        _check_names(urdf.robot, rep)
        _check_inertials(urdf.robot, rep)
        _check_joints(urdf.robot, rep)
        files_ok = _check_meshes(urdf.robot, package_dir, urdf_path.parent, rep)
    summary = _check_package_json(Path(package.package_json), rep)

    # 2-4. Sweeps in PyBullet, MuJoCo and on the exact geometry
    if urdf is not None and not files_ok:
        rep.issues.append("simulators: not run, the package's mesh files are broken (see above)")
    elif urdf is not None:
        _prepare_sweeps(cfg, urdf, rep)
        solids = _link_solids(urdf, urdf_path.parent, rep)
        collision_tol = cfg.max_collision_penetration_m
        if solids:
            collision_tol = max(collision_tol, cfg.collision_penetration_fraction * _diagonal(urdf, solids))
        rep.collision_tolerance_m = collision_tol
        _pybullet(cfg, urdf, urdf_path, rep, collision_tol)
        _mujoco(cfg, urdf_path, out_dir, rep, collision_tol)
        if solids:
            _exact(cfg, urdf, solids, rep)

    # 5. Report
    max_pen = max([j.exact_m for j in rep.joints.values()], default=0.0)
    passed = not rep.issues
    block = {
        "passed": passed,
        "pybullet": rep.pybullet,
        "mujoco": rep.mujoco,
        "max_penetration_m": max_pen,
        "collision_penetration_m": {
            "pybullet": max([j.pybullet_m or 0.0 for j in rep.joints.values()], default=0.0),
            "mujoco": max([j.mujoco_m or 0.0 for j in rep.joints.values()], default=0.0),
        },
        "tolerances": {
            "max_penetration_m": cfg.max_penetration_m,
            "max_collision_penetration_m": rep.collision_tolerance_m,
        },
        "joints": {
            j.name: {
                "child": j.child,
                "sweep": j.values,
                "exact_penetration_m": j.exact_m,
                "exact_worst_q": j.exact_q,
                "exact_worst_against": j.exact_other,
                "pybullet_penetration_m": j.pybullet_m,
                "mujoco_penetration_m": j.mujoco_m,
            }
            for j in rep.joints.values()
        },
        "issues": list(rep.issues),
    }
    report = write_bytes(package_dir / "validation.md", _markdown(package.name, block).encode())
    if summary is not None:
        summary["validation"] = block
        write_json(Path(package.package_json), summary)
    write_json(out_dir / "validation.json", block)
    log.info(
        "validate: %s %s, pybullet %s, mujoco %s, max penetration %.2g m, %d issues, %.1f s",
        package.name,
        "passed" if passed else "FAILED",
        rep.pybullet,
        rep.mujoco,
        max_pen,
        len(rep.issues),
        time.perf_counter() - started,
    )
    return ValidationResult(
        passed=passed,
        pybullet=rep.pybullet,
        mujoco=rep.mujoco,
        max_penetration_m=max_pen,
        issues=tuple(rep.issues),
        report=report,
    )


# ---------------------------------------------------------------------------------------------
# 1. Static checks


def _load_urdf(urdf_path: Path, rep: _Report):
    """The yourdfpy URDF (scene graph, no meshes), or None with an issue."""
    import yourdfpy
    from lxml import etree

    if not urdf_path.is_file():
        rep.issues.append(f"urdf '{urdf_path.name}': file not found")
        return None
    try:  # yourdfpy recovers from broken XML silently; simulators do not
        etree.parse(str(urdf_path), etree.XMLParser(recover=False))
    except etree.XMLSyntaxError as exc:
        rep.issues.append(f"urdf '{urdf_path.name}': not well-formed XML: {exc}")
        return None
    try:
        return yourdfpy.URDF.load(str(urdf_path), build_scene_graph=True, load_meshes=False)
    except (etree.XMLSyntaxError, yourdfpy.URDFError, ValueError, KeyError, TypeError) as exc:
        rep.issues.append(f"urdf '{urdf_path.name}': yourdfpy cannot load it: {type(exc).__name__}: {exc}")
        return None


def _check_names(robot, rep: _Report) -> None:
    for kind, names in (("robot", [robot.name]), ("link", [x.name for x in robot.links]), ("joint", [x.name for x in robot.joints])):
        for n in names:
            if not n or not _NAME.match(n):
                rep.issues.append(f"{kind} '{n}': name must match [A-Za-z0-9_]+")


def _check_inertials(robot, rep: _Report) -> None:
    for link in robot.links:
        where = f"link '{link.name}'"
        inertial = link.inertial
        if inertial is None:
            rep.issues.append(f"{where}: no <inertial>")
            continue
        if inertial.mass is None or not np.isfinite(inertial.mass) or inertial.mass <= 0:
            rep.issues.append(f"{where}: mass {inertial.mass} (must be > 0 kg)")
        inertia = inertial.inertia
        if inertia is None:
            rep.issues.append(f"{where}: no <inertia>")
            continue
        inertia = np.asarray(inertia, dtype=np.float64)
        if not np.all(np.isfinite(inertia)):
            rep.issues.append(f"{where}: inertia has non-finite entries")
            continue
        if not np.allclose(inertia, inertia.T):
            rep.issues.append(f"{where}: inertia is not symmetric")
        moments = np.linalg.eigvalsh(0.5 * (inertia + inertia.T))
        if moments.min() <= 0:
            rep.issues.append(f"{where}: inertia not positive definite (principal moments {_fmt(moments)} kg*m^2)")
        elif moments[0] + moments[1] < moments[2] * (1.0 - TRIANGLE_TOLERANCE):
            rep.issues.append(
                f"{where}: inertia principal moments {_fmt(moments)} kg*m^2 violate the triangle inequality"
            )


def _check_joints(robot, rep: _Report) -> None:
    for joint in robot.joints:
        where = f"joint '{joint.name}'"
        if joint.type not in ("revolute", "prismatic"):
            continue
        axis = np.asarray(joint.axis, dtype=np.float64)
        if axis.shape != (3,) or not np.all(np.isfinite(axis)) or abs(np.linalg.norm(axis) - 1.0) > AXIS_NORM_TOLERANCE:
            rep.issues.append(f"{where}: <axis> {_fmt(axis)} is not a unit vector")
        limit = joint.limit
        if limit is None:
            rep.issues.append(f"{where}: no <limit> (a {joint.type} joint needs lower, upper, effort, velocity)")
            continue
        for attr in ("lower", "upper", "effort", "velocity"):
            if getattr(limit, attr) is None:
                rep.issues.append(f"{where}: <limit> has no '{attr}'")
        if limit.lower is not None and limit.upper is not None:
            if not (np.isfinite(limit.lower) and np.isfinite(limit.upper)):
                rep.issues.append(f"{where}: <limit> lower {limit.lower} / upper {limit.upper} must be finite")
            elif limit.lower > limit.upper:
                rep.issues.append(f"{where}: <limit> lower {limit.lower:g} > upper {limit.upper:g}")
            elif limit.lower == limit.upper:
                rep.issues.append(f"{where}: <limit> lower {limit.lower:g} = upper {limit.upper:g}, the joint cannot move")
        for attr in ("effort", "velocity"):
            value = getattr(limit, attr)
            if value is not None and not value > 0:
                rep.issues.append(f"{where}: <limit> {attr} {value:g} (must be > 0)")


def _check_meshes(robot, package_dir: Path, urdf_dir: Path, rep: _Report) -> bool:
    """Mesh paths: relative, inside the package, existing; visual OBJs with their MTL and texture.

    Returns whether every mesh file can be read (a missing texture alone does not stop loading).
    """
    root = package_dir.resolve()
    readable = True
    for link in robot.links:
        elements = [("visual", v) for v in link.visuals] + [("collision", c) for c in link.collisions]
        if not link.collisions and link.inertial is not None:
            rep.issues.append(f"link '{link.name}': no <collision> geometry")
        for kind, element in elements:
            mesh = element.geometry.mesh if element.geometry is not None else None
            if mesh is None:
                continue
            where = f"link '{link.name}': {kind} mesh '{mesh.filename}'"
            name = mesh.filename
            if "://" in name or PurePosixPath(name).is_absolute():
                rep.issues.append(f"{where}: path must be relative to the URDF")
                readable = readable and Path(name).is_file()
                continue
            path = (urdf_dir / name).resolve()
            if root not in path.parents:
                rep.issues.append(f"{where}: path leaves the package folder")
            if not path.is_file():
                rep.issues.append(f"{where}: file not found")
                readable = False
            elif kind == "visual" and path.suffix.lower() == ".obj":
                _check_obj_material(where, path, rep)
    return readable


def _check_obj_material(where: str, obj: Path, rep: _Report) -> None:
    """The OBJ names an MTL that exists, whose texture maps exist (all relative)."""
    mtllibs = re.findall(r"^mtllib\s+(.+?)\s*$", obj.read_text(errors="replace"), flags=re.M)
    if not mtllibs:
        rep.issues.append(f"{where}: no 'mtllib' (visual OBJs carry an MTL and a PNG texture)")
    for lib in mtllibs:
        mtl = obj.parent / lib
        if PurePosixPath(lib).is_absolute() or not mtl.is_file():
            rep.issues.append(f"{where}: material library '{lib}' not found next to it")
            continue
        maps = re.findall(r"^\s*map_Kd\s+(?:-\S+\s+\S+\s+)*(.+?)\s*$", mtl.read_text(errors="replace"), flags=re.M)
        if not maps:
            rep.issues.append(f"{where}: '{lib}' has no map_Kd texture")
        for tex in maps:
            if PurePosixPath(tex).is_absolute() or not (mtl.parent / tex).is_file():
                rep.issues.append(f"{where}: texture '{tex}' named in '{lib}' not found")


def _check_package_json(path: Path, rep: _Report) -> dict | None:
    import json

    if not path.is_file():
        rep.issues.append(f"package.json: not found at {path.name}")
        return None
    try:
        summary = read_json(path)
    except json.JSONDecodeError as exc:
        rep.issues.append(f"package.json: not valid JSON ({exc})")
        return None
    missing = [k for k in PACKAGE_KEYS if k not in summary]
    if missing:
        rep.issues.append(f"package.json: missing keys {missing}")
    return summary


def _diagonal(urdf, solids: dict) -> float:
    """Bounding-box diagonal of all link solids at rest, base frame, metres."""
    import trimesh

    urdf.update_cfg({j.name: 0.0 for j in _movable(urdf)})
    corners = np.concatenate(
        [
            trimesh.transform_points(
                trimesh.bounds.corners(s.bounds), urdf.get_transform(frame_to=n, frame_from=urdf.base_link)
            )
            for n, s in solids.items()
        ]
    )
    return float(np.linalg.norm(corners.max(axis=0) - corners.min(axis=0)))


# ---------------------------------------------------------------------------------------------
# 2-4. Sweeps


def _movable(urdf) -> list:
    return [j for j in urdf.robot.joints if j.type in ("revolute", "prismatic")]


def _prepare_sweeps(cfg: Config, urdf, rep: _Report) -> None:
    """The joint values to try: ``sweep_steps`` across the limits, plus rest (0)."""
    for joint in _movable(urdf):
        limit = joint.limit
        if limit is None or limit.lower is None or limit.upper is None or not limit.lower <= limit.upper:
            values = [0.0]
        else:
            values = sorted(set(np.linspace(limit.lower, limit.upper, cfg.sweep_steps).tolist()) | {0.0})
        rep.joints[joint.name] = _JointReport(name=joint.name, child=joint.child, values=values)


def _pybullet(cfg: Config, urdf, urdf_path: Path, rep: _Report, tolerance: float) -> None:
    """Load, step and sweep in PyBullet; record per-joint collision-piece penetration."""
    import pybullet as p

    client = p.connect(p.DIRECT)
    try:
        try:
            body = p.loadURDF(
                str(urdf_path), useFixedBase=True, flags=p.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client
            )
        except p.error as exc:
            rep.issues.append(f"pybullet: loadURDF failed: {' '.join(str(exc).split())}")
            return
        index = {}  # link name -> pybullet link index (-1 is the base)
        joint_index = {}
        base_name = p.getBodyInfo(body, physicsClientId=client)[0].decode()
        index[base_name] = -1
        for i in range(p.getNumJoints(body, physicsClientId=client)):
            info = p.getJointInfo(body, i, physicsClientId=client)
            joint_index[info[1].decode()] = i
            index[info[12].decode()] = i

        p.setGravity(0, 0, -9.81, physicsClientId=client)
        for _ in range(cfg.sim_steps):
            p.stepSimulation(physicsClientId=client)
        states = [p.getJointState(body, i, physicsClientId=client)[0] for i in joint_index.values()]
        if not np.all(np.isfinite(states)):
            rep.issues.append("pybullet: joint positions became non-finite while stepping from rest")
            return
        rep.pybullet = True

        for name, jr in rep.joints.items():
            if name not in joint_index:
                rep.issues.append(f"joint '{name}': missing in PyBullet's model")
                continue
            moving = {index[link] for link in subtree(urdf.robot.joints, jr.child) if link in index}
            others = [i for i in index.values() if i not in moving]
            worst = 0.0
            for q in jr.values:
                for i in joint_index.values():
                    p.resetJointState(body, i, 0.0, physicsClientId=client)
                p.resetJointState(body, joint_index[name], q, physicsClientId=client)
                for a in moving:
                    for b in others:
                        contacts = p.getClosestPoints(
                            body, body, distance=0.0, linkIndexA=a, linkIndexB=b, physicsClientId=client
                        )
                        depth = max([-c[8] for c in contacts], default=0.0)
                        worst = max(worst, depth)
            jr.pybullet_m = worst
            if worst > tolerance:
                rep.issues.append(
                    f"joint '{name}': collision pieces of '{jr.child}' penetrate the others by {worst:.4f} m in "
                    f"PyBullet (tolerance {tolerance:.4f} m)"
                )
    finally:
        p.disconnect(physicsClientId=client)


def _mujoco(cfg: Config, urdf_path: Path, out_dir: Path, rep: _Report, tolerance: float) -> None:
    """Compile, step and sweep in MuJoCo; record per-joint collision-piece penetration."""
    import mujoco

    copy = _mujoco_copy(urdf_path, out_dir / "mujoco")
    try:
        model = mujoco.MjModel.from_xml_path(str(copy))
    except ValueError as exc:
        rep.issues.append(f"mujoco: cannot compile the URDF: {' '.join(str(exc).split())}")
        return
    mujoco.mj_saveLastXML(str(copy.with_suffix(".xml")), model)
    data = mujoco.MjData(model)
    for _ in range(cfg.sim_steps):
        mujoco.mj_step(model, data)
    if not np.all(np.isfinite(data.qpos)) or data.warning[mujoco.mjtWarning.mjWARN_BADQACC].number > 0:
        rep.issues.append("mujoco: the simulation became unstable while stepping from rest")
        return
    rep.mujoco = True

    # Contacts between a body and its parent are filtered by default; the base is every part's parent.
    model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_FILTERPARENT
    for name, jr in rep.joints.items():
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if jid < 0:
            rep.issues.append(f"joint '{name}': missing in MuJoCo's model")
            continue
        moving_root = model.jnt_bodyid[jid]
        moving = {b for b in range(model.nbody) if _is_descendant(model, b, moving_root)}
        worst = 0.0
        for q in jr.values:
            mujoco.mj_resetData(model, data)
            data.qpos[model.jnt_qposadr[jid]] = q
            mujoco.mj_forward(model, data)
            contacts = data.contact[: data.ncon]
            b1 = model.geom_bodyid[contacts.geom1]
            b2 = model.geom_bodyid[contacts.geom2]
            across = np.isin(b1, list(moving)) != np.isin(b2, list(moving))
            if across.any():
                worst = max(worst, float(np.max(-contacts.dist[across])))
        jr.mujoco_m = max(worst, 0.0)
        if worst > tolerance:
            rep.issues.append(
                f"joint '{name}': collision pieces of '{jr.child}' penetrate the others by {worst:.4f} m in "
                f"MuJoCo (tolerance {tolerance:.4f} m)"
            )


def _is_descendant(model, body: int, root: int) -> bool:
    while body != 0:
        if body == root:
            return True
        body = model.body_parentid[body]
    return root == 0


def _mujoco_copy(urdf_path: Path, folder: Path) -> Path:
    """A copy of the URDF whose ``<mujoco><compiler>`` resolves the package's relative mesh paths
    (meshdir = the URDF's folder, paths kept whole) and keeps visual meshes as non-colliding geoms."""
    from lxml import etree

    tree = etree.parse(str(urdf_path))
    robot = tree.getroot()
    for old in robot.findall("mujoco"):
        robot.remove(old)
    ext = etree.SubElement(robot, "mujoco")
    etree.SubElement(
        ext,
        "compiler",
        attrib={"meshdir": str(urdf_path.parent.resolve()), "strippath": "false", "discardvisual": "false"},
    )
    return write_bytes(folder / urdf_path.name, etree.tostring(tree, xml_declaration=True, encoding="utf-8"))


def _link_solids(urdf, urdf_dir: Path, rep: _Report) -> dict | None:
    """Each link's closed visual mesh in its link frame (vertices merged), or None with an issue."""
    import trimesh

    solids = {}
    for link in urdf.robot.links:
        meshes = []
        for visual in link.visuals:
            if visual.geometry is None or visual.geometry.mesh is None:
                continue
            loaded = trimesh.load(urdf_dir / visual.geometry.mesh.filename, force="mesh", process=False)
            origin = visual.origin if visual.origin is not None else np.eye(4)
            scale = visual.geometry.mesh.scale
            mesh = trimesh.Trimesh(loaded.vertices, loaded.faces, process=False)
            if scale is not None:
                mesh.apply_scale(scale)
            mesh.apply_transform(origin)
            meshes.append(mesh)
        if not meshes:
            continue
        try:
            solid = closed_solid(trimesh.util.concatenate(meshes), f"link '{link.name}': visual mesh")
        except ValueError as exc:
            rep.issues.append(f"{exc}; the exact-geometry penetration check cannot run")
            return None
        solids[link.name] = solid
    return solids


def _exact(cfg: Config, urdf, solids: dict, rep: _Report) -> None:
    """Deepest interpenetration of the exact solids over every joint sweep, metres."""
    from stages._shared.contact import contact_points, interpenetration

    rng = np.random.default_rng(cfg.seed)
    points = {n: contact_points(s, cfg.surface_points, seed=int(rng.integers(1 << 31))) for n, s in solids.items()}
    for jr in rep.joints.values():
        moving = [n for n in subtree(urdf.robot.joints, jr.child) if n in solids]
        static = [n for n in solids if n not in moving]
        for q in jr.values:
            cfg_values = {j.name: 0.0 for j in _movable(urdf)}
            cfg_values[jr.name] = q
            urdf.update_cfg(cfg_values)
            pose = {n: urdf.get_transform(frame_to=n, frame_from=urdf.base_link) for n in solids}  # T_base_link
            for a in moving:
                for b in static:
                    T_b_a = np.linalg.inv(pose[b]) @ pose[a]
                    depth = interpenetration(solids[a], points[a], solids[b], points[b], T_b_a)
                    if depth > jr.exact_m:
                        jr.exact_m, jr.exact_q, jr.exact_other = depth, q, b
        urdf.update_cfg({j.name: 0.0 for j in _movable(urdf)})
        if jr.exact_m > cfg.max_penetration_m:
            rep.issues.append(
                f"joint '{jr.name}': '{jr.child}' passes {jr.exact_m:.4f} m into '{jr.exact_other}' at "
                f"q = {jr.exact_q:.3f} (exact geometry, tolerance {cfg.max_penetration_m:.4f} m)"
            )


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in np.asarray(values).ravel()) + "]"


def _markdown(name: str, block: dict) -> str:
    def metres(value) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    tol = block["tolerances"]
    lines = [
        f"# Validation of `{name}`",
        "",
        f"**{'PASSED' if block['passed'] else 'FAILED'}** — PyBullet: {'loads' if block['pybullet'] else 'fails'}, "
        f"MuJoCo: {'loads' if block['mujoco'] else 'fails'}, deepest exact-geometry penetration "
        f"{metres(block['max_penetration_m'])} m (tolerance {metres(tol['max_penetration_m'])} m); "
        f"collision pieces: PyBullet {metres(block['collision_penetration_m']['pybullet'])} m, MuJoCo "
        f"{metres(block['collision_penetration_m']['mujoco'])} m (tolerance "
        f"{metres(tol['max_collision_penetration_m'])} m).",
        "",
        "| joint | child | sweep | exact (m) | worst q | PyBullet (m) | MuJoCo (m) |",
        "|---|---|---|---|---|---|---|",
    ]
    for jname, j in block["joints"].items():
        sweep = f"{min(j['sweep']):.3f} … {max(j['sweep']):.3f} ({len(j['sweep'])})"
        worst = "" if j["exact_worst_q"] is None else f"{j['exact_worst_q']:.3f}"
        lines.append(
            f"| {jname} | {j['child']} | {sweep} | {metres(j['exact_penetration_m'])} | {worst} "
            f"| {metres(j['pybullet_penetration_m'])} | {metres(j['mujoco_penetration_m'])} |"
        )
    lines += ["", "## Issues", ""]
    lines += [f"- {issue}" for issue in block["issues"]] or ["None."]
    return "\n".join(lines) + "\n"
