"""Part masks backend "seams": movable panels read from the seams on the object's box faces.

Doors, drawers and lids of box-like objects are rectangular panels separated from the body by
thin straight seams (the dark gap around a panel, or the edge of a panel standing proud). The
photo is rectified face by face with the fitted camera, so that every seam becomes an
axis-aligned line; long straight seams split each face into regions, and regions that look like
panels (nearly rectangular, a sensible size, bounded by seams, with a handle) are the movable
parts. The handle's place on its panel gives the joint: near a vertical edge, a door hinged on
the opposite edge; centred, a drawer; near the top or bottom edge, a flap hinged on the opposite
horizontal edge. Panels on the top face are lids.

With clicks, each click picks the panel (or, failing that, the seam-bounded region) under it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stages._shared.box_faces import BoxFace, box_faces, panel_joint, rectify_homography
from stages._shared.camera import Camera
from stages._shared.io import read_mask, read_mesh, read_rgb, write_image, write_json

log = logging.getLogger(__name__)

FaceName = Literal["front", "back", "left", "right", "top"]
#: Luma weights (ITU-R BT.601) for the grey image seams are searched in.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: Sobel 3x3 response to a unit step; dividing by it gives the step's contrast.
_SOBEL_GAIN = 4.0
#: Most pixels used to fit a panel's colour model (a regular subsample).
_FIT_PIXELS = 6000
#: Recursion depth of the seam cuts (face -> columns -> cells -> ...).
_MAX_CUT_DEPTH = 4
#: A cut seam must reach into both end stretches of this fraction of the cell it crosses.
_END_FRACTION = 0.15
#: Band along a panel's border (fraction of its shorter side) its base colour is first fitted on.
_BORDER_BAND = 0.15
#: Confidence factor by the number of a panel's sides that are seams (not the face's edge).
_SEAM_SIDE_FACTOR = (0.0, 0.3, 0.8, 1.0, 1.0)
#: Length over width from which a blob is a bar handle.
_BAR_ASPECT = 2.5


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["seams"] = "seams"
    faces: tuple[FaceName, ...] = Field(
        ("front", "top", "left", "right"), description="box faces searched for panels when they face the camera"
    )
    auto_faces: tuple[FaceName, ...] = Field(
        ("front", "top"), description="faces whose panels are proposed automatically when no click is given"
    )
    min_face_area_px: float = Field(1500.0, gt=0, description="smallest projected face area analysed, pixels^2")
    min_face_cos: float = Field(
        0.15, ge=0, lt=1, description="smallest cosine between a face's normal and its direction to the camera"
    )
    max_rect_px: int = Field(720, ge=64, description="longer side of a rectified face image at most, pixels")
    seam_contrast: float = Field(
        0.045, gt=0, lt=1, description="edge step or dark-line depth marking a seam, fraction of full intensity"
    )
    seam_width: float = Field(
        0.012, gt=0, lt=0.2, description="widest dark seam line, fraction of the face's longer side"
    )
    seam_tilt: float = Field(
        0.006, ge=0, lt=0.1, description="drift across a seam over its length tolerated, fraction of the face's longer side"
    )
    seam_coverage: float = Field(
        0.6, gt=0, le=1, description="share of a cell's width (height) a seam must cover to cut it"
    )
    seam_max_gap: float = Field(
        0.15, gt=0, le=1, description="longest break along a seam, fraction of the cell's width (height) it crosses"
    )
    min_panel_area: float = Field(0.012, gt=0, lt=1, description="smallest panel, fraction of the face area")
    max_panel_area: float = Field(
        0.92, gt=0, le=1, description="largest panel without a handle, fraction of the face area"
    )
    min_rectangularity: float = Field(
        0.7, ge=0, le=1, description="smallest share of a panel's rectangle on the object"
    )
    min_panel_side: float = Field(
        0.06, gt=0, lt=1, description="shortest panel side, fraction of the face's shorter side"
    )
    handle_contrast: float = Field(
        0.14, gt=0, lt=1, description="colour difference from the panel marking a handle, fraction of full intensity"
    )
    handle_area: tuple[float, float] = Field(
        (0.0006, 0.08), description="handle blob area range, fraction of the panel area"
    )
    handle_margin: float = Field(
        0.03, ge=0, lt=0.5, description="band along a panel's border not searched for handles, fraction of its shorter side"
    )
    max_handle_blobs: int = Field(
        3, ge=2, description="this many similar blobs on a panel make it a control panel, not a handled part"
    )
    edge_band: float = Field(
        0.22, gt=0, lt=0.5, description="handle centre this far or further from the panel centre (fraction of the panel width) means a side-hinged door"
    )
    flap_band: float = Field(
        0.2, gt=0, lt=0.5, description="handle centre within this fraction of the height from the top/bottom edge means a flap hinged on the other edge"
    )
    drawer_aspect: float = Field(
        1.4, gt=1, description="width / height above which a panel without a handle is taken for a drawer"
    )
    min_confidence: float = Field(0.6, ge=0, le=1, description="smallest confidence of an automatically proposed part")


@dataclass(frozen=True)
class _Handle:
    """A handle-like blob on a panel.

    centre : (s, t) in [0, 1] of the panel's box. size : (width, height) pixels. contrast :
    mean colour difference from the panel. score : saliency. control : one of a group of like
    blobs (buttons, knobs), not a handle.
    """

    centre: tuple[float, float]
    size: tuple[int, int]
    contrast: float
    score: float
    control: bool


@dataclass(frozen=True)
class _Panel:
    """A candidate part on one rectified face.

    mask : (H, W) bool in the rectified face. bbox : (c0, r0, c1, r1) rectified pixels, c1/r1
    exclusive. rect : (s0, s1, t0, t1) face coordinates, metres.
    """

    face: str
    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    rect: tuple[float, float, float, float]
    area_fraction: float
    rectangularity: float
    seam_sides: int
    handle: _Handle | None
    controls: bool
    joint_type: Literal["revolute", "prismatic"]
    hinge_side: Literal["left", "right", "top", "bottom"] | None
    confidence: float


@dataclass(frozen=True)
class _Face:
    """One rectified face: the image, its seams, its regions and its panels.

    homography : (3, 3) rectified pixels -> photo pixels. m_per_px : (s, t) metres per pixel.
    seams : (H, W) bool seam evidence. regions : (H, W) int32, k + 1 on ``cells[k]``, 0 off the object.
    """

    face: BoxFace
    homography: np.ndarray
    m_per_px: tuple[float, float]
    rgb: np.ndarray
    valid: np.ndarray
    seams: np.ndarray
    regions: np.ndarray
    cells: tuple
    panels: tuple[_Panel, ...]


def run(cfg: Config, fg, recon, clicks: tuple[tuple[int, int], ...], out_dir: Path):
    """Find the movable parts' masks in the photo.

    Parameters
    ----------
    cfg : Config
    fg : ForegroundResult
      Working image, object mask and ``scale`` (working pixels per input-photo pixel).
    recon : ReconstructResult
      Box mesh (base frame) and the camera of the working image.
    clicks : tuple of (x, y) int
      Input-photo pixels, one per part to select; empty to find parts automatically.
    out_dir : Path
      Receives ``masks/<name>.png`` (working-image grid), ``parts.json`` and ``faces/`` (the
      rectified faces with their seams and panels drawn, for inspection).

    Raises
    ------
    ValueError
      A click is on no visible face of the box, two clicks pick the same part, or no movable
      panel is found automatically.
    """
    from stages.part_masks import PartMask, PartMasksResult

    # 1. Inputs: the working image, the object mask, the box and the camera.
    image = read_rgb(fg.image)
    fg_mask = read_mask(fg.mask)
    camera = recon.camera
    if image.shape[:2] != fg_mask.shape or image.shape[:2] != (camera.height, camera.width):
        raise ValueError(
            f"`fg.image` {image.shape[:2]}, `fg.mask` {fg_mask.shape} and `recon.camera` "
            f"({camera.height}, {camera.width}) must share one pixel grid; rerun reconstruct on this foreground"
        )
    mesh = read_mesh(recon.mesh)
    faces = box_faces(*mesh.bounds)

    # 2. Rectify every face that faces the camera and find its seams and panels.
    analysed = {}
    for name in cfg.faces:
        face = faces[name]
        if face.facing(camera) < cfg.min_face_cos or face.projected_area(camera) < cfg.min_face_area_px:
            continue
        analysed[name] = _analyse_face(cfg, face, camera, image, fg_mask)
    if not analysed:
        raise ValueError(
            f"no face of the box {np.round(mesh.extents, 3).tolist()} m faces the camera with at least "
            f"{cfg.min_face_area_px:.0f} px^2; check the reconstruct stage's camera"
        )

    # 3. One part per click, or every confident panel.
    scale = float(getattr(fg, "scale", 1.0))
    if clicks:
        chosen = [_panel_at_click(cfg, analysed, (x, y), scale) for x, y in clicks]
        _check_distinct(chosen, clicks)
        picked = list(zip(chosen, [tuple(map(int, c)) for c in clicks]))
    else:
        auto = [p for f in cfg.auto_faces if f in analysed for p in analysed[f].panels]
        confident = [p for p in auto if p.confidence >= cfg.min_confidence]
        if not confident:
            best = max((p.confidence for p in auto), default=0.0)
            raise ValueError(
                f"no movable panel found automatically on faces {sorted(set(cfg.auto_faces) & set(analysed))} "
                f"(best confidence {best:.2f} < min_confidence {cfg.min_confidence}); give --click X,Y on "
                "each movable part, or lower `min_confidence`"
            )
        order = {name: k for k, name in enumerate(cfg.auto_faces)}
        confident.sort(key=lambda p: (order[p.face], p.rect[2], p.rect[0]))
        picked = [(p, None) for p in confident]

    # 4. Masks back in the photo, named by kind.
    out_dir = Path(out_dir)
    counters: dict[str, int] = {}
    parts, records = [], []
    for panel, click in picked:
        face = analysed[panel.face]
        kind = "drawer" if panel.joint_type == "prismatic" else ("lid" if panel.face == "top" else "door")
        name = f"{kind}_{counters.get(kind, 0)}"
        counters[kind] = counters.get(kind, 0) + 1
        mask = _to_photo(face, panel.mask, fg_mask.shape) & fg_mask
        if not mask.any():
            raise ValueError(f"part {name} (click {click}) covers no pixel of the object mask {fg.mask}")
        path = write_image(out_dir / "masks" / f"{name}.png", mask)
        parts.append(
            PartMask(
                name=name,
                mask=path,
                joint_type=panel.joint_type,
                hinge_side=panel.hinge_side,
                click=click,
                confidence=round(float(panel.confidence), 4),
            )
        )
        records.append(_record(name, path, out_dir, panel, face, click, mask))

    # 5. Summary and inspection images.
    for name, face in analysed.items():
        write_image(out_dir / "faces" / f"{name}.png", _overlay(face, [p for p, _ in picked]))
    write_json(
        out_dir / "parts.json",
        {
            "parts": records,
            "faces": {
                name: {
                    "size_px": list(f.rgb.shape[1::-1]),
                    "m_per_px": list(f.m_per_px),
                    "panels": len(f.panels),
                    "homography_photo_from_rect": f.homography,
                }
                for name, f in analysed.items()
            },
        },
    )
    log.info(
        "part_masks: %d part(s) %s from %s on faces %s",
        len(parts),
        ", ".join(f"{p.name}({p.joint_type[:3]},{p.hinge_side},{p.confidence:.2f})" for p in parts),
        f"{len(clicks)} click(s)" if clicks else "automatic search",
        sorted(analysed),
    )
    return PartMasksResult(parts=tuple(parts))


# ---------------------------------------------------------------------------------------------
# Faces: rectification, seams, regions
# ---------------------------------------------------------------------------------------------


def _analyse_face(cfg: Config, face: BoxFace, camera: Camera, image: np.ndarray, fg_mask: np.ndarray) -> _Face:
    """Rectify ``face`` from the photo and find its seams, cells and panels."""
    import cv2

    # 1. Rectified size: as fine as the face's finest direction in the photo, capped.
    uv, _ = camera.project(face.corners)
    ppm_s = max(np.linalg.norm(uv[1] - uv[0]), np.linalg.norm(uv[2] - uv[3])) / face.width
    ppm_t = max(np.linalg.norm(uv[3] - uv[0]), np.linalg.norm(uv[2] - uv[1])) / face.height
    ppm = min(max(ppm_s, ppm_t), cfg.max_rect_px / max(face.width, face.height))
    W, H = max(16, int(np.ceil(face.width * ppm))), max(16, int(np.ceil(face.height * ppm)))
    Hm = rectify_homography(face, camera, (W, H))
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    rgb = cv2.warpPerspective(image, Hm, (W, H), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    rgb = rgb.astype(np.float32) / 255.0  # (H, W, 3) in [0, 1]
    valid = cv2.warpPerspective(fg_mask.astype(np.uint8) * 255, Hm, (W, H), flags=flags, borderValue=0) > 127

    # 2. Seam evidence per direction, then the face cut recursively along full-length seams.
    horizontal, vertical = _seam_evidence(cfg, rgb, valid)
    cells = _xy_cut(cfg, horizontal, vertical, valid)
    regions = np.zeros((H, W), np.int32)
    for k, cell in enumerate(cells):
        c0, r0, c1, r1 = cell.bbox
        regions[r0:r1, c0:c1] = k + 1
    regions[~valid] = 0

    # 3. Panels: cells that look like movable parts.
    m_per_px = (face.width / W, face.height / H)
    face_data = _Face(face, Hm, m_per_px, rgb, valid, horizontal | vertical, regions, tuple(cells), ())
    panels = [p for cell in cells if _is_candidate(cfg, face_data, cell) for p in _cell_panels(cfg, face_data, cell)]
    return dataclasses.replace(face_data, panels=tuple(panels))


def _seam_evidence(cfg: Config, rgb: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) bool maps of horizontal and vertical seam evidence on a rectified face.

    Evidence across a seam is the larger of the colour step (Sobel, max over channels) and the
    depth of a thin dark line (black top-hat), above ``seam_contrast``; it is thickened across
    the seam by ``seam_tilt`` so that a slightly tilted seam still fills rows or columns.
    """
    import cv2

    H, W = valid.shape
    smooth = cv2.GaussianBlur(rgb, (0, 0), 0.7)
    grey = smooth @ _LUMA
    step_x = np.abs(cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)).max(axis=2) / _SOBEL_GAIN
    step_y = np.abs(cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)).max(axis=2) / _SOBEL_GAIN
    k = 2 * max(1, int(round(cfg.seam_width * max(H, W)))) + 1
    dark_h = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, np.ones((k, 1), np.uint8))  # dark horizontal lines
    dark_v = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, np.ones((1, k), np.uint8))
    inside = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    horizontal = ((np.maximum(step_y, dark_h) > cfg.seam_contrast) & inside).astype(np.uint8)
    vertical = ((np.maximum(step_x, dark_v) > cfg.seam_contrast) & inside).astype(np.uint8)
    d = 2 * max(1, int(round(cfg.seam_tilt * max(H, W)))) + 1
    horizontal = cv2.dilate(horizontal, np.ones((d, 1), np.uint8)).astype(bool)
    vertical = cv2.dilate(vertical, np.ones((1, d), np.uint8)).astype(bool)
    return horizontal, vertical


