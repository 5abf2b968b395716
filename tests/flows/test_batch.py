"""Batch: images found by content, one row per photo, locks, resume after SIGKILL, Dask."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from flows.batch import clean_interrupted, find_images, package_names, photo_lock
from stages._shared.io import write_json

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "assets"
CLI = [sys.executable, "-m", "flows.cli"]


def _photo_folder(root: Path, photos=("microwave", "cabinet")) -> Path:
    """Asset photos, one of them as a JPEG under a .dat name, a truncated PNG, a text file, a hidden file."""
    folder = root / "photos"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(ASSETS / f"{photos[0]}.png", folder / f"{photos[0]}.png")
    buffer = io.BytesIO()
    Image.open(ASSETS / f"{photos[1]}.png").convert("RGB").save(buffer, format="JPEG", quality=95)
    (folder / "sub" / f"{photos[1]}.dat").write_bytes(buffer.getvalue())
    data = (ASSETS / "box_lid.png").read_bytes()
    (folder / "sub" / "truncated.png").write_bytes(data[: len(data) // 3])
    (folder / "notes.txt").write_text("not a photo")
    (folder / ".hidden.png").write_bytes(data)
    return folder


def test_images_are_found_by_content_and_named_by_path(tmp_path):
    folder = _photo_folder(tmp_path)
    images, others = find_images(folder)
    assert [p.relative_to(folder).as_posix() for p in images] == [
        "microwave.png", "sub/cabinet.dat", "sub/truncated.png"
    ]
    assert [(r["photo"], r["status"]) for r in others] == [("notes.txt", "skipped")]
    assert str(folder / "notes.txt") in others[0]["reason"] and "give a PNG or JPEG" in others[0]["reason"]
    assert package_names(images, folder) == ["microwave", "sub_cabinet", "sub_truncated"]
    twins = [folder / "a-b.png", folder / "a_b.png"]
    assert package_names(twins, folder) == ["a_b", "a_b_2"]


def test_photo_lock_excludes_another_process(tmp_path):
    probe = (
        "import fcntl, sys\n"
        f"f = open({str(tmp_path / '.batch' / 'locks' / 'cabinet.lock')!r}, 'a')\n"
        "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)\n"
    )
    with photo_lock(tmp_path, "cabinet"):
        assert subprocess.run([sys.executable, "-c", probe]).returncode == 3
    assert not (tmp_path / ".batch" / "locks").exists()  # no lock file outlives its conversion


def test_photo_lock_waiter_locks_the_path_again_after_removal(tmp_path):
    """A waiter that wins the lock of the removed file opens the path anew; holders never overlap."""
    held, overlaps = [], []

    def hold(tag):
        with photo_lock(tmp_path, "cabinet"):
            overlaps.append(len(held))
            held.append(tag)
            time.sleep(0.2)
            held.remove(tag)

    threads = [threading.Thread(target=hold, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert overlaps == [0, 0, 0]
    assert not (tmp_path / ".batch" / "locks").exists()


def test_leftovers_of_a_killed_conversion_are_cleaned(tmp_path):
    (tmp_path / ".cabinet.abc123.tmp").mkdir()
    (tmp_path / ".cabinet.abc123.tmp" / "half.obj").write_text("v 0 0 0")
    (tmp_path / ".cabinet_2.x.tmp").mkdir()  # another package's: left alone
    run = tmp_path / "runs" / "r1" / "manifest.json"
    write_json(run, {"status": "running", "input": {"name": "cabinet"}})
    clean_interrupted(tmp_path, "cabinet")
    assert not (tmp_path / ".cabinet.abc123.tmp").exists()
    assert (tmp_path / ".cabinet_2.x.tmp").exists()
    assert json.loads(run.read_text())["status"] == "interrupted"


def _summary(out: Path) -> dict:
    latest = sorted((out / "summaries").glob("*/summary.json"), key=lambda p: p.stat().st_mtime)[-1]
    return json.loads(latest.read_text())


def _rows(summary: dict) -> dict:
    return {r["photo"]: r for r in summary["photos"]}


@pytest.mark.slow
def test_batch_converts_each_photo_in_isolation_and_a_rerun_recomputes_nothing(tmp_path):
    folder, out = _photo_folder(tmp_path), tmp_path / "out"
    proc = subprocess.run(
        [*CLI, "batch", str(folder), "--out", str(out), "--jobs", "2"], capture_output=True, text=True, cwd=REPO,
        timeout=900,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # the truncated photo failed
    rows = _rows(_summary(out))
    assert rows["notes.txt"]["status"] == "skipped"
    assert rows["sub/truncated.png"]["status"] == "failed" and "truncated" in rows["sub/truncated.png"]["reason"]
    for photo, name in (("microwave.png", "microwave"), ("sub/cabinet.dat", "sub_cabinet")):
        assert rows[photo]["status"] == "done", rows[photo]
        assert rows[photo]["validation"] == "passed" and rows[photo]["joints"] >= 1
        assert json.loads((out / name / "package.json").read_text())["validation"]["passed"] is True
    csv_text = next((out / "summaries").glob("*/summary.csv")).read_text()
    assert csv_text.splitlines()[0].startswith("photo,name,status,reason,joints")
    runs_before = sorted((out / "runs").iterdir())

    proc = subprocess.run(
        [*CLI, "batch", str(folder), "--out", str(out), "--jobs", "2"], capture_output=True, text=True, cwd=REPO,
        timeout=600,
    )
    assert proc.returncode == 1
    rows = _rows(_summary(out))
    assert rows["microwave.png"]["status"] == rows["sub/cabinet.dat"]["status"] == "cached"
    assert sorted((out / "runs").iterdir()) == runs_before  # nothing ran again


def _asset_photos(folder: Path, names: tuple[str, ...]) -> Path:
    """``folder`` holding a copy of each named asset photo, ``<name>.png``."""
    folder.mkdir()
    for name in names:
        shutil.copy(ASSETS / f"{name}.png", folder / f"{name}.png")
    return folder


def _complete_packages(out: Path) -> list[str]:
    return sorted(p.parent.name for p in out.glob("*/package.json"))


@pytest.mark.slow
def test_batch_killed_midway_resumes_without_half_written_packages(tmp_path):
    folder, out = _asset_photos(tmp_path / "photos", ("microwave", "cabinet")), tmp_path / "out"
    cmd = [*CLI, "batch", str(folder), "--out", str(out), "--jobs", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    # Kill once one photo is shipped and the other has cached stages of its own.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        shipped = _complete_packages(out) if out.exists() else []
        entries = list((out / ".cache" / "stages").glob("*/result.pkl")) if out.exists() else []
        if len(shipped) == 1 and len(entries) >= 9 + 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the batch finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    first = _complete_packages(out)
    assert len(first) == 1
    interrupted = {"cabinet", "microwave"} - set(first)
    assert not (out / interrupted.pop()).exists()  # nothing under the final name of the unfinished one

    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _complete_packages(out) == ["cabinet", "microwave"]
    rows = _rows(_summary(out))
    assert rows[f"{first[0]}.png"]["status"] == "cached"
    resumed = [r for r in rows.values() if r["status"] == "done"]
    assert len(resumed) == 1
    manifest = json.loads((Path(resumed[0]["run_dir"]) / "manifest.json").read_text())
    assert [s.get("cached") for s in manifest["stages"].values()][:3] == [True, True, True]
    assert not list(out.glob(".*.tmp")) and not list(out.glob(".*.old"))
    statuses = [json.loads(m.read_text())["status"] for m in (out / "runs").glob("*/manifest.json")]
    assert sorted(statuses) == ["done", "done", "interrupted"]
    for name in ("cabinet", "microwave"):
        assert json.loads((out / name / "package.json").read_text())["validation"]["passed"] is True


@pytest.mark.slow
def test_two_batches_into_one_out_and_a_dask_cluster_of_two_workers(tmp_path):
    folder, out = _asset_photos(tmp_path / "photos", ("microwave", "box_lid")), tmp_path / "out"
    cmd = [*CLI, "batch", str(folder), "--out", str(out), "--jobs", "2", "--task-runner", "dask", "--no-progress"]
    first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    errors = [p.communicate(timeout=900)[1] for p in (first, second)]
    summaries = [json.loads(p.read_text()) for p in (out / "summaries").glob("*/summary.json")]
    assert len(summaries) == 2
    for summary in summaries:
        assert {r["photo"] for r in summary["photos"]} == {"microwave.png", "box_lid.png"}
    for photo, name in (("microwave.png", "microwave"), ("box_lid.png", "box_lid")):
        # one batch built it, the other waited for its lock and found it done
        statuses = sorted(_rows(s)[photo]["status"] for s in summaries)
        assert statuses == ["cached", "done"], (statuses, errors)
        assert json.loads((out / name / "package.json").read_text())["validation"]["passed"] is True
    # each package was built once: two runs, both done
    statuses = [json.loads(m.read_text())["status"] for m in (out / "runs").glob("*/manifest.json")]
    assert statuses == ["done", "done"]


def test_batch_bad_arguments_exit_2_before_writing(tmp_path, capsys):
    from flows.cli import EXIT_BAD_INPUT, main

    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "missing"), "--out", str(out)]) == EXIT_BAD_INPUT
    assert "not a folder" in capsys.readouterr().err
    assert main(["batch", str(ASSETS), "--out", str(out), "--jobs", "0"]) == EXIT_BAD_INPUT
    assert "--jobs 0" in capsys.readouterr().err
    assert not out.exists()
