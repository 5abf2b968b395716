"""The batch flow: every photo in a folder tree to a package, each photo in isolation.

``image-to-urdf-batch`` finds the images under a folder by their content (PIL can identify the
file; the extension does not matter), converts each one with the ``image-to-urdf`` flow as one
task, at most ``jobs`` at a time, and writes a summary (CSV, JSON and a Prefect table artifact):
per photo its status, the reason when it failed, the joints found, the validation result and
the time it took. A failing photo becomes a row; it never stops the batch.

Resuming and sharing ``out`` (see also flows/cache.py for the stage cache):
- ``out/.batch/locks/<name>.lock``: an fcntl lock held while a photo is converted (the file is
  removed when it ends), so two batches writing into one ``out`` never build the same package
  at once;
- ``out/.batch/done/<name>.json``: written after the package is shipped, with the photo's key
  (photo bytes, configuration, code version). A rerun skips a photo whose key matches and whose
  package is in place, and reports it as ``cached``;
- while holding a photo's lock, temporary folders of an interrupted ship (``out/.<name>.*.tmp``)
  are removed and run records left ``running`` by a killed process are marked ``interrupted``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import hashlib
import io
import json
import logging
import os
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import Iterator, Literal

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from flows import cache as stage_cache
from flows.config import PipelineConfig
from flows.devices import check_devices
from flows.presets import resolve
from flows.run_record import STAGES
from stages._shared.photo import PhotoError, check_photo
from stages._shared.io import read_json, sha256_file, write_bytes, write_json

log = logging.getLogger(__name__)

#: Summary columns, in order (CSV header and JSON keys).
SUMMARY_FIELDS = (
    "photo", "name", "status", "reason", "joints", "joint_types", "validation", "seconds", "package", "run_dir"
)
TaskRunnerName = Literal["threads", "processes", "dask"]


# ---------------------------------------------------------------- finding the photos


def find_images(folder: Path) -> tuple[list[Path], list[dict]]:
    """Images under ``folder`` (recursively, hidden entries skipped), recognised by content.

    Returns the image files, sorted, and one summary row per other file: ``skipped`` when the
    file is not an image, ``failed`` when its extension says image but PIL cannot identify it
    (a photo broken beyond recognition should not vanish from the report).
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    images, others = [], []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        try:
            with Image.open(path):
                images.append(path)
                continue
        except (UnidentifiedImageError, OSError, ValueError):
            reason = _unreadable_reason(path)
        claimed = path.suffix.lower() in Image.registered_extensions()
        others.append(_row(str(rel), status="failed" if claimed else "skipped", reason=reason))
    return images, others


def _unreadable_reason(path: Path) -> str:
    """What ``convert`` says of a file PIL cannot open: the file, the problem and the fix."""
    try:
        check_photo(path)
    except PhotoError as exc:
        return f"{exc}, or move it out of the folder"
    return f"{path}: PIL cannot identify it as an image; give a PNG or JPEG photo, or move it out of the folder"


def package_names(images: list[Path], folder: Path) -> list[str]:
    """One package name per image from its path under ``folder`` (``a/b.png`` -> ``a_b``), unique."""
    from flows.image_to_urdf import package_name

    names, seen = [], set()
    for path in images:
        base = package_name(Path("_".join(path.relative_to(folder).parts)))  # a/b.png -> stem a_b
        name, k = base, 2
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        names.append(name)
    return names


# ---------------------------------------------------------------- one photo


def photo_key(photo: Path, config: PipelineConfig) -> str:
    """sha256 of what a package depends on: the photo's bytes, the configuration, every stage's code."""
    h = hashlib.sha256(f"image-to-urdf-photo:{stage_cache.CACHE_FORMAT}:".encode())
    h.update(sha256_file(photo).encode())
    h.update(json.dumps(config.model_dump(mode="json", by_alias=True), sort_keys=True).encode())
    for stage in STAGES:
        h.update(stage_cache.code_version(stage).encode())
    return h.hexdigest()


