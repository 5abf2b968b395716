"""The one configuration object: backends and parameters for the CLI, the flow and deployments."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

import stages.amodal
import stages.articulation_video
import stages.foreground
import stages.joint_fit
import stages.part_masks
import stages.reconstruct
import stages.segment3d
import stages.texture
import stages.urdf_package
import stages.validate

#: Used when neither the CLI (--max-dim) nor the configuration names the object's size.
DEFAULT_MAX_DIM_M = 0.8


class PipelineConfig(BaseModel):
    """Every setting of a conversion. Each stage's field holds its backend's Config; the backend
    named by its ``backend`` tag is the one that runs."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    max_dim: float = Field(
        DEFAULT_MAX_DIM_M, gt=0, le=10, description="Largest dimension of the object, metres; fixes the scale."
    )
    foreground: stages.foreground.Config = Field(default_factory=stages.foreground.Config)
    reconstruct: stages.reconstruct.Config = Field(default_factory=stages.reconstruct.Config)
    part_masks: stages.part_masks.Config = Field(default_factory=stages.part_masks.Config)
    segment3d: stages.segment3d.Config = Field(default_factory=stages.segment3d.Config)
    amodal: stages.amodal.Config = Field(default_factory=stages.amodal.Config)
    articulation_video: stages.articulation_video.Config = Field(
        default_factory=stages.articulation_video.Config
    )
    joint_fit: stages.joint_fit.Config = Field(default_factory=stages.joint_fit.Config)
    texture: stages.texture.Config = Field(default_factory=stages.texture.Config)
    urdf_package: stages.urdf_package.Config = Field(default_factory=stages.urdf_package.Config)
    validate_: stages.validate.Config = Field(
        default_factory=stages.validate.Config, alias="validate", serialization_alias="validate"
    )

    def with_overrides(self, overrides: dict[str, str]) -> "PipelineConfig":
        """A copy with dotted-path settings replaced, e.g. ``{"joint_fit.fine_iters": "30"}``.

        Values are strings as typed on a command line; pydantic converts and validates them.
        """
        data = self.model_dump(by_alias=True)
        for key, value in overrides.items():
            node = data
            *parents, leaf = key.split(".")
            for part in parents:
                if not isinstance(node.get(part), dict):
                    raise ValueError(f"unknown setting `{key}`: `{part}` is not a section of the configuration")
                node = node[part]
            if leaf not in node:
                known = ", ".join(sorted(node))
                raise ValueError(f"unknown setting `{key}`; settings here are: {known}")
            node[leaf] = value
        return PipelineConfig.model_validate(data)
