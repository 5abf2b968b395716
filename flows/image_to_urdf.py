"""The image-to-urdf flow: one product photo in, a validated articulated URDF package out.

photo -> foreground -> reconstruct -> part_masks -> segment3d -> amodal -> articulation_video
      -> joint_fit -> texture -> urdf_package -> validate
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

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
from flows import cache as stage_cache
from flows.browse import publish_run_link
from flows.config import PipelineConfig
from flows.devices import check_devices, check_gpu_pool, uses_cuda
from flows.gpu_stage import run_on_gpu_pool
from flows.presets import resolve
from flows.run_record import STAGES, RunRecord
from stages._shared.io import atomic_dir, sha256_file

log = logging.getLogger(__name__)

#: Stages whose results are cached; validate is not (it writes into the package and is the gate).
CACHED_STAGES = STAGES[:-1]


@dataclass(frozen=True)
class ConvertResult:
    """run_dir : ``<out>/runs/<run-id>``. package_dir : ``<out>/<name>`` (only once validated)."""

    run_dir: Path
    package_dir: Path
    validation: stages.validate.ValidationResult
    joints: tuple[stages.joint_fit.JointEstimate, ...]


# One thin task per stage; each body is one call to the stage.
@task(name="foreground", cache_policy=NO_CACHE)
def foreground(cfg, photo, out_dir):
    return stages.foreground.run(cfg, photo, out_dir)


@task(name="reconstruct", cache_policy=NO_CACHE)
def reconstruct(cfg, fg, max_dim, out_dir):
    return stages.reconstruct.run(cfg, fg, max_dim, out_dir)


@task(name="part_masks", cache_policy=NO_CACHE)
def part_masks(cfg, fg, recon, clicks, out_dir):
    return stages.part_masks.run(cfg, fg, recon, clicks, out_dir)


@task(name="segment3d", cache_policy=NO_CACHE)
def segment3d(cfg, recon, masks, out_dir):
    return stages.segment3d.run(cfg, recon, masks, out_dir)


@task(name="amodal", cache_policy=NO_CACHE)
def amodal(cfg, recon, masks, seg, out_dir):
    return stages.amodal.run(cfg, recon, masks, seg, out_dir)


@task(name="articulation_video", cache_policy=NO_CACHE)
def articulation_video(cfg, fg, recon, masks, parts, motions, out_dir):
    return stages.articulation_video.run(cfg, fg, recon, masks, parts, motions, out_dir)


@task(name="joint_fit", cache_policy=NO_CACHE)
def joint_fit(cfg, recon, parts, video, masks, out_dir):
    return stages.joint_fit.run(cfg, recon, parts, video, out_dir, masks)


@task(name="texture", cache_policy=NO_CACHE)
def texture(cfg, fg, recon, part_names, parts, out_dir):
    return stages.texture.run(cfg, fg, recon, part_names, parts, out_dir)


@task(name="urdf_package", cache_policy=NO_CACHE)
def urdf_package(cfg, name, photo, fg, recon, masks, joints, textures, scale_m, out_dir):
    return stages.urdf_package.run(cfg, name, photo, fg, recon, masks, joints, textures, scale_m, out_dir)


@task(name="validate", cache_policy=NO_CACHE)
def validate(cfg, package, out_dir):
    return stages.validate.run(cfg, package, out_dir)


@flow(name="image-to-urdf")
def image_to_urdf(
    photo: str,
    out: str,
    name: str | None = None,
    clicks: list[tuple[int, int]] | None = None,
    motion: list[str] | None = None,
    preset: str = "cpu",
    config: PipelineConfig | None = None,
    cache: bool = True,
    gpu_deployment: str | None = None,
) -> ConvertResult:
    """Convert one product photo into a URDF package under ``out``.

    photo : path of the product photo. out : output folder; the package goes to ``out/<name>``,
    intermediates to ``out/runs/<run-id>``. clicks : (x, y) pixel prompts, one per movable part.
    motion : a clip (video or folder of frames) per click, same camera as the photo.
    preset : named configuration (flows/presets.py), used when ``config`` is not given.
    cache : reuse stage results cached under ``out/.cache/stages`` (flows/cache.py) and add new ones.
    gpu_deployment : deployment that runs stages whose backend needs CUDA on the ``gpu`` work pool
      (flows/gpu_stage.py); without it they run here, and this machine must have CUDA.
    """
    cfg = config or resolve(preset)
    # Before anything is written: a CUDA backend on a machine (or gpu pool) without CUDA fails here.
    if gpu_deployment is None:
        check_devices(cfg)
    else:
        check_gpu_pool(cfg, gpu_deployment)
    photo_path, out_dir = Path(photo), Path(out)
    name = name or package_name(photo_path)
    clicks = tuple((int(x), int(y)) for x, y in (clicks or ()))
    motions = tuple(Path(m) for m in (motion or ()))
    check_motion_clips(motions, clicks)
    run = RunRecord.create(
        out_dir / "runs",
        photo_path,
        sha256_file(photo_path),
        cfg.model_dump(mode="json", by_alias=True),
        {"name": name, "clicks": [list(c) for c in clicks], "motion": [str(m) for m in motions]},
    )
    progress = StageProgress(run, out_dir / ".cache" / "stages" if cache else None, gpu_deployment)
    publish_run_link(run.run_id)  # Prefect link artifact to this run's page in `image-to-urdf browse`

    # 1. foreground: cut the object out of the photo
    with progress.stage("foreground") as d:
        fg = progress.call(foreground, cfg.foreground, photo_path, d)
        progress.done(f"object covers {fg.mask_fraction:.0%} of the photo")
    # 2. reconstruct: watertight mesh + camera, scaled by max_dim
    with progress.stage("reconstruct") as d:
        recon = progress.call(reconstruct, cfg.reconstruct, fg, cfg.max_dim, d)
        size = " x ".join(f"{e:.2f}" for e in recon.extents_m)
        progress.done(f"{size} m, silhouette IoU {recon.silhouette_iou:.3f}")
    # 3. part_masks: movable parts in the photo, from clicks or found automatically
    with progress.stage("part_masks") as d:
        masks = progress.call(part_masks, cfg.part_masks, fg, recon, clicks, d)
        progress.done(", ".join(f"{p.name} ({p.joint_type}, {p.confidence:.2f})" for p in masks.parts) or "none")
    # 4. segment3d: mask-guided clustering of mesh faces
    with progress.stage("segment3d") as d:
        seg = progress.call(segment3d, cfg.segment3d, recon, masks, d)
        progress.done("faces per part: " + ", ".join(map(str, seg.part_face_counts)))
    # 5. amodal: complete parts into solids, carve their cavities in the base
    with progress.stage("amodal") as d:
        parts = progress.call(amodal, cfg.amodal, recon, masks, seg, d)
        progress.done(f"{len(parts.part_meshes)} watertight part(s) + base")
    # 6. articulation_video: a clip of each part moving (generated, or the user's)
    with progress.stage("articulation_video") as d:
        part_motions = tuple(motions[k] if k < len(motions) else None for k in range(len(masks.parts)))
        video = progress.call(
            articulation_video, cfg.articulation_video, fg, recon, masks, parts, part_motions, d
        )
        progress.done(", ".join(f"{c.part}: {len(c.frames)} frames ({c.source})" for c in video.clips) or "none")
    # 7. joint_fit: dual-quaternion joint per part, fitted to its clip
    with progress.stage("joint_fit") as d:
        joints = progress.call(joint_fit, cfg.joint_fit, recon, parts, video, masks, d)
        progress.done(", ".join(describe_joint(j) for j in joints.joints) or "none")
    # 8. texture: UV atlas, photo projected, unseen texels filled
    with progress.stage("texture") as d:
        part_names = tuple(p.name for p in masks.parts)
        textures = progress.call(texture, cfg.texture, fg, recon, part_names, parts, d)
        progress.done(f"base {textures.base.seen_fraction:.0%} of texels seen in the photo")
    # 9. urdf_package: links, joints, collisions, inertials
    with progress.stage("urdf_package") as d:
        package = progress.call(
            urdf_package, cfg.urdf_package, name, photo_path, fg, recon, masks, joints, textures, cfg.max_dim, d
        )
        progress.done(str(package.urdf.relative_to(run.root)))
    # 10. validate: load in PyBullet and MuJoCo, sweep joints, check physics data
    with progress.stage("validate") as d:
        report = progress.call(validate, cfg.validate_, package, d)
        progress.done(
            f"{'passed' if report.passed else 'FAILED'}; pybullet {report.pybullet}, mujoco {report.mujoco}, "
            f"max penetration {report.max_penetration_m * 1000:.1f} mm"
        )

    publish_artifacts(joints.joints, report)
    if not report.passed:
        run.finish("failed", package=str(package.package_dir), validation=report.passed)
        publish_run_summary(run, package.package_dir, joints.joints, report)
        raise stages.validate.UrdfValidationError(package.package_dir, report.issues)
    final = ship_package(package.package_dir, out_dir / name)
    run.finish("done", package=str(final.resolve()), validation=True)
    publish_run_summary(run, final, joints.joints, report)
    return ConvertResult(run_dir=run.root, package_dir=final, validation=report, joints=joints.joints)


class StageProgress:
    """Times each stage, records it in the manifest and logs one progress line per stage.

    ``call`` runs a stage's task, or restores its result from ``cache_dir`` (flows/cache.py) when
    the same code, configuration and input contents ran before. A stage whose backend needs CUDA
    (flows/devices.py) runs with the ``gpu`` tag, on the ``gpu`` work pool when
    ``gpu_deployment`` is given (flows/gpu_stage.py).
    """

    def __init__(self, run: RunRecord, cache_dir: Path | None = None, gpu_deployment: str | None = None):
        self.run = run
        self.cache_dir = cache_dir
        self.gpu_deployment = gpu_deployment
        self.current: str | None = None

    def call(self, stage_task, cfg, *args):
        """``stage_task(cfg, *args)``; the last argument is the stage's (empty) run folder."""
        stage, stage_dir = stage_task.name, Path(args[-1])

        def compute():
            if not uses_cuda(cfg):
                return stage_task(cfg, *args)
            if self.gpu_deployment:
                return run_on_gpu_pool(self.gpu_deployment, stage, cfg, args)
            return stage_task.with_options(tags={"gpu"})(cfg, *args)

        # validate writes into the package built by urdf_package, so it always runs: it is the gate.
        if self.cache_dir is None or stage not in CACHED_STAGES:
            return compute()
        key = stage_cache.stage_key(stage, cfg, args[:-1])
        self.run.manifest["stages"][stage]["cache_key"] = key
        result = stage_cache.lookup(self.cache_dir, key, stage_dir, self.run.root)
        self.run.manifest["stages"][stage]["cached"] = result is not None
        if result is not None:
            log.info("[%d/%d] %s: reused cached result %s", STAGES.index(stage) + 1, len(STAGES), stage, key[:12])
            return result
        result = compute()
        stage_cache.store(self.cache_dir, key, stage_dir, self.run.root, result)
        return result

    def stage(self, stage: str):
        self.current = stage
        self.start = time.perf_counter()
        log.info("[%d/%d] %s ...", STAGES.index(stage) + 1, len(STAGES), stage)
        return self.run.stage(stage)

    def done(self, summary: str) -> None:
        stage = self.current
        seconds = time.perf_counter() - self.start
        log.info("[%d/%d] %s done in %.1f s: %s", STAGES.index(stage) + 1, len(STAGES), stage, seconds, summary)
        self.run.note(stage, summary)


