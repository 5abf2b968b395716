"""Part masks backend "seams": movable panels read from the seams on the object's box faces.

Doors, drawers and lids of box-like objects are rectangular panels set off from the body by
thin straight seams (the dark gap around a panel, or the edge of a panel standing proud). The
photo is rectified face by face with the fitted camera, so that every seam is a row or a column
of the rectified image:

1. seam evidence per direction: a colour step or a thin dark line across it;
2. an XY cut: each cell (first the whole face) is cut along its strongest seam that crosses it
   end to end (coverage, no long break, one surface on each side), until no seam is left;
3. cells of panel size are scored: on the object, bounded by seams, with a handle (a blob that
   stands out from the panel's fitted colour; several like blobs are controls, not a handle);
4. the handle's place gives the joint: far towards a vertical edge, a door hinged on the
   opposite edge; near the top (bottom) edge, a flap hinged at the bottom (top); centred, a
   drawer. Two mirrored handles split a cell into two doors whose seam a proud door hides;
5. a full-width seam near the top of the front face with a handle on the strip above it or on
   the top face, and no panel of its own below, is a box's lid (top face plus edge strips).

With clicks, each click picks the panel, or else the seam-bounded cell, under it; clicks that
share one panel split it between them. Masks are warped back to the photo and cut to the
foreground mask.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stages._shared.box_faces import BoxFace, box_faces, panel_joint, rectify_homography, slab_face
from stages._shared.camera import Camera
from stages._shared.io import read_mask, read_mesh, read_rgb, write_image, write_json
from stages.reconstruct import body_bounds

log = logging.getLogger(__name__)

FaceName = Literal["front", "back", "left", "right", "top"]
#: Luma weights (ITU-R BT.601) for the grey image seams are searched in.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: Sobel 3x3 response to a unit step; dividing by it gives the step's contrast.
_SOBEL_GAIN = 4.0
#: Most pixels used to fit a panel's colour model (a regular subsample).
_FIT_PIXELS = 6000
#: Band along a panel's border (fraction of its shorter side) its base colour is first fitted on.
_BORDER_BAND = 0.15
#: Confidence factor by the number of a panel's sides that are seams (not the face's edge),
#: without and with a handle of its own (a full-face door is bounded by the face's edges).
_SEAM_SIDE_FACTOR = (0.0, 0.3, 0.8, 1.0, 1.0)
_SEAM_SIDE_FACTOR_HANDLED = (0.6, 0.9, 1.0, 1.0, 1.0)
#: Seam evidence is grown along the seam by this many pixels (bridging aliasing dashes).
_BRIDGE_PX = 3
#: Rows on each side of a seam checked to show one surface.
_SIDE_ROWS = 3
#: Widest a handle beside a seam shows across it (bar and standoff seen obliquely), metres.
_HANDLE_DEPTH_M = 0.03
#: Faces turned away from the camera up to this cosine are still rectified (a lid's top seen
#: from just below its plane), showing nothing.
_MAX_HIDDEN_COS = 0.2
#: Largest share of a panel's width (height) a handle spans.
_MAX_HANDLE_SPAN = 0.7
#: Radius range of round doors' glass, fraction of the face's shorter side.
_ROUND_RADIUS = (0.08, 0.45)
#: Least share of a step's gradient along the radius for it to count towards a circle.
_ROUND_RADIAL = 0.9
#: Least share of the panel (or face) around it a round door fills.
_ROUND_FILL = 0.3
#: Hough circles examined per face.
_ROUND_CANDIDATES = 4
#: Farthest a Hough circle's centre is moved to centre its rings, fraction of its radius, and
#: the steps each way.
_ROUND_SHIFT = 0.3
_ROUND_SHIFT_STEPS = 6
#: Half-size of the window whose median colour a clicked handle differs from, fraction of the face's longer side.
_HANDLE_WINDOW = 0.08
#: Seams on both sides of a handle whose midpoint is off the handle by more than this share of
#: their distance are not one panel's: the nearer one is kept and mirrored.
_HANDLE_OFF_CENTRE = 0.25
#: Smallest colour difference (fraction of full intensity) of a clicked pixel from its
#: surroundings for it to be on a handle.
_HANDLE_MIN_CONTRAST = 0.04
#: A panel completed around a clicked handle replaces the click's cell when at most this share of it.
_HANDLE_CELL_SHARE = 0.5
#: Confidence of a hinged panel the reconstruction fitted as a solid of its own (an open laptop's screen).
_HINGED_CONFIDENCE = 0.9
#: A panel starting within this fraction of the face height from its top edge touches the top.
_TOP_TOUCH = 0.05
#: A blob at least this many times longer than wide is a bar (a pull handle), not a knob or a dial.
_BAR_ASPECT = 3.0
#: A seam's evidence must be this many times a face's median evidence across it (its texture).
_TEXTURE_FACTOR = 3.0
#: Farthest a click may land off the faces that show the object, fraction of the photo's longer side.
CLICK_REACH = 0.02
#: Least share of a panel its fitted colour explains (a door's window and handle leave more).
_MIN_SURFACE = 0.4


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
        0.3, gt=0, le=1, description="longest break along a seam, fraction of the cell's width (height) it crosses"
    )
    seam_end_gap: float = Field(
        0.12, ge=0, le=1, description="farthest a seam may stop short of a cell's edge, fraction of the cell's width (height)"
    )
    seam_frame: float = Field(
        0.035,
        ge=0,
        le=0.5,
        description="a seam may always stop this short of a cell's edge (a frame's border), fraction of the face's longer side",
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
        (0.0006, 0.15), description="handle blob area range, fraction of the panel area"
    )
    handle_margin: float = Field(
        0.03, ge=0, lt=0.5, description="band along a panel's border not searched for handles, fraction of its shorter side"
    )
    max_handle_blobs: int = Field(
        3, ge=2, description="this many similar blobs on a panel make it a control panel, not a handled part"
    )
    edge_band: float = Field(
        0.22,
        gt=0,
        lt=0.5,
        description="handle this far from the panel's centre (fraction of its width) or further: a door hinged on the far edge",
    )
    flap_band: float = Field(
        0.16,
        gt=0,
        lt=0.5,
        description="handle this close to the top (bottom) edge, fraction of the height: a flap hinged at the other edge",
    )
    lid_max_height: float = Field(
        0.3, gt=0, lt=1, description="tallest lid edge strip along the front face's top, fraction of the face height"
    )
    drawer_aspect: float = Field(
        1.4, gt=1, description="width / height above which a panel without a handle is taken for a drawer"
    )
    round_support: float = Field(
        0.25, gt=0, le=1, description="share of a round door's rim (or glass) circumference with step evidence"
    )
    min_confidence: float = Field(0.6, ge=0, le=1, description="smallest confidence of an automatically proposed part")
    fallback_confidence: float = Field(
        0.4,
        ge=0,
        le=1,
        description="when no panel reaches min_confidence, the best one is still proposed if its confidence is at "
        "least this (the photo shows an articulated object, so its likeliest part beats none)",
    )


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
    exclusive. rect : (s0, s1, t0, t1) face coordinates, metres. extra : (face name, mask) pairs
    of the part on other faces (a lid's front and side edges).
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
    extra: tuple[tuple[str, np.ndarray], ...] = ()


@dataclass(frozen=True)
class _Cell:
    """A rectangle of a face left between seams. bbox : (c0, r0, c1, r1) pixels, c1/r1 exclusive.
    seam_sides : (top, bottom, left, right) whether that side is a seam (else the face's edge).
    grow : per side, whether a mask of the cell reaches over the seam band there (not where a
    cell was split without a band)."""

    bbox: tuple[int, int, int, int]
    seam_sides: tuple[bool, bool, bool, bool]
    grow: tuple[bool, bool, bool, bool] = (True, True, True, True)


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
    cells: tuple[_Cell, ...]
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
      A click is on no face of the box turned to the camera, several clicks pick one lid, or no
      movable panel is found automatically.
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
    faces = box_faces(*body_bounds(recon, mesh))

    # 2. Rectify the hinged panels the reconstruction found (each is a part, whole), then every
    #    face that faces the camera; find seams and panels on those seen well.
    rectified, analysed = {}, {}
    for k, hinged in enumerate(recon.panels):
        face = _rectify(cfg, slab_face(hinged.box, f"hinged_{k}"), camera, image, fg_mask)
        rectified[face.face.name] = dataclasses.replace(face, panels=(_whole_panel(face),))
    for name in cfg.faces:
        face = faces[name]
        if face.facing(camera) <= -_MAX_HIDDEN_COS or np.any(camera.project(face.corners)[1] <= 0):
            continue
        rectified[name] = _rectify(cfg, face, camera, image, fg_mask)
        if face.facing(camera) >= cfg.min_face_cos and face.projected_area(camera) >= cfg.min_face_area_px:
            analysed[name] = rectified[name] = _analyse(cfg, rectified[name])
    if "front" in analysed:
        rectified = _add_lid(cfg, rectified)
    if not analysed:
        raise ValueError(
            f"no face of the box {np.round(mesh.extents, 3).tolist()} m faces the camera with at least "
            f"{cfg.min_face_area_px:.0f} px^2; check the reconstruct stage's camera"
        )

    # 3. One part per click, or every confident panel.
    scale = float(fg.scale)
    if clicks:
        reach = CLICK_REACH * max(fg_mask.shape)
        hits = [_panel_at_click(cfg, rectified, analysed, (x, y), scale, reach) for x, y in clicks]
        chosen = _separate(cfg, rectified, hits, clicks)
        picked = list(zip(chosen, [tuple(map(int, c)) for c in clicks]))
    else:
        # With hinged panels the body is a slab (a laptop's base): its keyboard and trackpad
        # would pass for panels, so only the hinged panels are proposed; clicks still pick others.
        hinged = [f for f in rectified if f.startswith("hinged_")]
        auto = [p for f in (hinged or cfg.auto_faces) if f in rectified for p in rectified[f].panels]
        confident = [p for p in auto if p.confidence >= cfg.min_confidence]
        best = max(auto, key=lambda p: p.confidence, default=None)
        if not confident and best is not None and best.confidence >= cfg.fallback_confidence:
            log.warning(
                "part_masks: no panel reaches min_confidence %.2f; proposing the likeliest one (%s panel on the %s "
                "face, confidence %.2f); give --click X,Y on each movable part if it is wrong",
                cfg.min_confidence, best.joint_type, best.face, best.confidence,
            )  # fmt: skip
            confident = [best]
        if not confident:
            raise ValueError(
                f"no movable panel found automatically on faces {sorted(set(cfg.auto_faces) & set(rectified))} "
                f"(best confidence {best.confidence if best else 0.0:.2f} < fallback_confidence "
                f"{cfg.fallback_confidence}); give --click X,Y on each movable part, or lower `fallback_confidence`"
            )
        order = {name: k for k, name in enumerate(hinged + list(cfg.auto_faces))}
        confident.sort(key=lambda p: (order[p.face], p.rect[2], p.rect[0]))
        picked = [(p, None) for p in confident]

    # 4. Masks back in the photo, named by kind.
    out_dir = Path(out_dir)
    counters: dict[str, int] = {}
    parts, records = [], []
    for panel, click in picked:
        face = rectified[panel.face]
        kind = "drawer" if panel.joint_type == "prismatic" else ("lid" if panel.face == "top" or panel.face.startswith("hinged_") else "door")
        name = f"{kind}_{counters.get(kind, 0)}"
        counters[kind] = counters.get(kind, 0) + 1
        mask = _to_photo(rectified, panel, fg_mask.shape) & fg_mask
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
        write_image(out_dir / "faces" / f"{name}.png", _overlay(face, rectified, [p for p, _ in picked]))
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


def _rectify(cfg: Config, face: BoxFace, camera: Camera, image: np.ndarray, fg_mask: np.ndarray) -> _Face:
    """Rectify ``face`` from the photo (no seams or panels yet)."""
    import cv2

    # Rectified size: as fine as the face's finest direction in the photo, capped.
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
    if face.facing(camera) <= 0:
        valid[:] = False  # turned away: kept for its geometry (a lid's top), shows nothing
    no_seams, no_regions = np.zeros((H, W), bool), np.zeros((H, W), np.int32)
    return _Face(face, Hm, (face.width / W, face.height / H), rgb, valid, no_seams, no_regions, (), ())


def _whole_panel(face: _Face) -> _Panel:
    """A hinged panel of the reconstruction as a part: the whole face, hinged at its bottom edge
    (the hinge line of ``HingedPanel``); confident, since the shape fit already separated it."""
    H, W = face.valid.shape
    return _Panel(
        face=face.face.name,
        mask=np.ones((H, W), bool),
        bbox=(0, 0, W, H),
        rect=(0.0, face.face.width, 0.0, face.face.height),
        area_fraction=1.0,
        rectangularity=1.0,
        seam_sides=4,
        handle=None,
        controls=False,
        joint_type="revolute",
        hinge_side="bottom",
        confidence=_HINGED_CONFIDENCE,
    )


def _analyse(cfg: Config, face: _Face) -> _Face:
    """Find a rectified face's seams, cells and panels."""
    H, W = face.valid.shape
    horizontal, vertical = _seam_evidence(cfg, face.rgb, face.valid)
    cells = _xy_cut(cfg, face.rgb, horizontal, vertical, face.valid, face.m_per_px)
    regions = np.zeros((H, W), np.int32)
    for k, cell in enumerate(cells):
        c0, r0, c1, r1 = cell.bbox
        regions[r0:r1, c0:c1] = k + 1
    regions[~face.valid] = 0
    face = dataclasses.replace(face, seams=horizontal | vertical, regions=regions, cells=tuple(cells))
    panels = [p for cell in cells if _is_candidate(cfg, face, cell) for p in _cell_panels(cfg, face, cell)]
    if face.face.name != "top":
        # A round door replaces the cell panel around it when it fills a good part of it (a
        # washer's front below its controls), not when it is a dial or a knob on a door.
        face_area = float(face.valid.sum())
        for door in _round_doors(cfg, face):
            c0, r0, c1, r1 = door.bbox
            centre = ((r0 + r1) // 2, (c0 + c1) // 2)
            around = [p for p in panels if p.mask[centre]]
            room = sum(float(p.mask.sum()) for p in around) if around else face_area
            if door.mask.sum() >= _ROUND_FILL * room:
                panels = [p for p in panels if not p.mask[centre]] + [door]
    return dataclasses.replace(face, panels=tuple(panels))


def _seam_evidence(cfg: Config, rgb: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) bool maps of horizontal and vertical seam evidence on a rectified face.

    Evidence across a seam is the larger of the colour step (Sobel, max over channels) and the
    depth of a thin dark line (black top-hat), above ``seam_contrast``; it is thickened across
    the seam by ``seam_tilt`` so that a slightly tilted seam still fills rows or columns, and
    along it by ``_BRIDGE_PX`` so that an aliased, dashed faint edge becomes a line.
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
    across_h, across_v = np.maximum(step_y, dark_h), np.maximum(step_x, dark_v)
    horizontal = ((across_h > _seam_threshold(cfg, across_h, inside)) & inside).astype(np.uint8)
    vertical = ((across_v > _seam_threshold(cfg, across_v, inside)) & inside).astype(np.uint8)
    d = 2 * max(1, int(round(cfg.seam_tilt * max(H, W)))) + 1
    horizontal = cv2.dilate(horizontal, np.ones((d, _BRIDGE_PX), np.uint8)).astype(bool) & valid
    vertical = cv2.dilate(vertical, np.ones((_BRIDGE_PX, d), np.uint8)).astype(bool) & valid
    return horizontal, vertical


def _seam_threshold(cfg: Config, evidence: np.ndarray, inside: np.ndarray) -> float:
    """Least evidence of a seam across one direction: ``seam_contrast``, or more on a textured
    surface (wood grain, brushed metal), where a seam must stand out from the grain's own lines:
    ``_TEXTURE_FACTOR`` times the face's median evidence (a seam covers few of its pixels)."""
    if not inside.any():
        return cfg.seam_contrast
    return max(cfg.seam_contrast, _TEXTURE_FACTOR * float(np.median(evidence[inside])))


def _xy_cut(
    cfg: Config,
    rgb: np.ndarray,
    horizontal: np.ndarray,
    vertical: np.ndarray,
    valid: np.ndarray,
    m_per_px: tuple[float, float],
) -> list[_Cell]:
    """Split a face into cells along seams that cross a whole cell, strongest seam first.

    Each step cuts a cell along its single strongest seam (the row or column band of highest
    coverage) and goes on with the two sides. A seam is so always judged across the cell it
    must split: drawers stacked in one column beside a door are found, and a door's window
    edge that lines up with a row of buttons elsewhere on the face is not taken for a seam.
    """
    H, W = valid.shape
    frame_px = cfg.seam_frame * max(H, W)
    # A pull bar lies along a rail (a flap's, a drawer's); knobs side by side in a control
    # strip would pass for vertical seams if their far side counted.
    handle_px = int(np.ceil(_HANDLE_DEPTH_M / m_per_px[1]))
    cells = []
    stack = [((0, 0, W, H), (False, False, False, False))]
    while stack:  # loop over cells (a few dozen per face)
        (c0, r0, c1, r1), sides = stack.pop()
        v = valid[r0:r1, c0:c1]
        rgb_cell = rgb[r0:r1, c0:c1]
        bands = [
            (s, a, b, "row") for s, a, b in _cut_bands(cfg, horizontal[r0:r1, c0:c1], v, rgb_cell, frame_px, handle_px)
        ]
        bands += [
            (s, a, b, "col")
            for s, a, b in _cut_bands(cfg, vertical[r0:r1, c0:c1].T, v.T, rgb_cell.transpose(1, 0, 2), frame_px, 0)
        ]
        if not bands:
            cells.append(_Cell((c0, r0, c1, r1), sides))
            continue
        _, a, b, kind = max(bands)
        top, bottom, left, right = sides
        n = r1 - r0 if kind == "row" else c1 - c0
        if kind == "row":
            if a > 0:
                stack.append(((c0, r0, c1, r0 + a), (top, True, left, right)))
            if b < n:
                stack.append(((c0, r0 + b, c1, r1), (True, bottom, left, right)))
        else:
            if a > 0:
                stack.append(((c0, r0, c0 + a, r1), (top, bottom, left, True)))
            if b < n:
                stack.append(((c0 + b, r0, c1, r1), (top, bottom, True, right)))
    return sorted(cells, key=lambda cell: (cell.bbox[1], cell.bbox[0]))


def _cut_bands(
    cfg: Config, evidence: np.ndarray, valid: np.ndarray, rgb: np.ndarray, frame_px: float, handle_px: int
) -> list[tuple[float, int, int]]:
    """Runs ``[a, b)`` of rows of ``evidence`` (h, w) that are seams across the whole width,
    each with its strength (the best coverage in the run).

    A row is a seam when evidence covers ``seam_coverage`` of its valid pixels, starts and ends
    within ``seam_end_gap`` of the row's ends or ``frame_px`` pixels (a panel's seam stops only
    at a frame's border) and breaks for no more than ``seam_max_gap`` in between (a handle may
    hide a stretch). A run
    of such rows is kept when each side of it is one surface along its length (``rgb`` (h, w, 3)
    is the cell's image): a window's edge has the window on one side for part of its length
    and the door for the rest, a seam has one panel on each side. A side is also one surface
    when it is so ``handle_px`` rows further on: a handle beside the seam ends there, a window
    does not.
    """
    h, w = evidence.shape
    if h < 3 or w < 3:
        return []
    n_valid = valid.sum(axis=1)
    cover = evidence.sum(axis=1) / np.maximum(n_valid, 1)
    hit = evidence | ~valid  # off-object pixels neither start, end nor break a seam
    cols = np.arange(w)
    # The ends are judged inside the frame band: evidence at a face's very sides (its outline,
    # a proud panel's edge) does not make a handle's edge in the middle reach them.
    fp = int(min(frame_px, w // 4))
    inner = hit.copy()
    inner[:, :fp] = inner[:, w - fp:] = False
    any_hit = inner.any(axis=1)
    first = np.where(any_hit, np.argmax(inner, axis=1), w)
    last = np.where(any_hit, w - 1 - np.argmax(inner[:, ::-1], axis=1), -1)
    previous = np.maximum.accumulate(np.where(hit, cols, -1), axis=1)  # last hit at or before each column
    inner_gap = np.max(np.where(cols <= last[:, None], cols - previous - 1, 0), axis=1)
    end_gap = np.maximum(first, w - 1 - last)
    cut = (cover >= cfg.seam_coverage) & (n_valid >= 0.5 * w)
    cut &= (end_gap <= max(cfg.seam_end_gap * w, frame_px)) & (inner_gap <= cfg.seam_max_gap * w)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], cut.astype(np.int8), [0]])))

    def side(lo: int, hi: int, beyond: int) -> bool:
        """Whether rows [lo, hi) are one surface, or the rows ``beyond`` further are; where those
        leave the cell, a handle may fill the rows up to its edge (a lid's edge strip)."""
        if _one_surface(cfg, rgb[max(0, lo):hi], valid[max(0, lo):hi]):
            return True
        if beyond == 0:
            return False
        lo, hi = lo + beyond, hi + beyond
        return not (0 <= lo and hi <= h) or _one_surface(cfg, rgb[lo:hi], valid[lo:hi])

    bands = []
    for a, b in zip(edges[::2], edges[1::2]):  # loop over seam candidates (a few per cell)
        if side(a - _SIDE_ROWS, a, -handle_px) and side(b, b + _SIDE_ROWS, handle_px):
            bands.append((float(cover[a:b].max()), int(a), int(b)))
    return bands


