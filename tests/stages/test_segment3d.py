"""segment3d "mask_kmeans": face labels of the reconstructed box from ground-truth part masks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stages import segment3d
from stages._shared.io import read_mesh, write_image
from tests.stages.synth_inputs import gt_faces, gt_part_masks, synth_case

CFG = segment3d.Config()


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = tmp_path_factory.mktemp("segment3d")
    out = {}
    for c, s in [("cabinet", 0), ("drawer_unit", 1)]:
        case = synth_case(c, s, root / f"{c}_{s}")
        out[c] = (case, gt_part_masks(case, root / f"{c}_{s}" / "gt_masks"))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(a & b) / np.sum(a | b))


@pytest.mark.parametrize("category", ["cabinet", "drawer_unit"])
def test_face_labels_match_ground_truth_parts(cases, tmp_path, category):
    case, masks = cases[category]
    result = segment3d.run(CFG, case.recon, masks, tmp_path)
    mesh = read_mesh(result.mesh)
    labels = np.load(result.labels)
    assert labels.dtype == np.int32 and labels.shape == (len(mesh.faces),)
    assert set(np.unique(labels)) == set(range(len(masks.parts) + 1))
    # Refined: every edge at most max_edge of the diagonal (and the box stays closed).
    edges = np.linalg.norm(np.diff(mesh.vertices[mesh.edges_unique], axis=1)[:, 0], axis=1)
    assert edges.max() <= CFG.max_edge * np.linalg.norm(mesh.extents) + 1e-9
    for k, part in enumerate(masks.parts):
        iou = _iou(labels == k + 1, gt_faces(case, mesh, part.name))
        assert iou >= 0.85, (part.name, iou)
        assert result.part_face_counts[k] == np.sum(labels == k + 1)
        assert len(read_mesh(result.part_meshes[k]).faces) == result.part_face_counts[k]
    assert len(read_mesh(result.base_mesh).faces) == np.sum(labels == 0)


def test_published_clustering_with_part_features(cases, tmp_path):
    """Eq. 1 + k-means on every face (fix_observed=False, radius = max) recover the parts when the
    features separate them, as PartField's do: here per-face features that carry the true part."""
    case, masks = cases["cabinet"]
    first = segment3d.run(CFG, case.recon, masks, tmp_path / "first")
    mesh = read_mesh(first.mesh)
    gt = [gt_faces(case, mesh, p.name) for p in masks.parts]
    truth = np.stack([np.zeros(len(mesh.faces))] + [g.astype(float) for g in gt], axis=1)  # (F, 1 + K)
    rng = np.random.default_rng(0)
    features = np.hstack([truth, 0.2 * mesh.triangles_center / np.linalg.norm(mesh.extents)])
    features += rng.normal(0, 0.05, features.shape)
    path = tmp_path / "features.npy"
    np.save(path, features)
    cfg = segment3d.Config(features="file", features_path=path, fix_observed=False, radius_quantile=1.0)
    result = segment3d.run(cfg, case.recon, masks, tmp_path / "published")
    labels = np.load(result.labels)
    for k, g in enumerate(gt):
        assert _iou(labels == k + 1, g) >= 0.9


def test_features_per_input_face_follow_refinement(cases, tmp_path):
    """A features file with one row per face of the 12-triangle box is spread to the refined faces."""
    case, masks = cases["cabinet"]
    n_input = len(read_mesh(case.recon.mesh).faces)
    path = tmp_path / "coarse.npy"
    np.save(path, np.arange(n_input, dtype=float)[:, None])
    cfg = segment3d.Config(features="file", features_path=path)
    result = segment3d.run(cfg, case.recon, masks, tmp_path)
    assert result.part_face_counts[0] > 0


def test_bad_features_file_is_an_error(cases, tmp_path):
    case, masks = cases["cabinet"]
    with pytest.raises(ValueError, match="features_path"):
        segment3d.run(segment3d.Config(features="file"), case.recon, masks, tmp_path)
    path = tmp_path / "wrong.npy"
    np.save(path, np.zeros((7, 3)))
    with pytest.raises(ValueError, match="7 rows"):
        segment3d.run(segment3d.Config(features="file", features_path=path), case.recon, masks, tmp_path)


def test_mask_on_no_visible_face_is_an_error(cases, tmp_path):
    case, masks = cases["cabinet"]
    empty = write_image(tmp_path / "empty.png", np.zeros((case.fg.height, case.fg.width), bool))
    bad = dataclasses.replace(masks, parts=(dataclasses.replace(masks.parts[0], mask=empty),) + masks.parts[1:])
    with pytest.raises(ValueError, match="covers no face"):
        segment3d.run(CFG, case.recon, bad, tmp_path)


def test_a_piece_of_its_own_goes_whole_to_its_part(tmp_path):
    # An open laptop's screen is a solid apart from the base: its unseen back goes with it,
    # though its normals and position are far from the seen front's in feature space.
    case = synth_case("laptop", 0, tmp_path / "case")
    masks = gt_part_masks(case, tmp_path / "gt_masks")
    result = segment3d.run(CFG, case.recon, masks, tmp_path / "seg")
    mesh, labels = read_mesh(result.mesh), np.load(result.labels)
    lid = case.recon.panels[0].box.contains(mesh.triangles_center, 1e-6)
    assert lid.any() and np.all(labels[lid] == 1)
    assert np.mean(labels[~lid] == 0) >= 0.99  # the base keeps its faces (but a few on the mask's edge)
