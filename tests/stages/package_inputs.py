"""Inputs of the texture, urdf_package and validate stages built from a synth object.

The amodal, part_masks and joint_fit results are what those stages would hand over if they were
exact: the synth meshes, the rendered part masks and the ground-truth joints.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from stages._shared.io import write_image, write_json, write_mesh
from stages.amodal import AmodalResult
from stages.joint_fit import JointEstimate, JointFitResult
from stages.part_masks import PartMask, PartMasksResult
from stages.urdf_package.template import JointSpec, LinkSpec
from synth.objects import SynthObject
from synth.package import package_specs as synth_package_specs
from synth.render import RenderedView, click_point


def amodal_from_synth(obj: SynthObject, view: RenderedView, out_dir: Path) -> AmodalResult:
    """The synth base and part meshes (base frame at rest) as the amodal stage's GLBs."""
    out_dir = Path(out_dir)
    base = write_mesh(out_dir / "base.glb", obj.base)
    parts = tuple(write_mesh(out_dir / f"{p.name}.glb", p.mesh) for p in obj.parts)
    image = write_image(out_dir / "base.png", view.rgb)
    return AmodalResult(base_mesh=base, part_meshes=parts, base_image=image, part_images=(image,) * len(parts))


def part_masks_from_view(obj: SynthObject, view: RenderedView, out_dir: Path) -> PartMasksResult:
    """The rendered part masks, each with a click at its centre."""
    out_dir = Path(out_dir)
    parts = []
    for p in obj.parts:
        mask = view.part_masks[p.name]
        parts.append(
            PartMask(
                name=p.name,
                mask=write_image(out_dir / f"{p.name}.png", mask),
                joint_type=p.joint_type,
                hinge_side="left" if p.joint_type == "revolute" else None,
                click=click_point(mask),
                confidence=1.0,
            )
        )
    return PartMasksResult(parts=tuple(parts))


def joint_fit_from_synth(obj: SynthObject, out_dir: Path) -> JointFitResult:
    """Ground-truth joints as the joint_fit stage's estimates."""
    joints = tuple(
        JointEstimate(
            part=p.name,
            joint_type=p.joint_type,
            axis_base=tuple(float(v) for v in p.axis),
            origin_base=tuple(float(v) for v in p.origin),
            lower=p.lower,
            upper=p.upper,
            observed_lower=p.lower,
            observed_upper=p.upper,
            free_lower=p.lower,
            free_upper=p.upper,
            magnitudes=(0.0, p.opening_limit),
            losses={p.joint_type: 0.0},
            confidence=1.0,
        )
        for p in obj.parts
    )
    params = write_json(Path(out_dir) / "joints.json", obj.joints())
    return JointFitResult(joints=joints, params_json=params)


def package_specs(obj: SynthObject, **overrides) -> tuple[list[LinkSpec], list[JointSpec]]:
    """Links (coloured synth meshes) and joints for ``write_package``.

    ``overrides`` maps a part name to a dict of JointSpec fields to replace (e.g. a wrong axis).
    """
    links, joints = synth_package_specs(obj)
    return links, [replace(j, **overrides.get(j.child, {})) for j in joints]