def _one_surface(cfg: Config, strip: np.ndarray, valid: np.ndarray) -> bool:
    """Whether a strip (k, w, 3) along a seam shows one surface: at most ``seam_max_gap`` of its
    columns differ from its median colour by more than ``handle_contrast``."""
    if strip.shape[0] == 0:
        return True  # the seam runs along the cell's edge
    seen = valid.all(axis=0)
    if seen.mean() < 0.5:
        return True  # mostly off the object: the seam runs along the object's outline
    colours = strip.mean(axis=0)[seen]  # (n, 3) mean colour per column
    off = np.abs(colours - np.median(colours, axis=0)).max(axis=1) > cfg.handle_contrast
    return bool(off.mean() <= cfg.seam_max_gap)


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

    Two like handles mirrored about the cell's vertical centre line mean two doors meeting
    there (hinged on the outer edges) or two drawers side by side, even when the seam between
    them does not show (a proud door hides it from an oblique view): the cell is split midway
    between the handles.
    """
    blobs = _handle_blobs(cfg, face, cell)
    handles = [b for b in blobs if not b.control]
    pair = _mirrored_pair(handles)
    if pair is None:
        return [_make_panel(cfg, face, cell, blobs)]
    c0, r0, c1, r1 = cell.bbox
    split = c0 + int(round(0.5 * (pair[0].centre[0] + pair[1].centre[0]) * (c1 - c0)))
    top, bottom, left, right = cell.seam_sides
    gt, gb, gl, gr = cell.grow
    halves = [
        _Cell((c0, r0, split, r1), (top, bottom, left, True), (gt, gb, gl, False)),
        _Cell((split, r0, c1, r1), (top, bottom, True, right), (gt, gb, False, gr)),
    ]
    return [_make_panel(cfg, face, half, _handle_blobs(cfg, face, half)) for half in halves]


def _main_handle(handles: list[_Handle]) -> _Handle | None:
    """The blob that opens the panel: a bar if there is one (a safe's pull beside its round
    dial), else the most salient."""
    if not handles:
        return None
    bars = [b for b in handles if max(b.size) >= _BAR_ASPECT * max(min(b.size), 1)]
    return max(bars or handles, key=lambda b: b.score)


def _make_panel(cfg: Config, face: _Face, cell: _Cell, blobs: list[_Handle]) -> _Panel:
    """Score one cell and guess its joint from its handle."""
    H, W = face.valid.shape
    c0, r0, c1, r1 = cell.bbox
    sm, st = face.m_per_px
    rect = (c0 * sm, c1 * sm, r0 * st, r1 * st)
    # The mask reaches over the seam bands around the cell (half of each, the tilt allowance).
    g = max(1, int(round(cfg.seam_tilt * max(H, W)))) + 1
    top, bottom, left, right = (g * grow for grow in cell.grow)
    mask = np.zeros((H, W), bool)
    mask[max(0, r0 - top):r1 + bottom, max(0, c0 - left):c1 + right] = True
    mask &= face.valid
    rectangularity = float(face.valid[r0:r1, c0:c1].mean())

    handles = [b for b in blobs if not b.control]
    controls = len(handles) < len(blobs)
    handle = _main_handle(handles)
    joint_type, hinge_side = _joint_from_handle(cfg, face.face, handle, rect)

    area_fraction = float(face.valid[r0:r1, c0:c1].sum()) / float(face.valid.sum())
    size_ok = area_fraction <= cfg.max_panel_area or handle is not None
    rect_score = float(np.clip((rectangularity - cfg.min_rectangularity) / (0.95 - cfg.min_rectangularity), 0, 1))
    # A handle at a panel's bottom edge is as often a pedal or a plinth detail, unless seams
    # close the panel on all four sides (a flap hinged at its top); one cut by its top edge is a
    # lid's tab reaching over the seam onto the box's wall.
    n_seams = int(sum(cell.seam_sides))
    flip_up = joint_type == "revolute" and hinge_side == "top" and face.face.name != "top" and n_seams < 4
    handled = handle is not None and not flip_up and not _touches_top(handle, cell)
    factor = (_SEAM_SIDE_FACTOR_HANDLED if handled else _SEAM_SIDE_FACTOR)[n_seams]
    confidence = (0.5 * handled + 0.25 * rect_score + 0.25 * size_ok) * factor
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


def _round_doors(cfg: Config, face: _Face) -> list[_Panel]:
    """Round doors (a washer's): a circle (the glass or the rim) and the outermost concentric
    ring with its edge showing (the rim); the disc is the panel.

    Circles come from a Hough transform of the rectified face; among the concentric rings of
    0.5 to 2 times their radius, one (the glass) must have radial step evidence all along twice
    ``round_support`` of its circumference, and the outermost with ``round_support`` is the
    door's rim. The handle on the
    disc gives the hinge, as on any panel; a disc without one is a window or a dial.
    """
    import cv2

    H, W = face.valid.shape
    n = min(H, W)
    grey = cv2.GaussianBlur(face.rgb, (0, 0), 1.0) @ _LUMA
    found = cv2.HoughCircles(
        np.clip(grey * 255, 0, 255).astype(np.uint8), cv2.HOUGH_GRADIENT, dp=1.5, minDist=0.3 * n,
        param1=60, param2=30, minRadius=int(_ROUND_RADIUS[0] * n), maxRadius=int(_ROUND_RADIUS[1] * n),
    )
    if found is None:
        return []
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / _SOBEL_GAIN
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / _SOBEL_GAIN
    angles = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    cos, sin = np.cos(angles), np.sin(angles)

    def support(cx: np.ndarray, cy: np.ndarray, radii: np.ndarray) -> np.ndarray:
        """(K, R) share of the points of each circle about each of K centres with a step across
        it above seam_contrast."""
        x = np.rint(cx[:, None, None] + radii[:, None] * cos).astype(int)  # (K, R, 180)
        y = np.rint(cy[:, None, None] + radii[:, None] * sin).astype(int)
        inside = (x >= 0) & (x < W) & (y >= 0) & (y < H)
        xi, yi = np.clip(x, 0, W - 1), np.clip(y, 0, H - 1)
        gxs, gys = gx[yi, xi], gy[yi, xi]
        radial = np.abs(gxs * cos + gys * sin)
        # Edges crossing the ring obliquely (a window's sides, a handle) do not count.
        along = radial >= _ROUND_RADIAL * np.hypot(gxs, gys)
        return np.mean((radial > cfg.seam_contrast) & along & inside & face.valid[yi, xi], axis=2)

    doors = []
    for cx, cy, r in found[0][:_ROUND_CANDIDATES]:  # loop over a few circle candidates
        radii = np.linspace(0.5 * r, 2.0 * r, 61)
        # Hough's centre may be the partly seen rim's; the rings are centred on the best circle
        # near it (the glass, whole on every door).
        shift = np.linspace(-_ROUND_SHIFT * r, _ROUND_SHIFT * r, 2 * _ROUND_SHIFT_STEPS + 1)
        ox, oy = (v.ravel() for v in np.meshgrid(shift, shift))
        rings = support(cx + ox, cy + oy, radii)
        best = int(np.argmax(rings.max(axis=1)))
        cx, cy, ring = cx + ox[best], cy + oy[best], rings[best]
        if ring.max() < 2 * cfg.round_support:  # no clearly round edge (a square's inscribed circle)
            continue
        rho = float(radii[np.flatnonzero(ring >= cfg.round_support).max()])  # the outermost ring: the rim
        rr, cc = np.ogrid[:H, :W]
        disc = ((cc - cx) ** 2 + (rr - cy) ** 2 <= rho**2) & face.valid
        if disc.sum() < cfg.min_panel_area * face.valid.sum() or any(d.mask[int(cy), int(cx)] for d in doors):
            continue
        c0, r0 = max(0, int(cx - rho)), max(0, int(cy - rho))
        c1, r1 = min(W, int(np.ceil(cx + rho)) + 1), min(H, int(np.ceil(cy + rho)) + 1)
        cell = _Cell((c0, r0, c1, r1), (True,) * 4)
        panel = _make_panel(cfg, face, cell, _handle_blobs(cfg, face, cell))
        if panel.handle is None:
            # A rim that hardly shows (same colour as the body) leaves only the glass: the door
            # then reaches out to a handle just beyond it.
            rho = _rim_to_handle(cfg, face, cx, cy, rho)
            disc = ((cc - cx) ** 2 + (rr - cy) ** 2 <= rho**2) & face.valid
            c0, r0 = max(0, int(cx - rho)), max(0, int(cy - rho))
            c1, r1 = min(W, int(np.ceil(cx + rho)) + 1), min(H, int(np.ceil(cy + rho)) + 1)
            cell = _Cell((c0, r0, c1, r1), (True,) * 4)
            panel = _make_panel(cfg, face, cell, _handle_blobs(cfg, face, cell))
        if panel.handle is None or panel.joint_type != "revolute":
            continue  # a round window, a dial or a porthole, not a door
        doors.append(dataclasses.replace(panel, mask=disc, rectangularity=float(disc.sum()) / ((c1 - c0) * (r1 - r0))))
    return doors


#: A round door's rim reaches at most this many times the radius of its glass.
_ROUND_RIM_REACH = 1.6


def _rim_to_handle(cfg: Config, face: _Face, cx: float, cy: float, rho: float) -> float:
    """Radius (rectified px) of a round door whose rim is not seen: out to the far side of the
    strongest handle within ``_ROUND_RIM_REACH`` x ``rho`` of the centre, or ``rho`` if none."""
    H, W = face.valid.shape
    reach = _ROUND_RIM_REACH * rho
    c0, r0 = max(0, int(cx - reach)), max(0, int(cy - reach))
    c1, r1 = min(W, int(np.ceil(cx + reach)) + 1), min(H, int(np.ceil(cy + reach)) + 1)
    handles = [b for b in _handle_blobs(cfg, face, _Cell((c0, r0, c1, r1), (True,) * 4)) if not b.control]
    if not handles:
        return rho
    handle = _main_handle(handles)
    hx, hy = c0 + handle.centre[0] * (c1 - c0), r0 + handle.centre[1] * (r1 - r0)
    far = float(np.hypot(hx - cx, hy - cy)) + 0.5 * max(handle.size) + 1.0
    return float(np.clip(far, rho, reach))


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
    if fit.sum() < _MIN_SURFACE * own.sum():
        return []  # several surfaces (a control strip beside the body), not one panel with a handle

    inner = np.zeros((h, w), bool)
    inner[margin:h - margin, margin:w - margin] = own[margin:h - margin, margin:w - margin]
    n, lab, stats, centroids = cv2.connectedComponentsWithStats(
        ((diff > cfg.handle_contrast) & inner).astype(np.uint8), connectivity=8
    )
    area = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    panel_area = float(own.sum())
    bw_all, bh_all = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    ok = np.flatnonzero(
        (area >= max(6.0, cfg.handle_area[0] * panel_area))
        & (area <= cfg.handle_area[1] * panel_area)
        & (bw_all <= _MAX_HANDLE_SPAN * w)  # slivers along a whole edge are shading, not handles
        & (bh_all <= _MAX_HANDLE_SPAN * h)
    )
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
    compact = aspect < _BAR_ASPECT  # buttons and knobs; slivers along an edge are not controls
    control = compact & ((like & compact[None]).sum(axis=1) >= cfg.max_handle_blobs)
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


def _mirrored_pair(handles: list[_Handle]) -> tuple[_Handle, _Handle] | None:
    """Two like handles mirrored about a panel's vertical centre line, if any.

    Two doors meeting in the middle (or two drawers side by side) carry their handles so; a
    proud door hides the seam between them from an oblique view, the handles still show.
    """
    for i in range(len(handles)):
        for j in range(i):
            a, b = handles[i], handles[j]
            if (
                abs(a.centre[0] + b.centre[0] - 1.0) < 0.1
                and abs(a.centre[0] - b.centre[0]) > 0.1
                and abs(a.centre[1] - b.centre[1]) < 0.15
                and all(0.5 < sa / sb < 2.0 for sa, sb in zip(a.size, b.size))
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
    one a drawer. Without a handle, a panel filling the face's top over its width is a raised
    lid hinged at its bottom (a laptop's screen), a wide panel is a drawer and a tall one a door
    hinged on its edge nearer the face's edge.
    """
    width, height = rect[1] - rect[0], rect[3] - rect[2]
    if face.name == "top":
        if handle is not None and handle.centre[1] < cfg.flap_band:
            return "revolute", "bottom"
        return "revolute", "top"
    if handle is None:
        s0, s1, t0, t1 = rect
        if t0 <= _TOP_TOUCH * face.height and s1 - s0 >= 0.85 * face.width and t1 - t0 >= 0.35 * face.height:
            return "revolute", "bottom"  # a raised lid filling the top of the face (a laptop's screen)
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


def _add_lid(cfg: Config, faces: dict[str, _Face]) -> dict[str, _Face]:
    """Add a lid panel when a full-width seam runs near the top of the front face.

    A box's lid shows as its top face plus a thin strip along the top of the front (and side)
    faces above a seam; the lid panel has masks on all of them and is hinged at the back. Its
    handle is a tab hanging over the seam or a knob on the top face. Without either, or when the
    front below carries confident panels of its own, it stays below the automatic confidence
    threshold (a cabinet's top board looks the same).
    """
    front, top = faces["front"], faces.get("top")
    if top is None:
        return faces
    H, W = front.valid.shape
    g = max(1, int(round(cfg.seam_tilt * max(H, W)))) + 1
    below = [
        cell for cell in front.cells
        if cell.seam_sides[0] and 0 < cell.bbox[1] <= cfg.lid_max_height * H and (cell.bbox[2] - cell.bbox[0]) >= 0.85 * W
    ]
    # The lowest such seam with no confident panel above it (a lid's edge may show two seams);
    # a panel starting at the face's top edge is the lid's own edge strip, not a drawer.
    seams = [cell.bbox[1] for cell in below]
    seams = [s for s in seams if not any(g < p.bbox[1] < s and p.confidence >= cfg.min_confidence for p in front.panels)]
    if not seams:
        return faces
    seam = max(seams)  # first row under the lid's seam
    thickness = seam * front.m_per_px[1]  # metres, down from the top edge

    # Masks: the whole top face, and the strip over the seam on the front and side faces.
    extra = []
    for name in ("front", "left", "right"):
        if name in faces:
            f = faces[name]
            rows = int(np.ceil(thickness / f.m_per_px[1]))
            m = np.zeros_like(f.valid)
            m[:rows] = f.valid[:rows]
            extra.append((name, m))
    h_top, w_top = top.valid.shape
    top_blobs = _handle_blobs(cfg, top, _Cell((0, 0, w_top, h_top), (False,) * 4))
    blobs = _strip_handles(cfg, front, min(H, 2 * seam + g)) + top_blobs  # a tab may hang over the seam
    handles = [b for b in blobs if not b.control]
    handle = _main_handle(handles)
    # Hinged at the back edge unless the handle sits on the top face near that edge.
    on_top = handle is not None and any(handle is b for b in top_blobs)
    hinge = "bottom" if on_top and handle.centre[1] < cfg.flap_band else "top"
    # A front that carries confident panels of its own (doors, drawers, a flap) is not a box's
    # wall: its top strip is a frame or a top board, and the lid stays a click-only candidate.
    rest = tuple(p for p in front.panels if p.bbox[1] >= seam)
    front_opening = any(p.confidence >= cfg.min_confidence for p in rest)
    confidence = 0.5 * (handle is not None and not front_opening) + 0.5
    lid = _Panel(
        face="top",
        mask=top.valid.copy(),
        bbox=(0, 0, w_top, h_top),
        rect=(0.0, top.face.width, 0.0, top.face.height),
        area_fraction=1.0,
        rectangularity=float(top.valid.mean()),
        seam_sides=2,
        handle=handle,
        controls=len(handles) < len(blobs),
        joint_type="revolute",
        hinge_side=hinge,
        confidence=confidence,
        extra=tuple(extra),
    )
    return {**faces, "front": dataclasses.replace(front, panels=rest), "top": dataclasses.replace(top, panels=(lid,))}


def _strip_handles(cfg: Config, face: _Face, rows: int) -> list[_Handle]:
    """Handle-like blobs on the top ``rows`` rows of a face (a lid's edge, the seam under it and
    a little of the wall below).

    A lid's edge is a few pixels tall and its handle may fill it and hang over the seam, so the
    panel colour model of ``_handle_blobs`` (one surface, handles small inside it) does not
    hold there. Every horizontal band of the strip (the edge, the seam line, the wall) is one
    colour along its row, so a pixel belongs to a handle when it differs from its row's median
    colour by more than ``handle_contrast``. A handle lies along the lid's edge: a blob narrower
    than tall (a grain line, the face's outline) or a single row (shading) is not one. ``centre``
    is relative to the strip (the face's width, ``rows``).
    """
    import cv2
    from scipy import ndimage

    valid = face.valid[:rows]
    strip = np.where(valid[..., None], face.rgb[:rows].astype(np.float64), np.nan)
    h, w = valid.shape
    seen = valid.any(axis=1)
    if seen.sum() < 2 or w < 3:
        return []
    rows_seen = strip[seen]
    diff = np.zeros((h, w))
    row_colour = np.nanmedian(rows_seen, axis=1, keepdims=True)  # (rows seen, 1, 3)
    diff[seen] = np.nan_to_num(np.abs(rows_seen - row_colour).max(axis=2), nan=0.0)
    off = diff > cfg.handle_contrast
    off[:, :1] = off[:, w - 1:] = False  # the face's outline
    _, lab, stats, _ = cv2.connectedComponentsWithStats(off.astype(np.uint8), connectivity=8)
    x, y, bw, bh, area = stats[1:].T
    ok = np.flatnonzero((area >= 6) & (bh >= 2) & (bw >= bh) & (bw <= _MAX_HANDLE_SPAN * w))
    if len(ok) == 0:
        return []
    contrast = np.asarray(ndimage.mean(diff, lab, ok + 1))
    bar = bw[ok] >= _BAR_ASPECT * bh[ok]
    score = contrast * np.sqrt(area[ok]) * np.where(bar, 2.0, 1.0)
    return [
        _Handle(
            centre=(float((x[i] + 0.5 * bw[i]) / w), float((y[i] + 0.5 * bh[i]) / h)),
            size=(int(bw[i]), int(bh[i])),
            contrast=float(contrast[j]),
            score=float(score[j]),
            control=False,
        )
        for j, i in enumerate(ok)
    ]


def _touches_top(handle: _Handle, cell: _Cell) -> bool:
    """Whether a handle reaches a cell's top edge (a lid's tab reaching over the seam)."""
    c0, r0, c1, r1 = cell.bbox
    top = handle.centre[1] * (r1 - r0) - 0.5 * handle.size[1]
    return bool(top <= 2 + _BORDER_BAND * 0.25 * min(r1 - r0, c1 - c0))


# ---------------------------------------------------------------------------------------------
# Clicks
# ---------------------------------------------------------------------------------------------


def _panel_at_click(
    cfg: Config,
    rectified: dict[str, _Face],
    analysed: dict[str, _Face],
    click: tuple[int, int],
    scale: float,
    reach: float,
) -> tuple[_Panel, str, tuple[int, int]]:
    """The panel under an input-photo click (else the seam-bounded cell under it), the face the
    click lands on and its rectified pixel (row, column) there.

    ``rectified`` holds every face turned to the camera, ``analysed`` those searched for panels;
    a click on a face seen too obliquely to be searched gets that face searched now. A click
    up to ``reach`` working-image pixels off the faces that show the object (on a lid's rim
    just outside the fitted box) goes to the nearest one's edge.
    """
    from scipy import ndimage

    x, y = click
    p = np.array([(x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5, 1.0])  # OpenCV pixel coordinates
    hit = _face_under(rectified, p, reach)
    if hit is None:
        raise ValueError(
            f"click ({x}, {y}) lands on no face of the object's box turned to the camera ({sorted(rectified)}); "
            "click on the part in the photo, in input-photo pixels"
        )
    name, r, c = hit
    face = rectified[name]
    # A panel with a mask on this face (lids reach over several faces).
    for panel in (pn for f in rectified.values() for pn in f.panels):
        masks = dict(((panel.face, panel.mask),) + panel.extra)
        if name in masks and masks[name][r, c]:
            return panel, name, (r, c)
    # No panel: the cell under the click (the nearest one when it lands on a seam).
    face = analysed[name] if name in analysed else _analyse(cfg, face)
    label = face.regions[r, c]
    if label == 0 and face.regions.any():
        _, (rr, cc) = ndimage.distance_transform_edt(face.regions == 0, return_indices=True)
        label = face.regions[rr[r, c], cc[r, c]]
    if label == 0:
        raise ValueError(f"click ({x}, {y}) lands on face {name!r}, which shows none of the object; click on the part")
    rectified[name] = face
    cell = face.cells[label - 1]
    if sum(cell.seam_sides) < 4:  # open on a side: the panel may show only part of its outline
        around = _cell_around_handle(cfg, face, r, c)
        if around is not None and _area(around.bbox) <= _HANDLE_CELL_SHARE * _area(cell.bbox):
            cell = around
    return _make_panel(cfg, face, cell, _handle_blobs(cfg, face, cell)), name, (r, c)


def _face_under(rectified: dict[str, _Face], p: np.ndarray, reach: float) -> tuple[str, int, int] | None:
    """The face showing the object whose rectangle holds the photo point ``p`` (homogeneous
    working-image pixels) and its rectified (row, column) there, the first such in order; else
    the face whose rectangle comes nearest to it, within ``reach`` pixels, the point moved onto
    its edge; else None. Faces turned away (showing nothing) are passed over."""
    best = None
    for name, face in rectified.items():  # loop over faces (at most six)
        if not face.valid.any():
            continue
        q = np.linalg.solve(face.homography, p)
        if q[2] <= 0:
            continue
        H, W = face.valid.shape
        c, r = np.clip(q[0] / q[2], 0, W - 1), np.clip(q[1] / q[2], 0, H - 1)
        back = face.homography @ np.array([c, r, 1.0])
        off = float(np.hypot(*(back[:2] / back[2] - p[:2])))
        # A later face must come nearer by half a pixel: where faces meet (off ~ 0 on both), the first wins.
        if best is None or off < best[0] - 0.5:
            best = (off, name, int(round(r)), int(round(c)))
    if best is None or best[0] > reach:
        return None
    return best[1], best[2], best[3]


def _cell_around_handle(cfg: Config, face: _Face, r: int, c: int) -> _Cell | None:
    """The panel around a clicked handle whose outline shows on some sides only (a washer's
    detergent drawer lit from one side: its top and left seams dark, the others invisible).

    The handle is the blob of colours off the click's surroundings (by ``handle_contrast``, or
    half the clicked pixel's difference if less) under the click. From it, the nearest seam (evidence over ``seam_coverage`` of a band as
    long as three handle sizes) is sought on each side; a side without one mirrors the opposite
    side about the handle, which sits centred on its panel. None when the click is on no
    handle-sized blob, or no seam bounds the handle on either side of an axis.
    """
    from scipy import ndimage

    H, W = face.valid.shape
    reach = max(8, int(round(_HANDLE_WINDOW * max(H, W))))
    window = (slice(max(0, r - reach), r + reach + 1), slice(max(0, c - reach), c + reach + 1))
    if not face.valid[window].any():
        return None
    surround = np.median(face.rgb[window][face.valid[window]], axis=0)
    difference = np.abs(face.rgb - surround).max(axis=2)
    # The user points at the handle: on a dark body a dark slot differs less than
    # handle_contrast, so half the clicked pixel's own difference will do.
    if difference[r, c] < _HANDLE_MIN_CONTRAST:
        return None
    off = (difference > min(cfg.handle_contrast, 0.5 * difference[r, c])) & face.valid
    blobs, _ = ndimage.label(off)
    rows, cols = np.nonzero(blobs == blobs[r, c])
    if len(rows) > cfg.handle_area[1] * _HANDLE_CELL_SHARE * face.valid.sum():
        return None  # a window or a dark panel, not a handle
    hr0, hr1, hc0, hc1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    hh, hw = hr1 - hr0, hc1 - hc0
    gap = 2 * max(1, int(round(cfg.seam_tilt * max(H, W)))) + 2  # clear of the handle's own outline
    band_rows = slice(max(0, hr0 - hh), hr1 + hh)
    band_cols = slice(max(0, hc0 - hw), hc1 + hw)
    column_seam = face.seams[band_rows].mean(axis=0) >= cfg.seam_coverage  # (W,) a vertical seam beside the handle
    row_seam = face.seams[:, band_cols].mean(axis=1) >= cfg.seam_coverage  # (H,)

    def nearest(seam: np.ndarray, start: int, step: int) -> int | None:
        """Middle of the first seam band from ``start`` going ``step`` (+1 or -1), None if none."""
        ahead = seam[start:] if step > 0 else seam[: max(start + 1, 0)][::-1]
        hits = np.flatnonzero(ahead) if 0 <= start < len(seam) else []
        if not len(hits):
            return None
        ends = np.flatnonzero(~ahead[hits[0]:])
        width = int(ends[0]) if len(ends) else len(ahead) - int(hits[0])
        return start + step * (int(hits[0]) + width // 2)

    def bounds(seam: np.ndarray, lo: int, hi: int) -> tuple[int, int, bool, bool] | None:
        """The panel's extent along one axis around the handle [lo, hi) and which ends are seams."""
        a, b = nearest(seam, lo - gap, -1), nearest(seam, hi + gap, 1)
        centre = (lo + hi) / 2
        if a is not None and b is not None and abs((a + b) / 2 - centre) > _HANDLE_OFF_CENTRE * (b - a):
            # Far off-centre: the farther seam belongs to something else (a door below).
            a, b = (a, None) if centre - a < b - centre else (None, b)
        if a is None and b is None:
            return None
        start = a + 1 if a is not None else int(round(2 * centre - b))
        stop = b if b is not None else int(round(2 * centre - (a + 1)))
        return max(0, start), min(len(seam), stop), a is not None, b is not None

    across, down = bounds(column_seam, hc0, hc1), bounds(row_seam, hr0, hr1)
    if across is None or down is None:
        return None
    c0, c1, left, right = across
    r0, r1, top, bottom = down
    if c1 - c0 < 2 * hw or r1 - r0 < hh + 2:
        return None
    found = (top, bottom, left, right)
    return _Cell(bbox=(int(c0), int(r0), int(c1), int(r1)), seam_sides=found, grow=found)


def _area(bbox: tuple[int, int, int, int]) -> int:
    c0, r0, c1, r1 = bbox
    return (c1 - c0) * (r1 - r0)


def _separate(cfg: Config, faces: dict[str, _Face], hits: list, clicks) -> list[_Panel]:
    """One panel per click: clicks that landed on one panel split it between them.

    The user knows better than the seams: two clicks on what looked like one panel are two
    parts whose seam did not show. The panel's cell is cut, recursively, between the two
    farthest clicks along the axis they differ most on, at the row (column) of strongest seam
    evidence between them when it crosses half the cell (their midpoint otherwise).
    """
    panels = [h[0] for h in hits]
    groups: dict[tuple, list[int]] = {}
    for k, (panel, _, _) in enumerate(hits):
        groups.setdefault((panel.face, panel.bbox, len(panel.extra)), []).append(k)
    for members in groups.values():
        if len(members) == 1:
            continue
        panel, name, _ = hits[members[0]]
        if panel.extra or name != panel.face:
            raise ValueError(
                f"clicks {[tuple(clicks[k]) for k in members]} all pick the part on face {panel.face!r} "
                "that spans several faces; give one click per movable part"
            )
        face = faces[name]
        points = {k: hits[k][2] for k in members}
        for k, cell in _split_cell(face, _Cell(panel.bbox, (True,) * 4), points).items():
            panels[k] = _make_panel(cfg, face, cell, _handle_blobs(cfg, face, cell))
    return panels


def _split_cell(face: _Face, cell: _Cell, points: dict[int, tuple[int, int]]) -> dict[int, _Cell]:
    """Cells, one per point (row, column), cut from ``cell`` between the points."""
    if len(points) == 1:
        return {k: cell for k in points}
    c0, r0, c1, r1 = cell.bbox
    keys = list(points)
    rc = np.array([points[k] for k in keys], dtype=np.float64)  # (n, 2) rows, columns
    spread = (rc.max(axis=0) - rc.min(axis=0)) / np.array([r1 - r0, c1 - c0])
    axis = int(np.argmax(spread))  # 0: cut along a row, 1: along a column
    lo, hi = int(rc[:, axis].min()), int(rc[:, axis].max())
    if hi - lo < 2:
        raise ValueError(
            f"clicks at rectified pixels {rc.astype(int).tolist()} are too close to tell apart; click once per part"
        )
    evidence = face.seams[r0:r1, c0:c1]
    cover = evidence.mean(axis=1 - axis)  # per row (axis 0) or column (axis 1)
    start = r0 if axis == 0 else c0
    between = cover[lo + 1 - start:hi - start]
    best = int(np.argmax(between))
    cut = lo + 1 + best if between[best] >= 0.5 else (lo + hi + 1) // 2  # a seam's trace, else halfway
    top, bottom, left, right = cell.seam_sides
    gt, gb, gl, gr = cell.grow
    if axis == 0:
        first = _Cell((c0, r0, c1, cut), (top, True, left, right), (gt, False, gl, gr))
        second = _Cell((c0, cut, c1, r1), (True, bottom, left, right), (False, gb, gl, gr))
    else:
        first = _Cell((c0, r0, cut, r1), (top, bottom, left, True), (gt, gb, gl, False))
        second = _Cell((cut, r0, c1, r1), (top, bottom, True, right), (gt, gb, False, gr))
    out = {}
    for part, keep in ((first, lambda v: v < cut), (second, lambda v: v >= cut)):
        out.update(_split_cell(face, part, {k: p for k, p in points.items() if keep(p[axis])}))
    return out


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def _to_photo(faces: dict[str, _Face], panel: _Panel, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: a panel's rectified masks (its face's and any extra ones) warped into the photo."""
    import cv2

    H, W = shape
    out = np.zeros((H, W), bool)
    for name, rect_mask in ((panel.face, panel.mask),) + panel.extra:
        m = rect_mask.astype(np.uint8) * 255
        out |= cv2.warpPerspective(m, faces[name].homography, (W, H), flags=cv2.INTER_LINEAR, borderValue=0) > 127
    return out


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


def _overlay(face: _Face, faces: dict[str, _Face], chosen: list[_Panel]) -> np.ndarray:
    """(H, W, 3) uint8 rectified face: seam evidence tinted red, cells outlined in grey, panels
    outlined in orange (chosen ones in green) with a dot on their handle."""
    import cv2

    out = (face.rgb * 255).astype(np.uint8)
    out[face.seams] = (out[face.seams] // 2 + np.array([127, 0, 0], np.uint8))
    for cell in face.cells:
        c0, r0, c1, r1 = cell.bbox
        cv2.rectangle(out, (c0, r0), (c1 - 1, r1 - 1), (150, 150, 150), 1)
    name = face.face.name
    for panel in (p for f in faces.values() for p in f.panels):
        masks = dict(((panel.face, panel.mask),) + panel.extra)
        if name not in masks:
            continue
        colour = (0, 200, 0) if any(panel is c for c in chosen) else (255, 140, 0)
        contours, _ = cv2.findContours(masks[name].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, colour, 1)
        if panel.handle is not None and panel.face == name:
            c0, r0, c1, r1 = panel.bbox
            cx = int(c0 + panel.handle.centre[0] * (c1 - c0))
            cy = int(r0 + panel.handle.centre[1] * (r1 - r0))
            cv2.circle(out, (cx, cy), 3, colour, -1)
    return out
