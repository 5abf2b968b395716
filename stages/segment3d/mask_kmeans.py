"""Segment3D backend "mask_kmeans": DreamArt's mask-guided clustering of mesh faces.

DreamArt (Sec. 3.1, "Mask-Guided 3D Segmentation") labels the faces of the reconstructed mesh
from a single-view part mask and per-face features F_i:

1. S = the faces whose projections fall inside the part mask M;
2. F_m = mean of F_i over S; face i is movable if ||F_i - F_m|| <= max_{j in S} ||F_j - F_m||
   (their eq. 1);
3. k-means, initialised with each part's feature centroid (and the base's), removes outliers
   and smooths the labels.

Here the mesh is first refined (edges at most ``max_edge`` of the bounding-box diagonal) so
that faces can follow a part's outline on a coarse box. S keeps only faces seen by the camera
(z-buffer), so a mask does not claim the faces behind the part. Features are "geometric" by
default (face centroid over the diagonal, face normal), or any per-face features computed
elsewhere (e.g. PartField) read from a ``.npy`` file. Geometric features do not tell a door
from the frame around it on the same plane (PartField's do), so by default faces the camera sees
keep the label their pixel shows (in a part's mask: that part; in none: the base) and eq. 1 and
k-means decide only the faces the photo does not show, which is where DreamArt needs the
clustering (the occluded rest of a part). Eq. 1's max is taken as a high quantile
(``radius_quantile``): a mask bleeding over a part's outline would otherwise let a few faces of
the next surface set the radius. ``fix_observed=False, radius_quantile=1`` is the method as
published.
Several parts: each part's eq. 1 is scaled by its own radius and a face goes to the part of
smallest scaled distance; the base is label 0.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stages._shared.io import read_mask, read_mesh, write_mesh, write_npy
from stages._shared.raster import rasterize

log = logging.getLogger(__name__)

#: Radius of eq. 1 below which a part's faces are taken to be one point in feature space.
_MIN_RADIUS = 1e-9


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["mask_kmeans"] = "mask_kmeans"
    max_edge: float = Field(
        1.0 / 60.0, gt=0, le=1, description="refine until every edge is at most this fraction of the mesh's bbox diagonal"
    )
    features: Literal["geometric", "file"] = Field(
        "geometric", description="per-face features: centroid and normal, or read from `features_path`"
    )
    features_path: Path | None = Field(
        None, description="(F, C) float .npy of per-face features for the reconstructed or the refined mesh (features='file')"
    )
    normal_weight: float = Field(
        1.0, ge=0, description="weight of the unit face normal against the centroid (in bbox diagonals) in geometric features"
    )
    fix_observed: bool = Field(
        True, description="faces the camera sees keep the label their pixel shows; False reclassifies every face (as published)"
    )
    radius_quantile: float = Field(
        0.95, gt=0, le=1, description="eq. 1's radius as this quantile of the mask faces' distances (1 = the max, as published)"
    )
    kmeans_iterations: int = Field(10, ge=0, description="most Lloyd iterations of the k-means refinement")
    depth_tolerance: float = Field(
        0.004, gt=0, description="a face centroid is visible when within this fraction of the diagonal of the z-buffer depth"
    )


def run(cfg: Config, recon, masks, out_dir: Path):
    """Label the faces of the reconstructed mesh as base (0) or part k (k + 1).

    Parameters
    ----------
    cfg : Config
    recon : ReconstructResult
      Watertight mesh (base frame) and the camera of the working image.
    masks : PartMasksResult
      One (H, W) mask per part, on the camera's pixel grid.
    out_dir : Path
      Receives ``mesh.glb`` (the refined mesh), ``labels.npy`` ((F,) int32), ``base.glb`` and
      ``part_<k>.glb`` (the faces of each label).

    Raises
    ------
    ValueError
      A mask does not match the camera's image size or covers no face the camera sees; the
      features file is missing or does not have one row per face.
    """
    import trimesh

    from stages.segment3d import Segment3DResult

    # 1. Inputs: the mesh, the camera and the part masks.
    mesh = read_mesh(recon.mesh)
    camera = recon.camera
    part_masks = []
    for part in masks.parts:
        m = read_mask(part.mask)
        if m.shape != (camera.height, camera.width):
            raise ValueError(
                f"mask {part.mask} of part {part.name!r} is {m.shape}, the camera's image is "
                f"({camera.height}, {camera.width}); give masks on the working image's pixel grid"
            )
        part_masks.append(m)
    if not part_masks:
        raise ValueError("`masks` holds no part; segment3d needs at least one part mask")

    # 2. Refine so that faces are small enough to follow a part's outline.
    diag = float(np.linalg.norm(mesh.extents))
    vertices, faces, parent = trimesh.remesh.subdivide_to_size(
        mesh.vertices, mesh.faces, max_edge=cfg.max_edge * diag, max_iter=20, return_index=True
    )
    refined = trimesh.Trimesh(vertices, faces, process=False)

    # 3. Per-face features F_i.
    features = _features(cfg, refined, parent, len(mesh.faces))

    # 4. Observed faces: the label the photo shows for every face the camera sees.
    observed = _observed_labels(cfg, camera, refined, part_masks, diag)  # (F,) -1 unseen, 0 base, k+1 part
    for k, part in enumerate(masks.parts):
        if not np.any(observed == k + 1):
            raise ValueError(
                f"mask {part.mask} of part {part.name!r} covers no face of {recon.mesh} that the camera sees; "
                "check that the mask and the reconstruction come from the same photo"
            )

    # 5. Eq. 1 per part, then k-means over all parts and the base.
    labels = _mask_guided(features, observed, len(part_masks), cfg.radius_quantile)
    fixed = observed >= 0 if cfg.fix_observed else np.zeros(len(labels), bool)
    labels = _kmeans(features, labels, fixed, observed, cfg.kmeans_iterations)
    labels = _whole_pieces(refined, labels, observed, len(part_masks))
    counts = np.bincount(labels, minlength=len(part_masks) + 1)
    for k, part in enumerate(masks.parts):
        if counts[k + 1] == 0:
            raise ValueError(
                f"part {part.name!r} lost all its faces to k-means; use fix_observed=True or features that separate it"
            )

    # 6. Outputs.
    out_dir = Path(out_dir)
    mesh_path = write_mesh(out_dir / "mesh.glb", refined)
    labels_path = write_npy(out_dir / "labels.npy", labels.astype(np.int32))
    base_path = write_mesh(out_dir / "base.glb", _submesh(refined, labels == 0))
    part_paths = tuple(
        write_mesh(out_dir / f"part_{k}.glb", _submesh(refined, labels == k + 1)) for k in range(len(part_masks))
    )
    log.info(
        "segment3d: %d faces (from %d), %s features, seen %d; base %d, parts %s",
        len(faces), len(mesh.faces), cfg.features, int(np.sum(observed >= 0)), int(counts[0]),
        ", ".join(f"{p.name}={int(c)}" for p, c in zip(masks.parts, counts[1:])),
    )
    return Segment3DResult(
        mesh=mesh_path,
        labels=labels_path,
        base_mesh=base_path,
        part_meshes=part_paths,
        part_face_counts=tuple(int(c) for c in counts[1:]),
    )


def _whole_pieces(mesh, labels: np.ndarray, observed: np.ndarray, n_parts: int) -> np.ndarray:
    """``labels`` with every connected piece of ``mesh`` whose seen faces mostly show one part
    given wholly to that part: a solid of its own (an open laptop's lid, reconstructed apart from
    the body) moves as one, its unseen back included, whatever its features; unseen faces of
    other pieces that k-means gave such a part go back to the base."""
    import trimesh

    piece = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    if piece.max() == 0:
        return labels
    seen = observed >= 0
    votes = np.zeros((piece.max() + 1, n_parts + 1))
    np.add.at(votes, (piece[seen], observed[seen]), 1.0)
    winner = votes.argmax(axis=1)
    whole = (winner > 0) & (votes.max(axis=1) >= 0.5 * votes.sum(axis=1)) & (votes.sum(axis=1) > 0)
    labels = np.where(whole[piece], winner[piece], labels)
    # Such a part keeps, on the other pieces, only the faces the photo shows as its own.
    owns_piece = np.zeros(n_parts + 1, bool)
    owns_piece[winner[whole]] = True
    stray = owns_piece[labels] & ~whole[piece] & (observed != labels)
    return np.where(stray, 0, labels)


def _features(cfg: Config, mesh, parent: np.ndarray, n_input_faces: int) -> np.ndarray:
    """(F, C) float per-face features of the refined mesh."""
    if cfg.features == "geometric":
        lo, hi = mesh.bounds
        diag = float(np.linalg.norm(hi - lo))
        centroid = (mesh.triangles_center - 0.5 * (lo + hi)) / diag  # (F, 3) in diagonals
        return np.hstack([centroid, cfg.normal_weight * mesh.face_normals])
    if cfg.features_path is None or not Path(cfg.features_path).is_file():
        raise ValueError(
            f"features='file' needs `features_path`, a (F, C) .npy of per-face features; got {cfg.features_path}"
        )
    table = np.load(cfg.features_path)
    if table.ndim != 2 or not np.issubdtype(table.dtype, np.number):
        raise ValueError(f"{cfg.features_path}: features must be a (F, C) numeric array, got {table.shape} {table.dtype}")
    table = table.astype(np.float64)
    if len(table) == n_input_faces:
        return table[parent]  # each refined face inherits its parent face's features
    if len(table) == len(mesh.faces):
        return table
    raise ValueError(
        f"{cfg.features_path}: {len(table)} rows, expected one per face of the reconstructed mesh "
        f"({n_input_faces}) or of the refined mesh ({len(mesh.faces)}); compute the features on the reconstruct mesh"
    )


def _observed_labels(cfg: Config, camera, mesh, part_masks: list[np.ndarray], diag: float) -> np.ndarray:
    """(F,) int: the label each visible face's centroid pixel shows, -1 for faces not seen.

    A face is seen when it turns to the camera, its centroid projects into the image and lies
    within ``depth_tolerance * diag`` of the z-buffer there (faces smaller than a pixel count).
    Where masks overlap, the first part wins.
    """
    raster = rasterize(camera, mesh.vertices, mesh.faces)
    centroid = mesh.triangles_center
    uv, depth = camera.project(centroid)
    H, W = raster.depth.shape
    px = np.floor(uv).astype(np.int64)  # pixel centres sit at +0.5
    inside = (px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H) & (depth > 0)
    cx, cy = np.clip(px[:, 0], 0, W - 1), np.clip(px[:, 1], 0, H - 1)
    turned = np.einsum("fk,fk->f", mesh.face_normals, camera.position - centroid) > 0
    seen = inside & turned & (np.abs(depth - raster.depth[cy, cx]) <= cfg.depth_tolerance * diag)
    seen[raster.face_id[raster.mask]] = True  # faces that win a pixel are seen whatever their centroid
    observed = np.where(seen, 0, -1)
    stack = np.stack(part_masks)  # (K, H, W)
    hit = stack[:, cy, cx] & seen[None]  # (K, F)
    first = np.argmax(hit, axis=0)
    return np.where(hit.any(axis=0), first + 1, observed)


def _mask_guided(features: np.ndarray, observed: np.ndarray, n_parts: int, quantile: float) -> np.ndarray:
    """(F,) int labels from eq. 1: each part claims the faces within its radius of its mean.

    For part k with mask faces S_k: F_m = mean_{S_k} F, r = max_{j in S_k} ||F_j - F_m|| (or the
    ``quantile`` of those distances: a mask bleeding over a part's outline puts a few faces of
    the neighbouring surfaces into S_k, and the max would then claim nearly everything); face i
    is a candidate if ||F_i - F_m|| <= r. A face claimed by several parts goes to the smallest
    ||F_i - F_m|| / r; unclaimed faces are the base (0).
    """
    scaled = np.full((len(features), n_parts), np.inf)
    for k in range(n_parts):  # loop over parts
        S = features[observed == k + 1]
        centre = S.mean(axis=0)
        radius = max(float(np.quantile(np.linalg.norm(S - centre, axis=1), quantile)), _MIN_RADIUS)
        scaled[:, k] = np.linalg.norm(features - centre, axis=1) / radius
    best = np.argmin(scaled, axis=1)
    return np.where(scaled[np.arange(len(features)), best] <= 1.0, best + 1, 0)


def _kmeans(
    features: np.ndarray, labels: np.ndarray, fixed: np.ndarray, observed: np.ndarray, iterations: int
) -> np.ndarray:
    """Lloyd iterations from the clusters ``labels`` (base and parts); ``fixed`` faces keep
    their ``observed`` label. An emptied cluster keeps its last centroid."""
    n = int(labels.max(initial=0)) + 1
    n = max(n, int(observed.max(initial=0)) + 1)
    labels = np.where(fixed, observed, labels)
    centroids = np.zeros((n, features.shape[1]))
    for it in range(iterations):  # loop over Lloyd iterations
        for c in range(n):
            members = labels == c
            if members.any():
                centroids[c] = features[members].mean(axis=0)
        distance = np.linalg.norm(features[:, None, :] - centroids[None], axis=2)  # (F, n)
        new = np.where(fixed, observed, np.argmin(distance, axis=1))
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def _submesh(mesh, keep: np.ndarray):
    """The faces ``keep`` (F,) bool of ``mesh`` as a mesh with only the vertices they use."""
    import trimesh

    faces = mesh.faces[keep]
    used, inverse = np.unique(faces, return_inverse=True)
    return trimesh.Trimesh(mesh.vertices[used], inverse.reshape(-1, 3), process=False)
