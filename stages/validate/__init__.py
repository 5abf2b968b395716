"""Stage 10, validate: load the package in simulators, sweep every joint, check physics data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stages.urdf_package import UrdfPackageResult
from stages.validate import simulators


class UrdfValidationError(RuntimeError):
    """The package failed validation; ``issues`` lists every problem found."""

    def __init__(self, package: Path, issues: tuple[str, ...]):
        self.package = package
        self.issues = issues
        super().__init__(f"{package}: validation failed: " + "; ".join(issues))


@dataclass(frozen=True)
class ValidationResult:
    """passed : no issue found. issues : one message per problem, naming the element.
    max_penetration_m : deepest part/base interpenetration seen over all joint sweeps.
    report : markdown report written into the package (``validation.md``)."""

    passed: bool
    pybullet: bool
    mujoco: bool
    max_penetration_m: float
    issues: tuple[str, ...]
    report: Path


Config = simulators.Config
BACKENDS = {"simulators": simulators.run}


def run(cfg: Config, package: UrdfPackageResult, out_dir: Path) -> ValidationResult:
    """Writes ``validation.md`` into the package and the ``validation`` key of package.json.
    Does not raise on failure: the caller decides (the flow raises UrdfValidationError)."""
    return BACKENDS[cfg.backend](cfg, package, Path(out_dir))
