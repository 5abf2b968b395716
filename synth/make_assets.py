"""Write the example photos, their ground truth and one articulation clip to ``assets/``.

Run ``python -m synth.make_assets --out assets``. The output is deterministic: every photo is
``render_view(make_object(category, seed), product_camera(obj, camera_seed))`` at 512x512 on
white, and ``<category>.json`` beside it holds the category, seeds, camera, one click per movable
part and the ground-truth joints (package.json key names).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from stages._shared.io import atomic_path, write_image, write_json
from synth.objects import make_object
from synth.render import click_point, product_camera, render_clip, render_view

logger = logging.getLogger(__name__)

#: (category, object seed, camera seed) of each example photo; chosen for clear 3/4 views.
EXAMPLES = (
    ("cabinet", 1, 8),
    ("drawer_unit", 3, 9),
    ("microwave", 1, 1),
    ("laptop", 1, 1),
    ("box_lid", 1, 1),
)
#: The articulation clip: (category of an example above, part, number of frames).
CLIP = ("cabinet", "door_0", 16)
SIZE_PX = 512
CLIP_FPS = 8


def write_example(out: Path, category: str, seed: int, camera_seed: int) -> dict:
    """Render one example photo to ``out/<category>.png`` and its ground truth to ``.json``."""
    obj = make_object(category, seed)
    camera = product_camera(obj, camera_seed, SIZE_PX, SIZE_PX)
    view = render_view(obj, camera)
    write_image(out / f"{category}.png", view.rgb)
    record = {
        "image": f"{category}.png",
        "category": category,
        "seed": seed,
        "camera_seed": camera_seed,
        "max_dim_m": float(obj.extents.max()),
        "extents_m": [float(v) for v in obj.extents],
        "camera": camera.to_dict(),
        "clicks": {name: list(click_point(mask)) for name, mask in view.part_masks.items()},
        "joints": obj.joints(),
    }
    write_json(out / f"{category}.json", record)
    return record


def write_clip(out: Path, category: str, seed: int, camera_seed: int, part: str, n_frames: int) -> Path:
    """Encode ``part`` opening from rest, seen by the example photo's camera, as H.264 MP4."""
    import imageio_ffmpeg

    obj = make_object(category, seed)
    camera = product_camera(obj, camera_seed, SIZE_PX, SIZE_PX)
    frames = render_clip(obj, camera, part, n_frames)
    path = out / f"{category}_{part}.mp4"
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (SIZE_PX, SIZE_PX),
            fps=CLIP_FPS,
            codec="libx264",
            quality=None,
            output_params=["-crf", "20", "-threads", "1", "-flags", "+bitexact", "-fflags", "+bitexact"],
        )
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame.rgb))
        writer.close()
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("assets"), help="output folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    seeds = {}
    for category, seed, camera_seed in EXAMPLES:
        record = write_example(out, category, seed, camera_seed)
        seeds[category] = (seed, camera_seed)
        logger.info("wrote %s.png: %d movable parts, clicks %s", category, len(record["joints"]), record["clicks"])
    category, part, n_frames = CLIP
    record_path = out / f"{category}.json"
    path = write_clip(out, category, *seeds[category], part, n_frames)
    # Record the clip's joint values next to the photo's ground truth.
    import json

    record = json.loads(record_path.read_text())
    limit = make_object(category, seeds[category][0]).part(part).opening_limit
    record["motion"] = {
        "file": path.name,
        "part": part,
        "fps": CLIP_FPS,
        "joint_values": [float(v) for v in np.linspace(0.0, limit, n_frames)],
    }
    write_json(record_path, record)
    total = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    logger.info("wrote %s (%d frames); %s holds %.2f MB", path.name, n_frames, out, total / 1e6)


if __name__ == "__main__":
    main()
