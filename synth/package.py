"""Ground-truth URDF packages of synth objects, in the project's package layout (DESIGN.md).

``write_synth_package(obj, out_dir, name, camera, view)`` writes ``out_dir/<name>/`` with the
object's exact meshes (coloured visuals, CoACD collision pieces, inertials) and its true joints,
through the same writer the pipeline uses (``stages.urdf_package.template.write_package``). With
a camera and a rendered view, package.json also records the photo's camera and each part's mask
and click in that photo, so a predicted package can be scored against it (``flows.evaluate``).
"""

from __future__ import annotations

from pathlib import Path

from stages._shared.camera import Camera
from synth.objects import SynthObject
from synth.render import RenderedView, click_point


def write_synth_package(
    obj: SynthObject,
    out_dir: Path,
    name: str,
    camera: Camera | None = None,
    view: RenderedView | None = None,
    cfg=None,
):
    """Write the ground-truth package of ``obj`` to ``out_dir/<name>/`` (atomically).

    Parameters
    ----------
    obj : SynthObject
      The object; its base frame is the package's base frame.
    out_dir : Path
      Parent folder of the package.
    name : str
      Package name, ``[A-Za-z0-9_]+``.
    camera : Camera or None
      The camera of the photo the package describes (package.json ``camera``).
    view : RenderedView or None
      That photo's render: its part masks become ``masks/<part>.png`` and each joint's ``click``
      is ``click_point`` of its mask (None for a part not visible in the photo).
    cfg : stages.urdf_package.template.Config or None
      Writer settings (density, CoACD); None for the defaults.

    Returns
    -------
    UrdfPackageResult
    """
    from stages.urdf_package.template import Config, write_package

    if view is not None and camera is None:
        raise ValueError("`view` was given without `camera`: the masks belong to a photo, pass its camera too")
    masks = {}
    clicks = {}
    if view is not None:
        missing = {p.name for p in obj.parts} - set(view.part_masks)
        if missing:
            raise ValueError(f"`view` has no mask for parts {sorted(missing)}; render it from this object")
        masks = {p.name: view.part_masks[p.name] for p in obj.parts}
        clicks = {n: list(click_point(m)) if m.any() else None for n, m in masks.items()}
    links, joints = package_specs(obj, {p.name: {"click": clicks.get(p.name), "confidence": 1.0} for p in obj.parts})
    extra = {
        "source": {"generator": "synth.objects.make_object", "category": obj.category, "seed": obj.seed},
        "scale_m": float(obj.extents.max()),
        "extents_m": [float(v) for v in obj.extents],
    }
    return write_package(name, links, joints, Path(out_dir), cfg=cfg or Config(), camera=camera, masks=masks, extra=extra)


def package_specs(obj: SynthObject, joint_extra: dict[str, dict] | None = None) -> tuple[list, list]:
    """Links (the coloured synth meshes, base first) and true joints for ``write_package``.

    ``joint_extra`` maps a part name to more package.json keys for its joint (click, ...).
    """
    from stages.urdf_package.template import JointSpec, LinkSpec

    joint_extra = joint_extra or {}
    links = [LinkSpec("base", obj.base)] + [LinkSpec(p.name, p.mesh) for p in obj.parts]
    joints = [
        JointSpec(
            name=f"{p.name}_joint",
            type=p.joint_type,
            parent="base",
            child=p.name,
            axis=tuple(float(v) for v in p.axis),
            origin=tuple(float(v) for v in p.origin),
            lower=float(p.lower),
            upper=float(p.upper),
            extra=dict(joint_extra.get(p.name, {})),
        )
        for p in obj.parts
    ]
    return links, joints
