"""Closed solids from link meshes, for mass properties, collision pieces and inside tests."""

from __future__ import annotations

import numpy as np


def closed_solid(mesh, what: str = "mesh"):
    """The closed, outward-oriented solid bounded by a triangle mesh, without visuals.

    A mesh written with a texture is split along its UV seams, so coincident vertices are merged
    unless the mesh is already watertight as given. Merging can join two solids that touch along
    an edge (a manifold3d union of touching boxes keeps them apart); such an edge then borders
    four faces, which still bounds a volume. So the test is that every edge borders an even,
    non-zero number of faces.

    Parameters
    ----------
    mesh : trimesh.Trimesh
      Vertices in metres, any frame.
    what : str
      Name used in the error message (e.g. ``"link 'door_0'"``).

    Returns
    -------
    trimesh.Trimesh
      float64 vertices, faces oriented so that the enclosed volume is positive.

    Raises
    ------
    ValueError
      The surface has open edges or encloses no volume.
    """
    import trimesh

    solid = trimesh.Trimesh(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces), process=False)
    if not solid.is_watertight:
        solid.merge_vertices(merge_tex=True, merge_norm=True)
        solid.remove_unreferenced_vertices()
        _, counts = np.unique(solid.edges_sorted, axis=0, return_counts=True)
        if len(counts) == 0 or np.any(counts % 2 == 1):
            raise ValueError(
                f"{what}: the mesh is not closed ({int(np.sum(counts % 2 == 1))} open edges in "
                f"{len(solid.faces)} faces); pass a watertight solid (e.g. from the amodal stage)"
            )
    if solid.volume < 0:
        solid.invert()
    if not solid.volume > 0:
        raise ValueError(f"{what}: the mesh encloses no volume ({solid.volume:.3g} m^3)")
    return solid