@contextlib.contextmanager
def photo_lock(out: Path, name: str) -> Iterator[None]:
    """Hold ``out/.batch/locks/<name>.lock`` (fcntl, released by the OS if the process dies).

    The holder removes the file before releasing it, so no lock file outlives its conversion; a
    waiter that then gets the lock of the removed file opens the path again.
    """
    lock = Path(out) / ".batch" / "locks" / f"{name}.lock"
    while True:
        lock.parent.mkdir(parents=True, exist_ok=True)
        try:
            f = open(lock, "a")
        except FileNotFoundError:  # another holder removed the emptied folder in between
            continue
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            same = os.stat(lock).st_ino == os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        f.close()  # the holder before us removed this file: lock the path's new one
    try:
        yield
    finally:
        lock.unlink()
        with contextlib.suppress(OSError):
            lock.parent.rmdir()  # only when empty: other photos' locks may be held
        f.close()  # releases the lock


def clean_interrupted(out: Path, name: str) -> None:
    """Remove what a killed conversion of ``name`` left (call with the photo's lock held)."""
    for tmp in Path(out).glob(f".{name}.*"):
        if tmp.is_dir() and tmp.suffix in (".tmp", ".old"):
            shutil.rmtree(tmp, ignore_errors=True)
    for manifest_path in sorted((Path(out) / "runs").glob("*/manifest.json")):
        try:
            manifest = read_json(manifest_path)
        except (OSError, ValueError):
            continue
        if manifest.get("status") == "running" and manifest.get("input", {}).get("name") == name:
            manifest["status"] = "interrupted"
            write_json(manifest_path, manifest)


@task(name="convert-photo", cache_policy=NO_CACHE)
def convert_photo(
    photo: str, folder: str, out: str, name: str, config: PipelineConfig, gpu_deployment: str | None = None
) -> dict:
    """Convert one photo with the ``image-to-urdf`` flow; always return its summary row."""
    from flows.image_to_urdf import image_to_urdf
    from stages._shared.photo import PhotoError, check_photo
    from stages.validate import UrdfValidationError

    photo_path, out_dir = Path(photo), Path(out)
    rel = str(photo_path.relative_to(folder))
    start = time.perf_counter()
    with photo_lock(out_dir, name):
        try:
            check_photo(photo_path)
        except PhotoError as exc:
            return _row(rel, name, status="failed", reason=str(exc), seconds=time.perf_counter() - start)
        key = photo_key(photo_path, config)
        done_path = out_dir / ".batch" / "done" / f"{name}.json"
        previous = read_json(done_path) if done_path.exists() else None
        if previous and previous["key"] == key:
            seconds = round(time.perf_counter() - start, 2)
            if previous["row"]["status"] == "done" and (out_dir / name / "package.json").exists():
                return previous["row"] | {"photo": rel, "status": "cached", "seconds": seconds}
            if previous["row"]["validation"] == "failed":  # deterministic: same photo, config and code
                return previous["row"] | {"photo": rel, "seconds": seconds}
        clean_interrupted(out_dir, name)
        try:
            result = image_to_urdf.with_options(flow_run_name=name)(
                photo=str(photo_path), out=str(out_dir), name=name, config=config, gpu_deployment=gpu_deployment
            )
        except UrdfValidationError as exc:
            joints = _package_joints(Path(exc.package) / "package.json")
            row = _row(
                rel, name, status="failed", reason="validation: " + "; ".join(exc.issues),
                validation="failed", seconds=time.perf_counter() - start, run_dir=str(Path(exc.package).parents[1]),
                **joints,
            )
            write_json(done_path, {"key": key, "row": row})
            return row
        except Exception as exc:  # noqa: BLE001 -- the batch's isolation boundary: one photo, one row
            return _row(rel, name, status="failed", reason=f"{type(exc).__name__}: {exc}",
                        seconds=time.perf_counter() - start)
        row = _row(
            rel, name, status="done", validation="passed", seconds=time.perf_counter() - start,
            package=str(result.package_dir), run_dir=str(result.run_dir),
            joints=len(result.joints), joint_types=";".join(f"{j.part}:{j.joint_type}" for j in result.joints),
        )
        write_json(done_path, {"key": key, "row": row})
        return row


def _package_joints(package_json: Path) -> dict:
    try:
        joints = read_json(package_json)["joints"]
    except (OSError, ValueError, KeyError):
        return {}
    return {"joints": len(joints), "joint_types": ";".join(f"{j['child']}:{j['type']}" for j in joints)}


def _row(photo: str, name: str = "", **fields) -> dict:
    row = {key: "" for key in SUMMARY_FIELDS} | {"photo": photo, "name": name} | fields
    if isinstance(row["seconds"], float):
        row["seconds"] = round(row["seconds"], 2)
    return row


