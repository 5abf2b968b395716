"""Interpenetration measured from contact points: line contacts along an edge are found."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from stages._shared.contact import contact_points, interpenetration


@pytest.mark.parametrize("seed", range(5))
def test_an_edge_pressed_into_a_face_is_measured(seed):
    """A 1 m bar turned 45 deg about its length presses one edge 2 mm into the top face of a
    0.3 m block: the contact is a thin strip that random surface samples miss, and the bar's
    corners lie outside the block."""
    depth = 0.002
    slab = trimesh.creation.box((0.3, 0.3, 0.1))  # top face at z = 0.05
    bar = trimesh.creation.box((1.0, 0.2, 0.2))
    bar.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 4, [1, 0, 0]))
    # its lowest edge now sits 0.1 * sqrt(2) below its centre
    T = trimesh.transformations.translation_matrix([0, 0, 0.05 + 0.1 * np.sqrt(2) - depth])
    measured = interpenetration(
        bar, contact_points(bar, 200, seed=seed), slab, contact_points(slab, 200, seed=seed + 1), T
    )
    assert measured == pytest.approx(depth, abs=1e-4)


def test_apart_solids_do_not_touch():
    slab = trimesh.creation.box((1.0, 1.0, 0.1))
    bar = trimesh.creation.box((0.5, 0.2, 0.2))
    T = trimesh.transformations.translation_matrix([0, 0, 0.2])
    assert interpenetration(bar, contact_points(bar, 200), slab, contact_points(slab, 200), T) == 0.0
