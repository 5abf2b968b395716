"""Render any URDF package as a product photo with its annotations and an articulation clip.

    python -m synth.render_package PATH/TO/robot.urdf --out DIR [--seed 0] [--size 512]
        [--joint NAME] [--frames 16]

Writes to DIR: ``photo.png`` (white background, soft studio light, a 3/4 or front camera drawn
from ``synth.render``'s stated ranges by ``--seed``), ``mask.png`` (foreground),
``masks/<part>.png`` (each movable part's subtree), ``depth.npy`` (camera-frame z, metres, inf
off the object), ``camera.json`` (intrinsics + ``T_base_camera``, OpenCV convention, URDF root
frame) and, with ``--joint``, ``clip/frame_NNN.png``: the joint moving from rest to its limit of
larger magnitude. Offscreen on a CPU; deterministic per seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stages._shared.io import write_image, write_json, write_npy
from synth.render import RenderedView, camera_for_points, load_urdf, render_urdf, render_urdf_clip


def write_view(out_dir: Path, view: RenderedView) -> None:
    """Write ``photo.png``, ``mask.png``, ``masks/<part>.png`` and ``depth.npy`` (float32, metres)."""
    out_dir = Path(out_dir)
    write_image(out_dir / "photo.png", view.rgb)
    write_image(out_dir / "mask.png", view.mask)
    write_npy(out_dir / "depth.npy", view.depth.astype(np.float32))
    for name, mask in view.part_masks.items():
        write_image(out_dir / "masks" / f"{name}.png", mask)


def write_frames(folder: Path, views: list[RenderedView]) -> None:
    """Write ``folder/frame_NNN.png`` per view (a clip as a folder of frames, as ``--motion`` reads)."""
    for t, view in enumerate(views):
        write_image(Path(folder) / f"frame_{t:03d}.png", view.rgb)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urdf", type=Path, help="the package's .urdf file")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the camera draw")
    parser.add_argument("--size", type=int, default=512, help="image width and height, pixels")
    parser.add_argument("--joint", help="movable joint to articulate in a clip")
    parser.add_argument("--frames", type=int, default=16, help="frames of the clip (first at rest)")
    args = parser.parse_args(argv)

    scene = load_urdf(args.urdf)
    camera = camera_for_points(scene.points(), args.seed, args.size, args.size)
    write_view(args.out, render_urdf(scene, camera))
    write_json(args.out / "camera.json", camera.to_dict())
    if args.joint:
        write_frames(args.out / "clip", render_urdf_clip(scene, camera, args.joint, args.frames))
    print(f"wrote {args.out} (parts: {', '.join(scene.parts) or 'none'})")


if __name__ == "__main__":
    main()