@dataclass(frozen=True)
class _Cell:
    """A rectangle of a face left between seams. bbox : (c0, r0, c1, r1) pixels, c1/r1 exclusive.
    seam_sides : (top, bottom, left, right) whether that side is a seam (else the face's edge)."""

    bbox: tuple[int, int, int, int]
    seam_sides: tuple[bool, bool, bool, bool]


def _xy_cut(cfg: Config, horizontal: np.ndarray, vertical: np.ndarray, valid: np.ndarray) -> list[_Cell]:
    """Split a face into cells along seams that run across a whole cell, recursively.

    A row (column) of a cell is a cut when seam evidence covers ``seam_coverage`` of the cell's
    valid width (height) and reaches both ends of it; runs of cut rows are one seam, removed
    from both sides. The cells of the resulting grid are cut again until nothing changes, which
    finds drawers stacked in one column of a face beside a door in the other.
    """
    H, W = valid.shape
    cells = []
    stack = [((0, 0, W, H), (False, False, False, False), 0)]
    while stack:  # loop over cells (a few dozen per face)
        (c0, r0, c1, r1), sides, depth = stack.pop()
        v = valid[r0:r1, c0:c1]
        row_bands = _cut_bands(cfg, horizontal[r0:r1, c0:c1], v)
        col_bands = _cut_bands(cfg, vertical[r0:r1, c0:c1].T, v.T)
        if depth >= _MAX_CUT_DEPTH or (not row_bands and not col_bands):
            cells.append(_Cell((c0, r0, c1, r1), sides))
            continue
        for a, b, top, bottom in _between(r1 - r0, row_bands):
            for c, d, left, right in _between(c1 - c0, col_bands):
                new_sides = (top or (a == 0 and sides[0]), bottom or (b == r1 - r0 and sides[1]),
                             left or (c == 0 and sides[2]), right or (d == c1 - c0 and sides[3]))
                stack.append(((c0 + c, r0 + a, c0 + d, r0 + b), new_sides, depth + 1))
    return sorted(cells, key=lambda cell: (cell.bbox[1], cell.bbox[0]))


