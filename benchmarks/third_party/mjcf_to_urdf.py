"""Convert an articulated MJCF model into a ground-truth URDF package, checked against MuJoCo.

Conversion (``mjcf_articulation``): the model is compiled by MuJoCo; every body carrying a hinge
or slide joint becomes a link (its child frame is the body frame moved to the joint's anchor);
bodies without a joint are merged into their parent's link, and the world body's own geoms
(floor, walls of a scene) are dropped, so the object's root is fixed ("base"). Subtrees holding a
free or ball joint are dropped (a loose object, not an articulation). Visual geoms are those
MuJoCo draws by default (groups 0-2, alpha > 0): compiled meshes and primitives, each coloured by
its rgba, its material's rgba, or its material texture's mean colour. Limits are ``jnt_range``
relative to the rest pose (``qpos0`` clipped into the range); an unlimited hinge gets
[-pi, pi] (revolute), an unlimited slide +/- the object's largest dimension.

The package (``write_articulation_package``) is re-expressed in the repository's base frame
(DESIGN.md): z up, origin at the bottom centre of the rest bounding box, +x toward ``front_yaw``.
Every link frame is parallel to the base frame at rest, so joint origins are translations and
axes are base-frame axes (as ``stages.urdf_package.template.write_package`` writes them).

Check (``fk_mismatch``): at random joint values each link's pose from yourdfpy's forward
kinematics of the written URDF is compared with MuJoCo's (``mj_kinematics``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger("third_party.mjcf")

#: Geom groups MuJoCo renders by default (its visual geoms; collision geoms sit in higher groups).
VISUAL_GROUPS = (0, 1, 2)
#: Forward-kinematics tolerance of the check: metres and radians.
FK_TOL_M = 1e-6
FK_TOL_RAD = 1e-6


@dataclass
class Articulation:
    """An MJCF model as links and joints in MuJoCo's world frame at rest.

    Attributes
    ----------
    links : dict of str to trimesh.Trimesh
      Per link (``"base"`` first), its visual mesh in the world frame at rest, metres, face colours.
    joints : list of dict
      ``name``, ``type`` ("revolute" | "prismatic"), ``parent``, ``child``, ``anchor`` ((3,) world
      point on the axis, the child link's frame origin), ``axis`` ((3,) unit, world), ``lower``,
      ``upper`` (rad or m from rest), ``mj_joint`` (MuJoCo joint id), ``qpos_rest``.
    link_body : dict of str to int
      Per link, the MuJoCo body whose frame it moves with (0 = world for ``"base"``).
    body_rest : dict of str to (4, 4) float
      Per link, that body's world pose at rest.
    dropped : list of str
      What was left out, with reasons.
    """

    links: dict
    joints: list
    link_body: dict
    body_rest: dict
    dropped: list = field(default_factory=list)


def load_model(xml: Path, angle_radian: bool = False):
    """Compile an MJCF object model on its own.

    ``<include>`` of a scene (a path with a ``scene`` folder: table, floor, walls, lights) is
    left out, so only the object and its asset dependencies are compiled; ``angle_radian``
    compiles as ``<compiler angle="radian">`` (the package's own loader's setting). A changed
    model is written beside the original (``_object_<name>``) so its relative paths still hold.
    """
    import mujoco

    xml = Path(xml)
    text = xml.read_text()
    m = re.search(r"<mujoco[^>]*>", text)
    if m is None:
        raise ValueError(f"{xml}: no <mujoco> element; pass an MJCF model file")
    changed = re.sub(r"<include\s+file=\"[^\"]*scene/[^\"]*\"\s*/>", "", text)
    if angle_radian:
        changed = changed[: m.end()] + '\n<compiler angle="radian"/>' + changed[m.end():]
    if changed == text:
        return mujoco.MjModel.from_xml_path(str(xml))
    wrapped = xml.with_name(f"_object_{xml.name}")
    wrapped.write_text(changed)
    return mujoco.MjModel.from_xml_path(str(wrapped))


def _link_name(name: str, used: set) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "link"
    out, k = base, 1
    while out in used or out == "base":
        k += 1
        out = f"{base}_{k}"
    used.add(out)
    return out


def _geom_mesh(model, g: int):
    """Geom ``g``'s surface in its own frame (trimesh), or None for planes and empty geoms."""
    import mujoco
    import trimesh

    t, size = int(model.geom_type[g]), model.geom_size[g]
    G = mujoco.mjtGeom
    if t == G.mjGEOM_MESH:
        k = int(model.geom_dataid[g])
        v0, nv = model.mesh_vertadr[k], model.mesh_vertnum[k]
        f0, nf = model.mesh_faceadr[k], model.mesh_facenum[k]
        return trimesh.Trimesh(model.mesh_vert[v0:v0 + nv].astype(np.float64), model.mesh_face[f0:f0 + nf], process=False)
    if t == G.mjGEOM_BOX:
        return trimesh.creation.box(extents=2 * size)
    if t == G.mjGEOM_SPHERE:
        return trimesh.creation.icosphere(subdivisions=2, radius=size[0])
    if t == G.mjGEOM_ELLIPSOID:
        m = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
        m.apply_scale(size)
        return m
    if t == G.mjGEOM_CYLINDER:
        return trimesh.creation.cylinder(radius=size[0], height=2 * size[1], sections=24)
    if t == G.mjGEOM_CAPSULE:
        return trimesh.creation.capsule(radius=size[0], height=2 * size[1], count=[12, 12])
    return None


def _geom_rgba(model, g: int) -> np.ndarray:
    """(4,) float colour of geom ``g``: its material's texture mean, else material rgba, else geom rgba."""
    mat = int(model.geom_matid[g])
    rgba = model.geom_rgba[g].astype(np.float64).copy()
    if mat < 0:
        return rgba
    rgba = model.mat_rgba[mat].astype(np.float64).copy()
    tex_ids = np.atleast_1d(model.mat_texid[mat])
    tex_ids = tex_ids[tex_ids >= 0]
    if len(tex_ids):
        k = int(tex_ids[0])
        a, n = model.tex_adr[k], model.tex_width[k] * model.tex_height[k] * model.tex_nchannel[k]
        pixels = model.tex_data[a:a + n].reshape(-1, model.tex_nchannel[k])[:, :3]
        rgba[:3] *= pixels.mean(axis=0) / 255.0
    return rgba


def _pose(xpos: np.ndarray, xmat: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = np.asarray(xmat).reshape(3, 3)
    T[:3, 3] = xpos
    return T


def mjcf_articulation(model) -> Articulation:
    """Links (merged bodies) and hinge/slide joints of a compiled model, world frame at rest."""
    import mujoco
    import trimesh

    J = mujoco.mjtJoint
    dropped = []
    # 1. Bodies: which are dropped (free/ball subtrees), which define links
    parent = model.body_parentid
    loose = set()
    for j in range(model.njnt):
        if int(model.jnt_type[j]) in (int(J.mjJNT_FREE), int(J.mjJNT_BALL)):
            loose.add(int(model.jnt_bodyid[j]))
    keep = np.ones(model.nbody, dtype=bool)
    for b in range(1, model.nbody):
        a = b
        while a != 0 and a not in loose:
            a = parent[a]
        keep[b] = a == 0
        if not keep[b] and b in loose:
            dropped.append(f"body {model.body(b).name or b!r}: free or ball joint (a loose object), subtree dropped")
    body_joints = {b: [j for j in range(model.njnt) if model.jnt_bodyid[j] == b] for b in range(model.nbody)}
    for b, js in body_joints.items():
        if keep[b] and len(js) > 1:
            raise ValueError(f"body {model.body(b).name!r} has {len(js)} joints; one joint per body is supported")

    # 2. Rest pose: qpos0 clipped into each limited joint's range
    data = mujoco.MjData(model)
    qpos = model.qpos0.copy()
    for j in range(model.njnt):
        if int(model.jnt_type[j]) in (int(J.mjJNT_HINGE), int(J.mjJNT_SLIDE)) and model.jnt_limited[j]:
            a = model.jnt_qposadr[j]
            qpos[a] = np.clip(qpos[a], *model.jnt_range[j])
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)

    # 3. Links: a body with a joint starts one; the others join their parent's
    link_of_body = {0: "base"}
    link_body, body_rest, joints, used = {"base": 0}, {"base": np.eye(4)}, [], set()
    for b in range(1, model.nbody):  # parents come before children in MuJoCo's body order
        if not keep[b]:
            continue
        if not body_joints[b]:
            link_of_body[b] = link_of_body[parent[b]]
            continue
        j = body_joints[b][0]
        T_body = _pose(data.xpos[b], data.xmat[b])
        anchor = T_body[:3, :3] @ model.jnt_pos[j] + T_body[:3, 3]
        axis = T_body[:3, :3] @ model.jnt_axis[j]
        axis = axis / np.linalg.norm(axis)
        name = _link_name(model.body(b).name or model.joint(j).name or f"body{b}", used)
        link_of_body[b] = name
        link_body[name] = b
        body_rest[name] = T_body
        rest = float(qpos[model.jnt_qposadr[j]])
        jtype = {int(J.mjJNT_HINGE): "revolute", int(J.mjJNT_SLIDE): "prismatic"}[int(model.jnt_type[j])]
        if model.jnt_limited[j]:
            lower, upper = (float(v) - rest for v in model.jnt_range[j])
        else:
            lower, upper = (-np.pi, np.pi) if jtype == "revolute" else (np.nan, np.nan)  # slide: set below
        joints.append(dict(name=f"{name}_joint", type=jtype, parent=link_of_body[parent[b]], child=name,
                           anchor=anchor, axis=axis, lower=lower, upper=upper, mj_joint=j, qpos_rest=rest))

    # 4. Visual geoms into their link, world frame at rest
    parts: dict[str, list] = {name: [] for name in link_body}
    for g in range(model.ngeom):
        b = int(model.geom_bodyid[g])
        if b == 0 or not keep[b] or int(model.geom_group[g]) not in VISUAL_GROUPS:
            continue
        rgba = _geom_rgba(model, g)
        if model.geom_rgba[g][3] <= 0 or rgba[3] <= 0:
            continue
        mesh = _geom_mesh(model, g)
        if mesh is None or len(mesh.faces) == 0:
            continue
        mesh.apply_transform(_pose(data.geom_xpos[g], data.geom_xmat[g]))
        colour = np.round(np.clip(rgba, 0, 1) * 255).astype(np.uint8)
        colour[3] = 255
        mesh.visual = trimesh.visual.ColorVisuals(mesh, face_colors=np.tile(colour, (len(mesh.faces), 1)))
        parts[link_of_body[b]].append(mesh)
    links = {}
    for name, meshes in parts.items():
        if not meshes:
            raise ValueError(f"link {name!r} has no visual geom (groups {VISUAL_GROUPS}, alpha > 0); nothing to photograph")
        links[name] = trimesh.util.concatenate(meshes) if len(meshes) > 1 else meshes[0]
    extent = float(np.ptp(np.concatenate([m.vertices for m in links.values()]), axis=0).max())
    for jd in joints:
        if np.isnan(jd["lower"]):
            jd["lower"], jd["upper"] = -extent, extent
    return Articulation(links=links, joints=joints, link_body=link_body, body_rest=body_rest, dropped=dropped)


def base_transform(art: Articulation, front_yaw: float) -> np.ndarray:
    """(4, 4) float base <- world: a turn about z by ``-front_yaw`` (so world direction
    ``front_yaw`` becomes +x), then the rest bounding box's bottom centre to the origin."""
    c, s = np.cos(-front_yaw), np.sin(-front_yaw)
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    points = np.concatenate([m.vertices for m in art.links.values()]) @ T[:3, :3].T
    lo, hi = points.min(axis=0), points.max(axis=0)
    T[:3, 3] = -np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    return T


def base_frame_specs(art: Articulation, T_base_world: np.ndarray) -> tuple[dict, list]:
    """Link meshes (base frame at rest) and joints (``origin_base``, ``axis_base``) in the base frame."""
    R, t = T_base_world[:3, :3], T_base_world[:3, 3]
    links = {}
    for name, mesh in art.links.items():
        m = mesh.copy()
        m.apply_transform(T_base_world)
        links[name] = m
    joints = [
        {k: v for k, v in j.items() if k not in ("anchor", "axis")}
        | {"origin_base": [float(v) for v in R @ j["anchor"] + t], "axis_base": [float(v) for v in R @ j["axis"]]}
        for j in art.joints
    ]
    return links, joints


def _num(v: float) -> str:
    return repr(float(v))


def urdf_text(name: str, joints: list) -> str:
    """URDF of links ``meshes/visual/<link>.obj`` (link frames parallel to the base frame at rest)."""
    origin = {"base": np.zeros(3)} | {j["child"]: np.asarray(j["origin_base"]) for j in joints}
    lines = [f'<?xml version="1.0"?>', f'<robot name="{name}">']
    for link in origin:
        lines += [f'  <link name="{link}">', "    <visual>", '      <origin xyz="0 0 0" rpy="0 0 0"/>',
                  f'      <geometry><mesh filename="meshes/visual/{link}.obj"/></geometry>', "    </visual>", "  </link>"]
    for j in joints:
        xyz = origin[j["child"]] - origin[j["parent"]]
        lines += [
            f'  <joint name="{j["name"]}" type="{j["type"]}">',
            f'    <parent link="{j["parent"]}"/>', f'    <child link="{j["child"]}"/>',
            f'    <origin xyz="{" ".join(map(_num, xyz))}" rpy="0 0 0"/>',
            f'    <axis xyz="{" ".join(map(_num, j["axis_base"]))}"/>',
            f'    <limit lower="{_num(j["lower"])}" upper="{_num(j["upper"])}" effort="10" velocity="1"/>',
            "  </joint>",
        ]
    return "\n".join(lines + ["</robot>", ""])


def write_articulation_package(out_dir: Path, name: str, links: dict, joints: list, extra: dict | None = None) -> Path:
    """Write ``out_dir/<name>/`` (URDF, visual OBJs in link frames, package.json without camera).

    ``links``: base-frame meshes at rest; ``joints``: base-frame joints (``base_frame_specs``).
    ``extra``: more package.json keys. Returns the package folder. Atomic (built aside, renamed).
    """
    from stages._shared.io import atomic_dir, write_bytes, write_json, write_textured_obj
    from stages.urdf_package.template import _textured  # colours -> palette texture, as the pipeline writes

    origin = {"base": np.zeros(3)} | {j["child"]: np.asarray(j["origin_base"]) for j in joints}
    with atomic_dir(Path(out_dir) / name) as tmp:
        for link, mesh in links.items():
            m = _textured(mesh)
            m.apply_translation(-origin[link])
            write_textured_obj(tmp / "meshes" / "visual" / f"{link}.obj", m)
        write_bytes(tmp / f"{name}.urdf", urdf_text(name, joints).encode())
        entries = [
            {k: j[k] for k in ("name", "type", "parent", "child", "axis_base", "origin_base", "lower", "upper")}
            | {"mask": None} for j in joints
        ]
        write_json(tmp / "package.json", {
            "name": name, "version": "third-party ground truth", "source": None, "scale_m": None, "camera": None,
            "joints": entries,
            "links": [{"name": n, "visual": f"meshes/visual/{n}.obj", "frame_origin_base": origin[n]} for n in links],
            "validation": None,
        } | dict(extra or {}))
    return Path(out_dir) / name


def fk_mismatch(model, art: Articulation, T_base_world: np.ndarray, urdf_path: Path, joints: list,
                n_samples: int = 8, seed: int = 0) -> tuple[float, float]:
    """Largest link-pose difference between the URDF's forward kinematics and MuJoCo's.

    At ``n_samples`` random joint values within the limits (rad or m from rest), each link's pose
    in the base frame from yourdfpy (the written URDF) is compared with the link's rest pose
    (``origin_base``, frame parallel to the base) moved as MuJoCo's ``mj_kinematics`` moves its
    body from rest, mapped into the base frame by ``T_base_world``.

    Returns
    -------
    position_error_m, rotation_error_rad : float
      The largest over samples and links.
    """
    import mujoco
    import yourdfpy

    urdf = yourdfpy.URDF.load(str(urdf_path), build_scene_graph=True, load_meshes=False, build_collision_scene_graph=False)
    by_name = {j["name"]: j for j in joints}
    origin = {"base": np.zeros(3)} | {j["child"]: np.asarray(j["origin_base"]) for j in joints}
    rng = np.random.default_rng(seed)
    data = mujoco.MjData(model)
    dp, dr = 0.0, 0.0
    for _ in range(n_samples):
        q = {n: float(rng.uniform(by_name[n]["lower"], by_name[n]["upper"])) for n in urdf.actuated_joint_names}
        urdf.update_cfg(np.array([q[n] for n in urdf.actuated_joint_names]))
        qpos = model.qpos0.copy()
        for j in art.joints:  # rest pose, then each joint moved by its value from rest
            qpos[model.jnt_qposadr[j["mj_joint"]]] = j["qpos_rest"] + q.get(j["name"], 0.0)
        data.qpos[:] = qpos
        mujoco.mj_kinematics(model, data)
        for link, b in art.link_body.items():
            T_rest = np.eye(4)
            T_rest[:3, 3] = origin[link]
            moved = _pose(data.xpos[b], data.xmat[b]) @ np.linalg.inv(art.body_rest[link])  # world, rest -> q
            T_mj = T_base_world @ moved @ np.linalg.inv(T_base_world) @ T_rest
            T_ur = urdf.get_transform(link, urdf.base_link)
            dp = max(dp, float(np.linalg.norm(T_mj[:3, 3] - T_ur[:3, 3])))
            cos = (np.trace(T_mj[:3, :3].T @ T_ur[:3, :3]) - 1) / 2
            dr = max(dr, float(np.arccos(np.clip(cos, -1.0, 1.0))))
    return dp, dr


#: Candidate fronts (world yaw of the +x base axis, degrees) and the probe view that scores them.
FRONT_YAWS_DEG = (0.0, 90.0, 180.0, 270.0)
PROBE_PX, PROBE_ELEVATION_DEG, PROBE_FOV_DEG = 96, 20.0, 40.0


def front_yaw(art: Articulation) -> tuple[float, dict]:
    """World yaw (rad) of the side from which the moving parts are best seen, and the scores.

    For each of ``FRONT_YAWS_DEG``, a small probe render from that side (elevation
    ``PROBE_ELEVATION_DEG``) counts the moving parts' visible pixels at rest and with each joint
    at its limit of larger magnitude; the side with the most wins (ties: the first).
    """
    from synth.render import framed_camera, render_meshes

    names = list(art.links)
    child_of = {j["child"]: j for j in art.joints}
    scores = {}
    for yaw_deg in FRONT_YAWS_DEG:
        T = base_transform(art, np.deg2rad(yaw_deg))
        links, joints = base_frame_specs(art, T)
        points = np.concatenate([m.vertices for m in links.values()])
        cam = framed_camera(points, 0.0, np.deg2rad(PROBE_ELEVATION_DEG), np.deg2rad(PROBE_FOV_DEG), 0.8,
                            PROBE_PX, PROBE_PX)
        total = 0
        for moved in [None] + [j["name"] for j in joints]:
            meshes = [_moved(links, joints, n, moved) for n in names]
            view = render_meshes(cam, meshes, list(range(len(names))), names[1:], supersample=1)
            total += int(sum(m.sum() for m in view.part_masks.values()))
        scores[yaw_deg] = total
    best = max(FRONT_YAWS_DEG, key=lambda y: (scores[y], -FRONT_YAWS_DEG.index(y)))
    return float(np.deg2rad(best)), scores


def _moved(links: dict, joints: list, link: str, joint: str | None):
    """``links[link]`` with joint ``joint`` at its limit of larger magnitude (the link if it moves with it)."""
    import trimesh

    mesh = links[link]
    if joint is None:
        return mesh
    by_child = {j["child"]: j for j in joints}
    chain, name = [], link
    while name in by_child:  # joints from the link up to the root
        chain.append(by_child[name])
        name = by_child[name]["parent"]
    j = next((c for c in chain if c["name"] == joint), None)
    if j is None:
        return mesh
    value = j["upper"] if abs(j["upper"]) >= abs(j["lower"]) else j["lower"]
    axis, origin = np.asarray(j["axis_base"]), np.asarray(j["origin_base"])
    if j["type"] == "revolute":
        T = trimesh.transformations.rotation_matrix(value, axis, origin)
    else:
        T = trimesh.transformations.translation_matrix(value * axis)
    out = mesh.copy()
    out.apply_transform(T)
    return out
