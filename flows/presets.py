"""Named, complete configurations. ``prefect.yaml`` and the CLI pick one by name."""

from __future__ import annotations

from dataclasses import dataclass

from flows.config import PipelineConfig


@dataclass(frozen=True)
class Preset:
    description: str
    config: PipelineConfig


PRESETS: dict[str, Preset] = {
    "cpu": Preset(
        description="Weights-free default backends only; runs on a CPU in about a minute per photo.",
        config=PipelineConfig(),
    ),
}


def resolve(preset: str, overrides: dict[str, str] | None = None) -> PipelineConfig:
    """The preset's configuration with ``overrides`` (dotted paths, see PipelineConfig.with_overrides)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset `{preset}`; choose one of: {', '.join(PRESETS)}")
    config = PRESETS[preset].config
    return config.with_overrides(overrides) if overrides else config