def _cut_bands(cfg: Config, evidence: np.ndarray, valid: np.ndarray) -> list[tuple[int, int]]:
    """Runs ``[a, b)`` of rows of ``evidence`` (h, w) that are seams across the whole width.

    A row is a seam when evidence covers ``seam_coverage`` of its valid pixels, reaches into
    both end stretches and leaves no gap longer than ``seam_max_gap`` of the width (features
    that merely line up, such as a window's edge and a row of buttons, leave long gaps).
    """
    h, w = evidence.shape
    if h < 3 or w < 3:
        return []
    end = max(1, int(round(_END_FRACTION * w)))
    n_valid = valid.sum(axis=1)
    cover = evidence.sum(axis=1) / np.maximum(n_valid, 1)
    cover_start = evidence[:, :end].sum(axis=1) / np.maximum(valid[:, :end].sum(axis=1), 1)
    cover_end = evidence[:, -end:].sum(axis=1) / np.maximum(valid[:, -end:].sum(axis=1), 1)
    # Longest run without evidence per row (off-object pixels do not break a seam).
    hit = evidence | ~valid
    cols = np.arange(w)
    last = np.maximum.accumulate(np.where(hit, cols, -1), axis=1)  # last hit at or before each column
    gap = np.max(cols - last, axis=1)
    cut = (cover >= cfg.seam_coverage) & (np.minimum(cover_start, cover_end) >= 0.5 * cfg.seam_coverage)
    cut &= (n_valid >= 0.5 * w) & (gap <= cfg.seam_max_gap * w)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], cut.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def _between(n: int, bands: list[tuple[int, int]]) -> list[tuple[int, int, bool, bool]]:
    """Intervals ``[a, b)`` of ``range(n)`` between ``bands``, each with (seam before, seam after)."""
    out, start, seam_before = [], 0, False
    for a, b in bands:
        if a > start:
            out.append((start, a, seam_before, True))
        start, seam_before = b, True
    if n > start:
        out.append((start, n, seam_before, False))
    return out


