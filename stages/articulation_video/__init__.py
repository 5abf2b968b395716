"""Stage 6, articulation_video: frames of each movable part moving, from rest to open.

Default: frames rendered from a kinematic prior (scored joint hypotheses). With ``--motion``,
the user's real clip (video file or folder of frames, same camera as the photo) is used instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stages.amodal import AmodalResult
from stages.articulation_video import kinematic_prior
from stages.foreground import ForegroundResult
from stages.part_masks import PartMasksResult
from stages.reconstruct import ReconstructResult


@dataclass(frozen=True)
class PartClip:
    """frames : RGB PNGs at the input photo's size, frame 0 at rest. preview : GIF/MP4 to view.
    source : ``prior`` (rendered from a joint hypothesis) or ``motion`` (the user's clip).
    skipped : frames of the user's clip that could not be read.
    """

    part: str
    frames: tuple[Path, ...]
    preview: Path
    source: Literal["prior", "motion"]
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArticulationVideoResult:
    clips: tuple[PartClip, ...]


Config = kinematic_prior.Config
BACKENDS = {"kinematic_prior": kinematic_prior.run}


def run(
    cfg: Config,
    fg: ForegroundResult,
    recon: ReconstructResult,
    masks: PartMasksResult,
    amodal: AmodalResult,
    motions: tuple[Path | None, ...],
    out_dir: Path,
) -> ArticulationVideoResult:
    """``motions[k]`` is the user's clip for part k, or None to generate one."""
    return BACKENDS[cfg.backend](cfg, fg, recon, masks, amodal, tuple(motions), Path(out_dir))
