"""The z-buffer rasteriser: combining separately rendered meshes."""

from __future__ import annotations

import numpy as np
import trimesh

from stages._shared.raster import nearer, rasterize
from synth.objects import make_object
from synth.render import product_camera


def test_nearer_equals_rasterising_both_meshes_at_once():
    """A door swung half open over its cabinet: base and door rendered apart and z-merged give the
    same face, depth and barycentrics at every pixel as the two rendered as one mesh."""
    obj = make_object("cabinet", 0)
    camera = product_camera(obj, 0, 160, 120)
    base = trimesh.util.concatenate([obj.base] + [p.mesh for p in obj.parts[1:]])
    door = obj.parts[0].posed(0.5 * obj.parts[0].opening_limit)
    together = rasterize(
        camera, np.concatenate([base.vertices, door.vertices]),
        np.concatenate([base.faces, door.faces + len(base.vertices)]),
    )  # fmt: skip
    apart = nearer(rasterize(camera, base.vertices, base.faces), rasterize(camera, door.vertices, door.faces),
                   len(base.faces))
    door_pixels = together.face_id >= len(base.faces)
    assert door_pixels.sum() > 100 and (together.mask & ~door_pixels).sum() > 100  # both are seen
    np.testing.assert_array_equal(apart.face_id, together.face_id)
    np.testing.assert_array_equal(apart.depth, together.depth)
    np.testing.assert_allclose(apart.bary, together.bary, atol=1e-12)