def _is_candidate(cfg: Config, face: _Face, cell: _Cell) -> bool:
    """Whether a cell is big enough, mostly on the object and not a sliver to be a panel."""
    c0, r0, c1, r1 = cell.bbox
    H, W = face.valid.shape
    face_area = float(face.valid.sum())
    on_object = face.valid[r0:r1, c0:c1].mean()
    area = on_object * (c1 - c0) * (r1 - r0)
    return (
        face_area > 0
        and on_object >= cfg.min_rectangularity
        and area >= cfg.min_panel_area * face_area
        and min(c1 - c0, r1 - r0) >= cfg.min_panel_side * min(H, W)
    )


def _cell_panels(cfg: Config, face: _Face, cell: _Cell) -> list[_Panel]:
    """The panel(s) of one candidate cell.

    Two mirrored upright handles near the middle of a cell mean two doors meeting there, hinged
    on the outer edges, even when the seam between them does not show (a proud door hides it
    from an oblique view): the cell is split between the handles.
    """
    blobs = _handle_blobs(cfg, face, cell)
    handles = [b for b in blobs if not b.control]
    pair = _mirrored_pair(cfg, handles)
    if pair is None:
        return [_make_panel(cfg, face, cell, blobs)]
    c0, r0, c1, r1 = cell.bbox
    split = c0 + int(round(0.5 * (pair[0].centre[0] + pair[1].centre[0]) * (c1 - c0)))
    top, bottom, left, right = cell.seam_sides
    halves = [_Cell((c0, r0, split, r1), (top, bottom, left, True)), _Cell((split, r0, c1, r1), (top, bottom, True, right))]
    return [_make_panel(cfg, face, half, _handle_blobs(cfg, face, half)) for half in halves]


