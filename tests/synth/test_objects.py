"""Procedural objects: watertight coloured meshes, base-frame convention, collision-free joints."""

import re

import numpy as np
import pytest
import trimesh
from manifold3d import Manifold, Mesh

from synth.objects import CATEGORIES, SynthPart, make_object

SEEDS = (0, 1)
#: Largest base/part intersection volume accepted as "no interpenetration", m^3.
MAX_OVERLAP_M3 = 1e-7
#: Joint values checked per part, evenly spaced over [lower, upper] (rest 0 is checked too).
N_POSES = 5


def _manifold(mesh: trimesh.Trimesh) -> Manifold:
    return Manifold(Mesh(vert_properties=np.asarray(mesh.vertices, np.float32), tri_verts=np.asarray(mesh.faces, np.uint32)))


def _overlap(a: trimesh.Trimesh, b: trimesh.Trimesh) -> float:
    return (_manifold(a) ^ _manifold(b)).volume()


@pytest.fixture(scope="module", params=[(c, s) for c in CATEGORIES for s in SEEDS], ids=lambda p: f"{p[0]}-{p[1]}")
def obj(request):
    return make_object(*request.param)


def test_at_least_ten_categories():
    assert len(CATEGORIES) >= 10
    assert {"cabinet", "drawer_unit", "microwave", "laptop", "box_lid"} <= set(CATEGORIES)


def test_meshes_are_watertight_and_coloured(obj):
    assert len(obj.parts) >= 1
    for mesh in [obj.base] + [p.mesh for p in obj.parts]:
        assert mesh.is_watertight and mesh.is_winding_consistent
        assert mesh.volume > 1e-6
        assert mesh.visual.face_colors.shape == (len(mesh.faces), 4)
        assert (_manifold(mesh).status().name) == "NoError"


def test_joints_are_well_formed(obj):
    names = [p.name for p in obj.parts]
    assert len(set(names)) == len(names)
    for p in obj.parts:
        assert re.fullmatch(r"[A-Za-z0-9_]+", p.name)
        assert p.joint_type in ("revolute", "prismatic")
        assert np.isclose(np.linalg.norm(p.axis), 1.0, atol=1e-9)
        assert p.lower <= 0.0 <= p.upper
        assert abs(p.opening_limit) > (0.5 if p.joint_type == "revolute" else 0.05)  # rad or m
    assert [j["name"] for j in obj.joints()] == names
    assert set(obj.joints()[0]) == {"name", "type", "parent", "child", "axis_base", "origin_base", "lower", "upper"}


def test_base_frame_is_bottom_centre_of_bbox(obj):
    lo, hi = obj.bounds
    assert np.allclose([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]], 0.0, atol=1e-9)  # metres
    assert np.all(obj.extents > 0.05) and np.all(obj.extents < 2.5)


def test_no_part_intersects_the_base_through_its_range(obj):
    base = _manifold(obj.base)
    for p in obj.parts:
        for value in np.concatenate([[0.0], np.linspace(p.lower, p.upper, N_POSES)]):
            volume = (base ^ _manifold(p.posed(value))).volume()
            assert volume < MAX_OVERLAP_M3, f"{p.name} at {value:.3f} overlaps the base by {volume:.2e} m^3"


def test_parts_do_not_intersect_each_other_at_rest(obj):
    for i, a in enumerate(obj.parts):
        for b in obj.parts[i + 1 :]:
            assert _overlap(a.mesh, b.mesh) < MAX_OVERLAP_M3, (a.name, b.name)


def test_opening_moves_the_part_forward_or_up(obj):
    """Positive joint values open: a door/drawer moves out of the front (+x), a lid rises; a
    laptop lid, photographed open, leans further back (-x) and closes towards ``lower``."""
    for p in obj.parts:
        moved = p.posed(p.upper).centroid - p.mesh.centroid
        if obj.category == "laptop":
            assert moved[0] < -0.01, moved
            assert (p.posed(p.lower).centroid - p.mesh.centroid)[0] > 0.05
        else:
            assert moved[0] > 0.02 or moved[2] > 0.02, (p.name, moved)


def test_drawers_stay_in_their_slot_when_fully_open():
    obj = make_object("drawer_unit", 0)
    front_x = obj.base.bounds[1, 0]
    for p in obj.parts:
        assert p.joint_type == "prismatic" and np.allclose(p.axis, [1, 0, 0])
        assert p.posed(p.upper).bounds[0, 0] < front_x - 0.02  # metres still inside the body


def test_overlap_check_detects_a_part_pushed_into_the_base():
    """The interpenetration test above is only meaningful if real overlaps are caught."""
    obj = make_object("drawer_unit", 0)
    drawer = obj.parts[0]
    pushed = drawer.mesh.copy()
    pushed.apply_translation([-0.05, 0.0, 0.0])
    assert _overlap(obj.base, pushed) > 1e-5
    cab = make_object("cabinet", 0)
    door = cab.parts[0]
    swung_in = door.mesh.copy()
    swung_in.apply_transform(trimesh.transformations.rotation_matrix(-0.4, door.axis, door.origin))
    assert _overlap(cab.base, swung_in) > 1e-6


def test_laptop_is_photographed_open_and_closes_through_lower():
    obj = make_object("laptop", 3)
    lid = obj.part("lid_0")
    assert -2.05 < lid.lower < -1.7 and 0.2 < lid.upper < 0.4
    closed = lid.posed(lid.lower)
    assert closed.bounds[1, 2] - closed.bounds[0, 2] < 0.02  # lid lies flat on the base, metres
    assert closed.bounds[0, 2] > obj.base.bounds[1, 2]


def test_make_object_is_deterministic_and_seeds_differ():
    a, b, c = make_object("cabinet", 5), make_object("cabinet", 5), make_object("cabinet", 6)
    assert np.array_equal(a.base.vertices, b.base.vertices)
    assert np.array_equal(a.base.faces, b.base.faces)
    assert np.array_equal(a.base.visual.face_colors, b.base.visual.face_colors)
    assert [p.name for p in a.parts] == [p.name for p in b.parts]
    assert not np.allclose(a.extents, c.extents)


def test_posed_moves_named_parts_only():
    obj = make_object("storage_cabinet", 1)
    name = obj.parts[0].name
    meshes = obj.posed({name: obj.parts[0].upper})
    assert len(meshes) == 1 + len(obj.parts)
    assert np.array_equal(meshes[0].vertices, obj.base.vertices)
    assert not np.allclose(meshes[1].vertices, obj.parts[0].mesh.vertices)
    for mesh, part in zip(meshes[2:], obj.parts[1:]):
        assert np.array_equal(mesh.vertices, part.mesh.vertices)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="category"):
        make_object("spaceship", 0)
    with pytest.raises(ValueError, match="seed"):
        make_object("cabinet", -1)
    obj = make_object("cabinet", 0)
    with pytest.raises(ValueError, match="unknown parts"):
        obj.posed({"wheel_0": 0.1})
    with pytest.raises(ValueError, match="must lie in"):
        obj.posed({"door_0": 5.0})
    with pytest.raises(ValueError, match="unit"):
        SynthPart("door_9", obj.parts[0].mesh, "revolute", np.array([0, 0, 2.0]), np.zeros(3), 0.0, 1.0)
    with pytest.raises(ValueError, match="name"):
        SynthPart("door 9", obj.parts[0].mesh, "revolute", np.array([0, 0, 1.0]), np.zeros(3), 0.0, 1.0)