# ---------------------------------------------------------------- the batch


def make_task_runner(kind: TaskRunnerName, jobs: int, dask_address: str | None = None):
    """The Prefect task runner that runs at most ``jobs`` photos at once.

    threads: one process, photos in threads (numpy/torch release the GIL, pure Python does not).
    processes: a local process pool. dask: a Dask cluster (prefect-dask): the one at
    ``dask_address``, or a LocalCluster of ``jobs`` single-threaded worker processes.
    """
    if kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=jobs)
    if kind == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=jobs)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": jobs, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
        )
    raise ValueError(f"unknown task runner {kind!r}; choose threads, processes or dask")


@flow(name="image-to-urdf-batch")
def image_to_urdf_batch(
    folder: str,
    out: str,
    jobs: int = 2,
    preset: str = "cpu",
    config: PipelineConfig | None = None,
    task_runner: TaskRunnerName = "threads",
    dask_address: str | None = None,
    progress_bar: bool = True,
    gpu_deployment: str | None = None,
) -> list[dict]:
    """Convert every image under ``folder`` into ``out/<name>``; return the summary rows.

    jobs : photos converted at once (>= 1). task_runner / dask_address : see make_task_runner.
    gpu_deployment : passed to each image-to-urdf run (stages that need CUDA go to the gpu pool).
    The summary goes to ``out/summaries/<batch-id>/summary.{csv,json}`` and the artifact
    ``urdf-batch-summary``.
    """
    if jobs < 1:
        raise ValueError(f"`jobs` must be >= 1, got {jobs}")
    cfg = config or resolve(preset)
    if gpu_deployment is None:
        check_devices(cfg)
    folder_path, out_dir = Path(folder).resolve(), Path(out).resolve()
    if not folder_path.is_dir():
        raise ValueError(f"{folder}: not a folder; give the folder that holds the photos")
    images, rows = find_images(folder_path)
    names = package_names(images, folder_path)
    log.info("batch: %d image(s) under %s, %d other file(s); %d at a time", len(images), folder, len(rows), jobs)
    if not images:
        log.warning("batch: no image found under %s; put PNG or JPEG photos in it", folder)
    start = time.perf_counter()
    with make_task_runner(task_runner, jobs, dask_address) as runner, _progress(len(images), progress_bar) as bar:
        futures = [
            runner.submit(
                convert_photo,
                {"photo": str(p), "folder": str(folder_path), "out": str(out_dir), "name": n, "config": cfg,
                 "gpu_deployment": gpu_deployment},
            )
            for p, n in zip(images, names)
        ]
        for future in as_completed(futures):
            row = future.result()
            rows.append(row)
            bar.update(1)
            line = f"{row['status']:>6} {row['photo']} ({row['seconds']} s)"
            line += f": {row['reason']}" if row["reason"] else f", {row['joints']} joint(s)"
            bar.write(line, file=sys.stderr)
    rows.sort(key=lambda r: r["photo"])
    summary = write_summary(rows, out_dir, time.perf_counter() - start)
    log.info("batch: summary in %s", summary)
    return rows


@contextlib.contextmanager
def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    bar = tqdm(total=total, unit="photo", desc="image-to-urdf batch", file=sys.stderr, disable=not enabled)
    try:
        yield bar
    finally:
        bar.close()


def write_summary(rows: list[dict], out: Path, seconds: float) -> Path:
    """Write ``summary.csv`` and ``summary.json`` in a new ``out/summaries/<batch-id>/``; publish the table."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = Path(out) / "summaries" / f"{stamp}-{secrets.token_hex(3)}"
    counts = {status: sum(r["status"] == status for r in rows) for status in ("done", "cached", "failed", "skipped")}
    write_json(folder / "summary.json", {"seconds": round(seconds, 2), "counts": counts, "photos": rows})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    write_bytes(folder / "summary.csv", buffer.getvalue().encode())
    create_table_artifact(
        key="urdf-batch-summary",
        table=[{k: r[k] for k in SUMMARY_FIELDS if k not in ("package", "run_dir")} for r in rows],
        description=f"image-to-urdf batch: {counts} in {seconds:.0f} s; summary in {folder}",
    )
    return folder