def _make_panel(cfg: Config, face: _Face, cell: _Cell, blobs: list[_Handle]) -> _Panel:
    """Score one cell and guess its joint from its handle."""
    H, W = face.valid.shape
    c0, r0, c1, r1 = cell.bbox
    sm, st = face.m_per_px
    rect = (c0 * sm, c1 * sm, r0 * st, r1 * st)
    # The mask reaches over the seam bands around the cell (half of each, the tilt allowance).
    g = max(1, int(round(cfg.seam_tilt * max(H, W)))) + 1
    mask = np.zeros((H, W), bool)
    mask[max(0, r0 - g):r1 + g, max(0, c0 - g):c1 + g] = True
    mask &= face.valid
    rectangularity = float(face.valid[r0:r1, c0:c1].mean())

    handles = [b for b in blobs if not b.control]
    controls = len(handles) < len(blobs)
    handle = max(handles, key=lambda b: b.score) if handles else None
    joint_type, hinge_side = _joint_from_handle(cfg, face.face, handle, rect)

    area_fraction = float(face.valid[r0:r1, c0:c1].sum()) / float(face.valid.sum())
    size_ok = area_fraction <= cfg.max_panel_area or handle is not None
    rect_score = float(np.clip((rectangularity - cfg.min_rectangularity) / (0.95 - cfg.min_rectangularity), 0, 1))
    # A handle at a panel's bottom edge (a flip-up door) is as often a pedal or a plinth detail.
    handle_score = 0.0 if handle is None or (joint_type == "revolute" and hinge_side == "top" and face.face.name != "top") else 1.0
    n_seams = int(sum(cell.seam_sides))
    confidence = (0.5 * handle_score + 0.25 * rect_score + 0.25 * size_ok) * _SEAM_SIDE_FACTOR[n_seams]
    if controls:
        confidence *= 0.5
    return _Panel(
        face=face.face.name,
        mask=mask,
        bbox=cell.bbox,
        rect=rect,
        area_fraction=area_fraction,
        rectangularity=rectangularity,
        seam_sides=n_seams,
        handle=handle,
        controls=controls,
        joint_type=joint_type,
        hinge_side=hinge_side,
        confidence=float(confidence),
    )


