"""The run directory ``runs/<run-id>/`` and its ``manifest.json``.

Layout (DESIGN.md): ``runs/<run-id>/<NN-stage>/...`` holds every intermediate, and
``manifest.json`` records the input hash, the configuration, each stage's status, timing, output
paths and content hashes. The manifest is rewritten atomically after every change. A stage that
fails has its folder renamed to ``<NN-stage>.failed`` so nothing half-made sits under the final
name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Iterator

from stages._shared.io import sha256_file, write_json

log = logging.getLogger(__name__)

STAGES = (
    "foreground",
    "reconstruct",
    "part_masks",
    "segment3d",
    "amodal",
    "articulation_video",
    "joint_fit",
    "texture",
    "urdf_package",
    "validate",
)


def stage_folder(stage: str) -> str:
    """``"part_masks"`` -> ``"03-part_masks"``."""
    return f"{STAGES.index(stage) + 1:02d}-{stage}"


def new_run_id(photo: Path) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    stem = "".join(c if c.isalnum() else "_" for c in Path(photo).stem)[:40] or "photo"
    return f"{stamp}-{stem}-{secrets.token_hex(3)}"


class RunRecord:
    """A run directory whose manifest grows as stages finish."""

    def __init__(self, root: Path, manifest: dict):
        self.root = Path(root)
        self.manifest = manifest

    @classmethod
    def create(cls, runs_dir: Path, photo: Path, photo_sha256: str, config: dict, inputs: dict) -> "RunRecord":
        run_id = new_run_id(photo)
        root = Path(runs_dir) / run_id
        root.mkdir(parents=True, exist_ok=False)
        manifest = {
            "run_id": run_id,
            "version": "image-to-urdf 0.1.0",
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "status": "running",
            "input": {"image": str(Path(photo).resolve()), "image_sha256": photo_sha256, **inputs},
            "config": config,
            "stages": {},
            "package": None,
        }
        record = cls(root, manifest)
        record.save()
        return record

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    def save(self) -> None:
        write_json(self.root / "manifest.json", self.manifest)

    @contextlib.contextmanager
    def stage(self, stage: str) -> Iterator[Path]:
        """Yield the stage's folder; record status, timing and outputs when the block ends."""
        folder = self.root / stage_folder(stage)
        folder.mkdir(parents=True, exist_ok=False)
        entry = {"status": "running", "folder": folder.name}
        self.manifest["stages"][stage] = entry
        self.save()
        start = time.perf_counter()
        try:
            yield folder
        except BaseException as exc:
            failed = folder.with_name(folder.name + ".failed")
            if failed.exists():
                shutil.rmtree(failed)
            os.replace(folder, failed)
            entry.update(
                status="failed",
                folder=failed.name,
                seconds=round(time.perf_counter() - start, 3),
                error=f"{type(exc).__name__}: {exc}",
            )
            self.manifest["status"] = "failed"
            self.save()
            raise
        entry.update(
            status="done",
            seconds=round(time.perf_counter() - start, 3),
            outputs={
                str(p.relative_to(self.root)): sha256_file(p)
                for p in sorted(folder.rglob("*"))
                if p.is_file() and not p.name.startswith(".")
            },
        )
        self.save()

    def note(self, stage: str, summary: str) -> None:
        """Attach a one-line summary of the stage's key figures."""
        self.manifest["stages"][stage]["summary"] = summary
        self.save()

    def finish(self, status: str, **fields) -> None:
        self.manifest.update(status=status, finished=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        self.manifest.update(fields)
        self.save()