def check_motion_clips(motions, clicks) -> None:
    """The k-th clip belongs to the k-th clicked part, so there must be a click for every clip."""
    if len(motions) > len(clicks):
        raise ValueError(
            f"{len(motions)} --motion clip(s) but {len(clicks)} --click(s): the k-th clip belongs to the "
            "k-th clicked part, so give one --click X,Y on the moving part for each --motion clip"
        )


def package_name(photo: Path) -> str:
    """A package name from the photo's file name, restricted to [A-Za-z0-9_]."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", photo.stem).strip("_") or "object"
    return name if not name[0].isdigit() else f"object_{name}"


def describe_joint(joint: stages.joint_fit.JointEstimate) -> str:
    if joint.joint_type == "fixed":
        return f"{joint.part}: fixed (no motion observed)"
    axis = ", ".join(f"{a:+.2f}" for a in joint.axis_base)
    unit = "rad" if joint.joint_type == "revolute" else "m"
    return f"{joint.part}: {joint.joint_type} axis ({axis}) [{joint.lower:.2f}, {joint.upper:.2f}] {unit}"


def publish_artifacts(joints, report) -> None:
    """Joint table and validation report as Prefect artifacts (stable keys)."""
    create_table_artifact(
        key="urdf-joints",
        table=[
            {
                "part": j.part,
                "type": j.joint_type,
                "axis_base": [round(a, 4) for a in j.axis_base],
                "origin_base": [round(o, 4) for o in j.origin_base],
                "lower": round(j.lower, 4),
                "upper": round(j.upper, 4),
                "confidence": round(j.confidence, 3),
            }
            for j in joints
        ],
        description="Joints fitted by image-to-urdf",
    )
    lines = [
        f"# Validation: {'passed' if report.passed else 'FAILED'}",
        f"- PyBullet loads: {report.pybullet}",
        f"- MuJoCo loads: {report.mujoco}",
        f"- Max part/base penetration: {report.max_penetration_m * 1000:.2f} mm",
    ]
    lines += [f"- issue: {issue}" for issue in report.issues]
    create_markdown_artifact(key="urdf-validation", markdown="\n".join(lines))


def publish_run_summary(run: RunRecord, package_dir: Path, joints, report) -> None:
    """Markdown artifact ``urdf-summary``: joints, validation, and links to the package and to
    every stage's outputs (``file://`` URIs: on shared storage they open from any host that
    mounts it at the same path); link artifact ``urdf-package``."""
    m = run.manifest
    package_uri = Path(package_dir).resolve().as_uri()
    shipped = "shipped" if report.passed else "not shipped (failed validation), kept in the run directory"
    lines = [
        f"# {m['input']['name']}: validation {'passed' if report.passed else 'FAILED'}",
        f"Photo `{m['input']['image']}` (sha256 `{m['input']['image_sha256'][:12]}`), run `{m['run_id']}`.",
        f"Package [{Path(package_dir).name}]({package_uri}), {shipped}.",
        "",
        "## Joints",
        "| part | type | axis (base) | origin (base, m) | lower | upper | confidence |",
        "|---|---|---|---|---|---|---|",
    ]
    for j in joints:
        axis = ", ".join(f"{a:+.3f}" for a in j.axis_base)
        origin = ", ".join(f"{o:+.3f}" for o in j.origin_base)
        lines.append(
            f"| {j.part} | {j.joint_type} | ({axis}) | ({origin}) | {j.lower:.3f} | {j.upper:.3f} | {j.confidence:.2f} |"
        )
    lines += [
        "",
        "## Validation",
        f"PyBullet loads: {report.pybullet}; MuJoCo loads: {report.mujoco}; "
        f"max part/base penetration {report.max_penetration_m * 1000:.2f} mm.",
        *[f"- {issue}" for issue in report.issues],
        "",
        "## Stages",
        "| stage | status | seconds | cached | summary | outputs |",
        "|---|---|---|---|---|---|",
    ]
    for stage, entry in m["stages"].items():
        folder = (run.root / entry["folder"]).resolve()
        lines.append(
            f"| {stage} | {entry['status']} | {entry.get('seconds', '')} | {'yes' if entry.get('cached') else 'no'} "
            f"| {entry.get('summary', '').replace('|', '/')} | [{entry['folder']}]({folder.as_uri()}) |"
        )
    create_markdown_artifact(key="urdf-summary", markdown="\n".join(lines), description=f"run {m['run_id']}")
    create_link_artifact(key="urdf-package", link=package_uri, link_text=Path(package_dir).name)


def ship_package(built: Path, final: Path) -> Path:
    """Copy the validated package to its final place, replacing an older one atomically."""
    with atomic_dir(final) as tmp:
        shutil.copytree(built, tmp, dirs_exist_ok=True)
    return final


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    repo = Path(__file__).resolve().parents[1]
    result = image_to_urdf(photo=str(repo / "assets" / "cabinet.png"), out=str(repo / "out"))
    print(result.package_dir)