def _handle_blobs(cfg: Config, face: _Face, cell: _Cell) -> list[_Handle]:
    """Handle-sized blobs on a panel, controls (groups of similar blobs) marked.

    The panel's colour is modelled as linear in (column, row) per channel (a lighting gradient),
    fitted first on the panel's border band (windows and handles sit inside) and refitted on
    the pixels it explains; blobs differing from it by more than ``handle_contrast`` inside the
    panel (away from its border) are handle candidates. ``max_handle_blobs`` or more blobs of
    like size and shape are controls (buttons, knobs, a keypad), not handles.
    """
    import cv2
    from scipy import ndimage

    c0, r0, c1, r1 = cell.bbox
    own = face.valid[r0:r1, c0:c1]
    rgb = face.rgb[r0:r1, c0:c1].astype(np.float64)
    h, w = own.shape
    gc, gr = np.meshgrid((np.arange(w) + 0.5) / w, (np.arange(h) + 0.5) / h)
    A = np.stack([np.ones_like(gc), gc, gr], axis=-1)  # (h, w, 3) design matrix of the colour model
    margin = max(1, int(round(cfg.handle_margin * min(h, w))))
    band = max(margin + 1, int(round(_BORDER_BAND * min(h, w))))
    fit = own.copy()
    fit[band:h - band, band:w - band] = False  # the border band first
    fit[:margin] = fit[h - margin:] = False
    fit[:, :margin] = fit[:, w - margin:] = False
    for _ in range(3):  # fit, then refit on the pixels the model explains
        rows, cols = np.nonzero(fit)
        step = max(1, len(rows) // _FIT_PIXELS)
        rows, cols = rows[::step], cols[::step]
        if len(rows) < 3:
            return []
        coef, *_ = np.linalg.lstsq(A[rows, cols], rgb[rows, cols], rcond=None)
        diff = np.abs(A @ coef - rgb).max(axis=2)  # (h, w) distance from the panel colour
        fit = own & (diff <= 0.5 * cfg.handle_contrast)

    inner = np.zeros((h, w), bool)
    inner[margin:h - margin, margin:w - margin] = own[margin:h - margin, margin:w - margin]
    n, lab, stats, centroids = cv2.connectedComponentsWithStats(
        ((diff > cfg.handle_contrast) & inner).astype(np.uint8), connectivity=8
    )
    area = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    panel_area = float(own.sum())
    ok = np.flatnonzero((area >= max(6.0, cfg.handle_area[0] * panel_area)) & (area <= cfg.handle_area[1] * panel_area))
    if len(ok) == 0:
        return []
    mean_diff = np.asarray(ndimage.mean(diff, lab, ok + 1))
    bw, bh = stats[ok + 1, cv2.CC_STAT_WIDTH], stats[ok + 1, cv2.CC_STAT_HEIGHT]
    aspect = np.maximum(bw, bh) / np.maximum(np.minimum(bw, bh), 1)
    area = area[ok]
    # Like blobs: area within a factor 2 and aspect within a factor 1.6 of each other.
    like = (np.abs(np.log(area[:, None] / area[None])) < np.log(2.0)) & (
        np.abs(np.log(aspect[:, None] / aspect[None])) < np.log(1.6)
    )
    control = like.sum(axis=1) >= cfg.max_handle_blobs
    # Bars are the commonest handles; a round blob beside a bar is a dial, a lock or a logo.
    score = mean_diff * np.sqrt(area) * np.where(aspect >= _BAR_ASPECT, 2.0, 1.0)
    cx, cy = centroids[ok + 1, 0], centroids[ok + 1, 1]
    return [
        _Handle(
            centre=(float((cx[i] + 0.5) / w), float((cy[i] + 0.5) / h)),
            size=(int(bw[i]), int(bh[i])),
            contrast=float(mean_diff[i]),
            score=float(score[i]),
            control=bool(control[i]),
        )
        for i in range(len(ok))
    ]


def _mirrored_pair(cfg: Config, handles: list[_Handle]) -> tuple[_Handle, _Handle] | None:
    """Two upright bar handles mirrored about a panel's vertical centre line, if any."""
    bars = [b for b in handles if b.size[1] >= _BAR_ASPECT * b.size[0] and abs(b.centre[0] - 0.5) < 0.5 - cfg.edge_band]
    for i in range(len(bars)):
        for j in range(i):
            a, b = bars[i], bars[j]
            if (
                abs(a.centre[0] + b.centre[0] - 1.0) < 0.1
                and abs(a.centre[0] - b.centre[0]) > 0.02
                and abs(a.centre[1] - b.centre[1]) < 0.15
                and 0.5 < a.size[1] / b.size[1] < 2.0
            ):
                return (a, b) if a.centre[0] < b.centre[0] else (b, a)
    return None


def _joint_from_handle(
    cfg: Config, face: BoxFace, handle: _Handle | None, rect: tuple[float, float, float, float]
) -> tuple[Literal["revolute", "prismatic"], str | None]:
    """Joint type and hinge side (the panel edge, as seen in the photo) from the handle's place.

    Top face: a lid, hinged at the back (the rectified top edge) unless the handle is there.
    Other faces: a handle far from the centre towards a vertical edge means a door hinged on the
    opposite edge; one near the top (bottom) edge a flap hinged at the bottom (top); a centred
    one a drawer. Without a handle, a wide panel is a drawer and a tall one a door hinged on its
    edge nearer the face's edge.
    """
    width, height = rect[1] - rect[0], rect[3] - rect[2]
    if face.name == "top":
        if handle is not None and handle.centre[1] < cfg.flap_band:
            return "revolute", "bottom"
        return "revolute", "top"
    if handle is None:
        if width / height >= cfg.drawer_aspect:
            return "prismatic", None
        centre_s = 0.5 * (rect[0] + rect[1])
        return "revolute", ("left" if centre_s < 0.5 * face.width else "right")
    dx, dy = handle.centre[0] - 0.5, handle.centre[1] - 0.5
    if abs(dx) >= cfg.edge_band and abs(dx) * width >= abs(dy) * height:
        return "revolute", ("left" if dx > 0 else "right")
    if handle.centre[1] < cfg.flap_band:
        return "revolute", "bottom"
    if handle.centre[1] > 1.0 - cfg.flap_band:
        return "revolute", "top"
    return "prismatic", None


# ---------------------------------------------------------------------------------------------
# Clicks
# ---------------------------------------------------------------------------------------------


def _panel_at_click(cfg: Config, faces: dict[str, _Face], click: tuple[int, int], scale: float) -> _Panel:
    """The panel under an input-photo click, else the seam-bounded region under it."""
    from scipy import ndimage

    x, y = click
    p = np.array([(x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5, 1.0])  # OpenCV pixel coordinates
    for face in faces.values():
        q = np.linalg.solve(face.homography, p)
        if q[2] <= 0:
            continue
        c, r = q[0] / q[2], q[1] / q[2]
        H, W = face.regions.shape
        if not (-0.5 <= c < W - 0.5 and -0.5 <= r < H - 0.5):
            continue
        c, r = int(round(np.clip(c, 0, W - 1))), int(round(np.clip(r, 0, H - 1)))
        for panel in face.panels:
            if panel.mask[r, c]:
                return panel
        # No panel: the cell under the click (the nearest one when it lands on a seam).
        label = face.regions[r, c]
        if label == 0:
            _, (rr, cc) = ndimage.distance_transform_edt(face.regions == 0, return_indices=True)
            label = face.regions[rr[r, c], cc[r, c]]
        if label == 0:
            raise ValueError(f"click ({x}, {y}) lands on face {face.face.name!r}, which holds no region; click inside the object")
        cell = face.cells[label - 1]
        return _make_panel(cfg, face, cell, _handle_blobs(cfg, face, cell))
    raise ValueError(
        f"click ({x}, {y}) lands on no visible face of the object's box (faces analysed: {sorted(faces)}); "
        "click on the part in the photo, in input-photo pixels"
    )


def _check_distinct(panels: list[_Panel], clicks) -> None:
    for i in range(len(panels)):
        for j in range(i):
            if panels[i].face == panels[j].face and panels[i].bbox == panels[j].bbox:
                raise ValueError(
                    f"clicks {tuple(clicks[j])} and {tuple(clicks[i])} pick the same part; give one click per movable part"
                )


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def _to_photo(face: _Face, rect_mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: a rectified-face mask warped into the photo of ``shape``."""
    import cv2

    H, W = shape
    m = rect_mask.astype(np.uint8) * 255
    return cv2.warpPerspective(m, face.homography, (W, H), flags=cv2.INTER_LINEAR, borderValue=0) > 127


def _record(name, path, out_dir, panel: _Panel, face: _Face, click, mask) -> dict:
    """The parts.json entry of one part: what was found and the joint it suggests (base frame)."""
    axis, origin = panel_joint(face.face, panel.rect, panel.joint_type, panel.hinge_side)
    s0, s1, t0, t1 = panel.rect
    corners = face.face.to_base(np.array([s0, s1, s1, s0]), np.array([t0, t0, t1, t1]))
    ys, xs = np.nonzero(mask)
    return {
        "name": name,
        "mask": str(Path(path).relative_to(out_dir)),
        "face": panel.face,
        "joint_type": panel.joint_type,
        "hinge_side": panel.hinge_side,
        "click": list(click) if click is not None else None,
        "confidence": round(panel.confidence, 4),
        "bbox_px": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
        "panel_rect_face_m": [round(v, 5) for v in panel.rect],
        "panel_corners_base": np.round(corners, 5),
        "proposed_axis_base": np.round(axis, 6),
        "proposed_origin_base": np.round(origin, 5),
        "handle_centre": list(panel.handle.centre) if panel.handle else None,
        "controls": panel.controls,
        "rectangularity": round(panel.rectangularity, 4),
        "seam_sides": panel.seam_sides,
        "area_fraction": round(panel.area_fraction, 4),
    }


def _overlay(face: _Face, chosen: list[_Panel]) -> np.ndarray:
    """(H, W, 3) uint8 rectified face: seam evidence tinted red, cells outlined in grey, panels
    in orange (chosen ones in green) with a dot on their handle."""
    import cv2

    out = (face.rgb * 255).astype(np.uint8)
    out[face.seams] = (out[face.seams] // 2 + np.array([127, 0, 0], np.uint8))
    for cell in face.cells:
        c0, r0, c1, r1 = cell.bbox
        cv2.rectangle(out, (c0, r0), (c1 - 1, r1 - 1), (150, 150, 150), 1)
    for panel in face.panels:
        colour = (0, 200, 0) if any(panel is c for c in chosen) else (255, 140, 0)
        c0, r0, c1, r1 = panel.bbox
        cv2.rectangle(out, (c0, r0), (c1 - 1, r1 - 1), colour, 1)
        if panel.handle is not None:
            cx = int(c0 + panel.handle.centre[0] * (c1 - c0))
            cy = int(r0 + panel.handle.centre[1] * (r1 - r0))
            cv2.circle(out, (cx, cy), 3, colour, -1)
    return out
