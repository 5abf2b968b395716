"""Run folders and a live server for the artifact browser tests (tests/flows/test_browse*.py).

Small run folders are written through the project's own RunRecord, so their manifests have the
real layout: numbered stage folders, outputs with hashes, a failed stage renamed ``.failed``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from flows.run_record import RunRecord
from stages._shared.io import sha256_file, write_json

DATA = Path(__file__).resolve().parents[1] / "data"
#: Debian's chromium, driven by Playwright (which never downloads a browser of its own here).
CHROMIUM = Path("/usr/bin/chromium")
# WebGL without a GPU: SwiftShader, Chromium's CPU implementation.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader"]


def make_small_run(runs_dir: Path, photo: Path, name: str, config: dict | None = None,
                   fail_at: str | None = None, valid: bool = True, created: str | None = None) -> RunRecord:
    """A run with parts 'lid' and 'a_knob' (only the lid moves) through all ten stages, or
    failing at stage ``fail_at``.

    Files are tiny but real: a 48x64 photo, a mask, GLB boxes, a 3-frame clip + GIF, a fit.json
    with loss curves, the hand-written hinged_box package (tests/data) and a validation report.
    """
    run = RunRecord.create(runs_dir, photo, sha256_file(photo), config or {"max_dim": 0.4}, {"name": name})
    if created:  # runs made within one second would otherwise tie
        run.manifest["created"] = created
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    h, w = rgb.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4: h // 2, w // 4: 3 * w // 4] = 255
    box = trimesh.creation.box((0.4, 0.4, 0.3))
    lid = trimesh.creation.box((0.4, 0.4, 0.02))

    def write(stage, body):
        if fail_at == stage:
            try:
                with run.stage(stage):
                    raise RuntimeError(f"{stage} failed on purpose")
            except RuntimeError:
                return
        with run.stage(stage) as d:
            body(d)

    steps = [
        ("foreground", lambda d: (Image.fromarray(rgb).save(d / "image.png"), Image.fromarray(mask).save(d / "mask.png"))),
        ("reconstruct", lambda d: box.export(d / "mesh.glb")),
        ("part_masks", lambda d: _masks(d, mask)),
        ("segment3d", lambda d: (box.export(d / "base.glb"), lid.export(d / "part_0.glb"))),
        ("amodal", lambda d: (box.export(d / "base.glb"), lid.export(d / "part_0.glb"))),
        ("articulation_video", lambda d: _clip(d, rgb)),
        ("joint_fit", lambda d: write_json(d / "fit.json", FIT)),
        ("texture", lambda d: shutil.copy(DATA / "hinged_box" / "meshes" / "visual" / "lid.png", d / "lid.png")),
        ("urdf_package", lambda d: shutil.copytree(DATA / "hinged_box", d / name)),
        ("validate", lambda d: write_json(d / "validation.json", {
            "passed": valid, "pybullet": True, "mujoco": True, "max_penetration_m": 0.0,
            "issues": [] if valid else ["joint 'lid_joint': lid enters the base by 4 mm"]})),
    ]
    for stage, body in steps:
        write(stage, body)
        if fail_at == stage:
            return run
    run.finish("done" if valid else "failed", package=str(run.root / "09-urdf_package" / name), validation=valid)
    return run


#: joint_fit's fit.json, cut down to what the browser reads: loss curves per joint type.
FIT = {"parts": [{
    "part": "lid", "static_loss": 0.05,
    "fits": {"revolute": {"curve": [0.04, 0.03, 0.02, 0.015]}, "prismatic": {"curve": [0.045, 0.044, 0.043]}},
    "estimate": {"joint_type": "revolute"},
}]}


def _masks(d: Path, mask: np.ndarray) -> None:
    """Two parts, listed in parts.json in non-alphabetical order (later stages index by it)."""
    (d / "masks").mkdir()
    Image.fromarray(mask).save(d / "masks" / "lid.png")
    Image.fromarray(mask[::-1]).save(d / "masks" / "a_knob.png")
    write_json(d / "parts.json", {"parts": [{"name": "lid"}, {"name": "a_knob"}]})


def _clip(d: Path, rgb: np.ndarray) -> None:
    frames = [np.roll(rgb, 4 * k, axis=1) for k in range(3)]
    (d / "frames" / "lid").mkdir(parents=True)
    for k, f in enumerate(frames):
        Image.fromarray(f).save(d / "frames" / "lid" / f"frame_{k:03d}.png")
    (d / "previews").mkdir()
    Image.fromarray(frames[0]).save(d / "previews" / "lid.gif", save_all=True,
                                    append_images=[Image.fromarray(f) for f in frames[1:]], duration=100, loop=0)


def make_photo(path: Path, colour=(150, 100, 60)) -> Path:
    rgb = np.full((48, 64, 3), 255, np.uint8)
    rgb[8:40, 16:48] = colour
    Image.fromarray(rgb).save(path)
    return path


@contextlib.contextmanager
def live_server(runs_dir: Path):
    """The browser app under uvicorn on a free local port, in a thread; yields its base URL."""
    import uvicorn

    from flows.browse import make_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(make_app(runs_dir), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the browser server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
