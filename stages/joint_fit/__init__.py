"""Stage 7, joint_fit: recover each part's joint from its clip (dual-quaternion motion model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stages.amodal import AmodalResult
from stages.articulation_video import ArticulationVideoResult
from stages.joint_fit import dual_quaternion
from stages.part_masks import PartMasksResult
from stages.reconstruct import ReconstructResult


@dataclass(frozen=True)
class JointEstimate:
    """One fitted joint, in the base frame at rest.

    joint_type : ``fixed`` when no motion was observed. axis_base : (3,) unit axis.
    origin_base : (3,) a point on the axis, metres. magnitudes : per clip frame, radians or
    metres from rest. lower / upper : the limits written to the URDF (observed range extended to
    the free range); observed_* and free_* are kept for reporting. losses : final loss per
    joint type tried, e.g. ``{"revolute": 0.01, "prismatic": 0.2}``.
    """

    part: str
    joint_type: Literal["revolute", "prismatic", "fixed"]
    axis_base: tuple[float, float, float]
    origin_base: tuple[float, float, float]
    lower: float
    upper: float
    observed_lower: float
    observed_upper: float
    free_lower: float
    free_upper: float
    magnitudes: tuple[float, ...]
    losses: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0


@dataclass(frozen=True)
class JointFitResult:
    joints: tuple[JointEstimate, ...]
    params_json: Path


Config = dual_quaternion.Config
BACKENDS = {"dual_quaternion": dual_quaternion.run}


def run(
    cfg: Config,
    recon: ReconstructResult,
    amodal: AmodalResult,
    video: ArticulationVideoResult,
    out_dir: Path,
    masks: PartMasksResult | None = None,
) -> JointFitResult:
    """``masks``: the proposed joint types, used where a clip cannot tell the type."""
    return BACKENDS[cfg.backend](cfg, recon, amodal, video, Path(out_dir), masks)
